"""`rescue [-f DEVICE] dump-file [N] -o FILE [--force]`: argument wiring for rescue.tape.dump (one tape file to a
plain file, so GNU tar can take over: `tar -tvf FILE`)."""

from __future__ import annotations

import os
import sys

from rescue import cli
from rescue.errors import EXIT_OK, EXIT_PARTIAL, RefusedError
from rescue.tape.base import EndOfDataError
from rescue.tape.dump import DumpResult, dump_tape_file


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "dump-file",
        help="copy one tape file to a plain file (for GNU tar)",
        description="Copy tape file N (counted from the beginning of the tape; without N the tape file at the "
        "current position, as after 'rescue mt fsf') to FILE, its records concatenated, like 'mt fsf N; dd "
        "bs=1M'. Unreadable records are left out and named. On a rescue set, file 0 is the label, 1 the archive "
        "(tar -xpf FILE -b N), 2 the catalog. Exit codes: 0 copied; 1 copied, some records unreadable; 2 no such "
        "tape file, or FILE exists (--force overwrites it).",
    )
    p.add_argument("number", nargs="?", type=int, metavar="N", help="tape file number (0 = the first)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write it ('-': stdout)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    cli.tape_arguments(p)
    p.set_defaults(func=run)


def _to_file(tape, args, on_bad) -> DumpResult:
    """Into FILE.part, renamed when complete: an interrupted copy never looks like a whole tape file."""
    partial = args.output + ".part"
    try:
        with open(partial, "wb") as out:
            result = dump_tape_file(tape, args.number, out, on_bad)
        os.replace(partial, args.output)
        return result
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise


def run(args) -> int:
    device = cli.device_of(args)
    if args.number is not None and args.number < 0:
        raise RefusedError(f"dump-file {args.number}: tape files are numbered from 0")
    to_stdout = args.output == "-"
    if not to_stdout and os.path.exists(args.output) and not args.force:
        raise RefusedError(f"{args.output}: exists; give another name or --force to overwrite it")

    def on_bad(index: int, message: str) -> None:
        print(
            f"rescue: warning: record {index} of the tape file is unreadable, left out ({message})",
            file=sys.stderr,
        )

    # Without N the position of the last `rescue mt` counts: images and volumes keep it, as /dev/nst0 does.
    with cli.open_device(args) as tape:
        try:
            if to_stdout:
                result = dump_tape_file(tape, args.number, sys.stdout.buffer, on_bad)
                sys.stdout.flush()
            else:
                result = _to_file(tape, args, on_bad)
        except EndOfDataError:
            raise EndOfDataError(
                f"{device}: there is no tape file {args.number} (the tape ends before it)"
            ) from None
    where = f"tape file {args.number}" if args.number is not None else "the current tape file"
    print(
        f"{device}: {where}: {result.records} records, {result.bytes} bytes to {args.output}"
        + (f"; {len(result.bad_records)} unreadable record(s) left out" if result.bad_records else "")
        + (f"; ended by {result.ended_by}" if result.ended_by != "filemark" else ""),
        file=sys.stderr,
    )
    return EXIT_PARTIAL if result.bad_records else EXIT_OK
