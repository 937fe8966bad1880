"""Errors that carry their exit code (the convention of GNU tar: 0 ok, 1 some files differed, 2 fatal).

Only `rescue.cli.main` turns an exception into an exit status and a one-line message; everything below raises.
Problems with single files are not exceptions: jobs collect them as warnings and finish with exit 1.
"""

EXIT_OK = 0
EXIT_PARTIAL = 1  # finished, but some files differed, changed, vanished or could not be read
EXIT_FATAL = 2  # nothing (valid) done: no tape, wrong tape, refused, I/O error that stopped the job


class RescueError(Exception):
    """A fatal error with a message a person can act on; exits 2."""

    exit_code = EXIT_FATAL


class UsageError(RescueError):
    """Bad arguments or bad input given by the user."""


class RefusedError(RescueError):
    """A safety guard refused to go on (overwrite, shrink, non-empty target); the message names the flag."""
