"""`rescue [-f DEVICE] list [--json] [--catalog FILE] [PATH...]`: the catalog, from the tape or from a file."""

from __future__ import annotations

import json
import os
import sys
import tempfile

from rescue import cli
from rescue.errors import EXIT_FATAL, EXIT_OK, RescueError
from rescue.names import json_safe, path_argument
from rescue.pathmatch import PathMatcher
from rescue.tapeset.catalog import open_catalog
from rescue.tapeset.catalog_tape import CATALOG_NAME, read_catalog
from rescue.tapeset.filelist import VerboseLister
from rescue.tapeset.label import read_label


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "list",
        help="list what a backup set holds",
        description="List the members of the backup in tape order, like 'tar -tv'. Reads the catalog from the "
        "tape (spacing straight to tape file 2) or from --catalog FILE (a catalog.jsonl.gz or its directory).",
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="only these paths (directories with their contents)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per member (the catalog's lines)")
    p.add_argument("--catalog", metavar="FILE", help="read this catalog instead of the tape")
    cli.tape_arguments(p)
    p.set_defaults(func=run)


def _print(path: str, args) -> int:
    _, members = open_catalog(path)
    matcher = PathMatcher(includes=[path_argument(p) for p in args.paths])
    unseen = {p: PathMatcher(includes=[p]) for p in matcher.includes}
    lister = VerboseLister()
    out = sys.stdout
    for m in members:
        if not matcher.included(m.path):
            continue
        if unseen:
            for p in [p for p, one in unseen.items() if one.included(m.path)]:
                del unseen[p]
        if args.json:
            out.write(json.dumps(json_safe(m.to_json()), ensure_ascii=False) + "\n")
        else:
            out.write(lister.line(m) + "\n")
    for p in unseen:
        # GNU tar: "Not found in archive", exit 2.
        print(f"rescue: {p}: not found in the catalog", file=sys.stderr)
    return EXIT_FATAL if unseen else EXIT_OK


def run(args) -> int:
    if args.catalog:
        path = args.catalog
        if os.path.isdir(path):
            path = os.path.join(path, CATALOG_NAME)
        return _print(path, args)
    device = cli.device_of(args)
    with cli.open_device(args) as tape:
        label = read_label(tape)
        if label is None:
            raise RescueError(
                f"{device}: no rescue label, so no catalog on this tape; list it with 'tar -tvf {device} -b 512' "
                "or build a catalog with 'rescue catalog rebuild'"
            )
        with tempfile.TemporaryDirectory(prefix="rescue-list-") as spool:
            files = read_catalog(tape, label, spool)
            tape.rewind()
            return _print(files.catalog, args)
