"""`rescue verify [--catalog FILE] [--against ROOT] [--json]`: argument wiring for rescue.scan.verify."""

from __future__ import annotations

import io
import json

from rescue import cli
from rescue.names import json_safe
from rescue.scan.verify import VerifyOptions, run_verify


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify",
        help="read the archive and check it against its catalog (or a live tree)",
        description="Read the whole archive and check every member against the catalog (positions, sizes, "
        "SHA-256, count); with --against ROOT also compare each member with the file under ROOT like "
        "'tar --compare' (content, mode, owner, mtime, links). Differences go to stdout. Exit codes: 0 no "
        "differences; 1 differences found (a damaged label or catalog tape file is one); 2 the tape could not be "
        "read, or its catalog does not fit it.",
    )
    cli.tape_arguments(p)
    p.add_argument(
        "--catalog", metavar="FILE", help="check against this catalog.jsonl.gz instead of the tape's"
    )
    p.add_argument("--no-catalog", action="store_true", help="only read the archive (and compare --against)")
    p.add_argument(
        "--archive-file",
        type=int,
        metavar="N",
        help="the archive is tape file N (for a tape whose label cannot say; default: from the label, else 0)",
    )
    p.add_argument("--against", metavar="ROOT", help="compare the archive with the live tree under ROOT")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    options = VerifyOptions(
        catalog=args.catalog, against=args.against, no_catalog=args.no_catalog, archive_file=args.archive_file
    )
    if args.json:
        options.results = io.StringIO()  # the differences are in the JSON object
    with cli.open_device(args) as tape:
        result = run_verify(tape, options)
    if args.json:
        print(json.dumps(json_safe(result.to_json()), ensure_ascii=False))
    return result.exit_code
