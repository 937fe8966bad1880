"""`rescue catalog rebuild [-o FILE]`: argument wiring for rescue.scan.rebuild."""

from __future__ import annotations

import json

from rescue import cli
from rescue.names import json_safe
from rescue.scan.rebuild import rebuild_catalog

DEFAULT_OUTPUT = "catalog.jsonl.gz"


def register(subparsers) -> None:
    p = subparsers.add_parser("catalog", help="catalog operations (rebuild)")
    sub = p.add_subparsers(dest="catalog_command", metavar="OPERATION")
    sub.required = True
    r = sub.add_parser(
        "rebuild",
        help="scan a tape once and write a catalog for it",
        description="Scan the archive on a tape written by anything (rescue, or GNU tar in any format and record "
        "size) once and write a catalog with every member's tape position and SHA-256, so later restores of that "
        "tape can seek: 'rescue restore --catalog FILE'. Exit codes: 0 ok; 1 some members were unreadable and "
        "are left out (listed); 2 the tape could not be read.",
    )
    cli.tape_arguments(r)
    r.add_argument(
        "-o",
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="FILE",
        help=f"where to write the catalog (default: {DEFAULT_OUTPUT})",
    )
    r.add_argument(
        "--archive-file",
        type=int,
        metavar="N",
        help="the archive is tape file N (for a tape whose label cannot say; default: from the label, else 0)",
    )
    r.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    r.set_defaults(func=run_rebuild)


def run_rebuild(args) -> int:
    with cli.open_device(args) as tape:
        result = rebuild_catalog(tape, args.output, archive_file=args.archive_file)
    if args.json:
        print(json.dumps(json_safe(result.to_json()), ensure_ascii=False))
    return result.exit_code
