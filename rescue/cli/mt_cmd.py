"""`rescue mt [-f DEVICE] OP [COUNT]`: argument wiring for rescue.tape.operations (the operations of mt-st).

`status` prints what mt-st prints; `tell` prints "At block N." as mt-st does; `--json` prints the result as one
JSON object.  Images and directories remember their position between runs, as the non-rewinding /dev/nst0 does,
so `mt fsf 1` followed by `mt status` reports file 1.
"""

from __future__ import annotations

import argparse
import json
import sys

from rescue import cli
from rescue.tape.operations import OPERATIONS, parse_count, run_operation


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "mt",
        help="tape operations as mt-st: status, rewind, fsf, bsf, fsr, bsr, eod, tell, seek, weof, eject ...",
        description="Magnetic tape operations (those of mt-st) on DEVICE: a tape drive, a .tap image or a "
        "directory volume.  Operations: " + ", ".join(OPERATIONS) + ".",
    )
    cli.tape_arguments(p)
    p.add_argument("operation", metavar="OP", choices=sorted(OPERATIONS), help="the operation")
    p.add_argument(
        "count", metavar="COUNT", nargs="?", type=_count, help="repeat count or argument (default 1)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _count(text: str) -> int:
    try:
        return parse_count(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def run(args) -> int:
    result = run_operation(cli.device_of(args), args.operation, args.count)
    if args.json:
        json.dump(result.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(result.text())
    return 0
