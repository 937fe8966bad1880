"""Command line: `rescue [-f DEVICE] COMMAND ...`.

Each command lives in its own module `rescue/cli/<name>_cmd.py` with two functions: `register(subparsers)` adds its
parser (and sets `func`), and the handler it names does argument wiring only and calls into the domain modules.

Shared here, once: `tape_arguments(parser)` declares `-f DEVICE` and `--config FILE` on a command (so both are
accepted after the command too, as mt and tar users type them: `rescue mt -f night.tap status`);
`config_argument(parser)` declares `--config` alone (commands without a tape); `settings(args)` reads the config
file once per run and `device_of(args)` resolves the device once (-f, else $TAPE, else rescue.conf's `device`,
else /dev/nst0); `open_device(args)` opens it as a drive (rescue.tape.operations.open_drive).

Only `main()` turns exceptions into exit codes (0 ok, 1 some files differed, 2 fatal), with a one-line message on
stderr; `--debug` shows the traceback too.  When the command was given `--json`, main() also prints the error as
one JSON object, `{"exit_code": N, "errors": [MESSAGE]}`, on the command's result stream (stdout, or stderr when
the archive itself goes to stdout).  SIGTERM (`systemctl stop`) ends a job as SIGINT does: the jobs' cleanup
runs (a restore's journal is kept), one line "rescue: terminated", exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import signal
import subprocess
import sys
import traceback
from typing import List, Optional

from rescue import __version__, config
from rescue.errors import EXIT_FATAL, RescueError
from rescue.names import json_safe
from rescue.tape.base import Tape


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


class _VersionAction(argparse.Action):
    """`--version`, with the commit looked up only when asked (it may run git: not on every start)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(
            option_strings, dest, nargs=0, help="print the version and the source commit, then exit"
        )

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_string())
        parser.exit()


def command_modules() -> List[str]:
    """The `*_cmd` modules beside this file, in name order: adding a command is adding a file (command
    `dump-file` is module `dump_file_cmd`)."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cmd")]
    return sorted(names)


_GLOBAL_WITH_VALUE = ("-f", "--file", "--config")


def _command_module(argv: List[str], modules: List[str]) -> Optional[str]:
    """The module of the command argv names (its first word that is not a global option or its value), or
    None (no command, or not one of ours: the parser then knows them all, for its help and its error)."""
    words = iter(argv)
    for word in words:
        if word in _GLOBAL_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            name = word.replace("-", "_") + "_cmd"
            return name if name in modules else None
        elif word == "--":
            return None
    return None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where SIGINT would raise KeyboardInterrupt, so every cleanup path treats both alike."""


def _terminate(signum, frame):
    raise Terminated()


DEVICE_HELP = (
    "tape device (/dev/nst0), .tap image, directory, or '-' (default: $TAPE, then rescue.conf, /dev/nst0)"
)


def config_argument(parser: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    """`--config FILE`, declared here only.  On a command its default is SUPPRESS, so it leaves a value given
    before the command alone."""
    parser.add_argument(
        "--config", metavar="FILE", default=default, help=f"config file (default {config.DEFAULT_PATH})"
    )


def tape_arguments(parser: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    """`-f DEVICE` and `--config FILE`: before the command (the main parser) or after it (every tape command)."""
    parser.add_argument("-f", "--file", dest="device", metavar="DEVICE", default=default, help=DEVICE_HELP)
    config_argument(parser, default)


def settings(args) -> config.Config:
    """The config file of this run (--config, else /etc/rescue/rescue.conf), read once."""
    cfg = getattr(args, "_settings", None)
    if cfg is None:
        cfg = args._settings = config.load(getattr(args, "config", None))
    return cfg


def device_of(args) -> str:
    """The device of this run: -f DEVICE, else $TAPE, else rescue.conf's `device`, else /dev/nst0."""
    return config.resolve_device(getattr(args, "device", None), settings(args))


def open_device(args, write: bool = False) -> Tape:
    from rescue.tape.operations import open_drive

    return open_drive(device_of(args), write=write, online=True)


def build_parser(argv: Optional[List[str]] = None) -> argparse.ArgumentParser:
    """The parser of every command, or, given the argv of a run, of the command it names only: importing
    one command's modules instead of all of them saves a tenth of a second on every start."""
    parser = argparse.ArgumentParser(
        prog="rescue",
        description="Bare-metal recovery from tape: back up to a self-describing GNU tar tape, restore in one pass.",
        epilog="Exit codes: 0 success; 1 finished, but some files differed, changed, vanished or could not be "
        "read; 2 fatal (no tape, wrong tape, refused, I/O error).",
    )
    tape_arguments(parser, default=None)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = command_modules()
    only = None if argv is None else _command_module(argv, modules)
    for name in [only] if only else modules:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_FATAL
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.func(args) or 0)
    except RescueError as e:
        return _fail(args, str(e), e.exit_code)
    except Terminated:
        return _fail(args, "terminated (SIGTERM)", EXIT_FATAL, trace=False)
    except KeyboardInterrupt:
        return _fail(args, "interrupted", EXIT_FATAL, trace=False)
    except BrokenPipeError:
        # `rescue list | head`: the reader went away; that is not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FATAL
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        return _fail(args, f"{where}{e.strerror or e}", EXIT_FATAL)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fail(args, message: str, exit_code: int, trace: bool = True) -> int:
    """The one place a fatal error is reported: one line on stderr, and the JSON object under --json."""
    if trace and getattr(args, "debug", False):
        traceback.print_exc()
    print(f"rescue: {message}", file=sys.stderr)
    if getattr(args, "json", False) is True:
        stream = getattr(args, "result_stream", None) or sys.stdout
        stream.write(
            json.dumps(json_safe({"exit_code": exit_code, "errors": [message]}), ensure_ascii=False) + "\n"
        )
        stream.flush()
    return exit_code
