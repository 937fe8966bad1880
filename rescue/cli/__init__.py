"""Command line: `rescue [-f DEVICE] COMMAND ...`.

Each command lives in its own module `rescue/cli/<name>_cmd.py` with two functions: `register(subparsers)` adds its
parser (and sets `func`), and the handler it names does argument wiring only and calls into the domain modules.
Only `main()` turns exceptions into exit codes (0 ok, 1 some files differed, 2 fatal), with a one-line message on
stderr; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import subprocess
import sys
import traceback
from typing import List, Optional

from rescue import __version__
from rescue.errors import EXIT_FATAL, RescueError


def version_string() -> str:
    """Version plus the source commit the build came from (written by build/ into rescue/_buildinfo.py)."""
    try:
        from rescue._buildinfo import COMMIT  # type: ignore[import-not-found]
    except ImportError:
        COMMIT = _checkout_commit()
    return f"rescue {__version__} (commit {COMMIT})"


def _checkout_commit() -> str:
    """The commit of a source checkout (python -m rescue), or "unknown" outside one."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not os.path.isdir(os.path.join(top, ".git")):
        return "unknown"
    try:
        out = subprocess.run(
            ["git", "-C", top, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def command_modules() -> List[str]:
    """The `*_cmd` modules beside this file, in name order: adding a command is adding a file."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cmd")]
    return sorted(names)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rescue",
        description="Bare-metal recovery from tape: back up to a self-describing GNU tar tape, restore in one pass.",
        epilog="Exit codes: 0 success; 1 finished, but some files differed, changed, vanished or could not be "
        "read; 2 fatal (no tape, wrong tape, refused, I/O error).",
    )
    parser.add_argument(
        "-f",
        "--file",
        dest="device",
        metavar="DEVICE",
        default=None,
        help="tape device (/dev/nst0), .tap image, directory, or '-' (default: $TAPE, then /dev/nst0)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--version", action="version", version=version_string())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules():
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_FATAL
    try:
        return int(args.func(args) or 0)
    except RescueError as e:
        if args.debug:
            traceback.print_exc()
        print(f"rescue: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("rescue: interrupted", file=sys.stderr)
        return EXIT_FATAL
    except BrokenPipeError:
        # `rescue list | head`: the reader went away; that is not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FATAL
    except OSError as e:
        if args.debug:
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        print(f"rescue: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_FATAL
