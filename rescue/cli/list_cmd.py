"""`rescue [-f DEVICE] list [--json] [--catalog FILE | --no-catalog] [--archive-file N] [PATH...]`: the catalog
(the tape's, or a file), or with `--no-catalog` the archive itself, read through like `tar -tv`.

The tape is opened by rescue.tapeset.opener (the policy restore and verify use). A tape without a usable catalog
(a plain tar tape, an incomplete set, a damaged catalog tape file) is an error that says why and names the
commands that do without one."""

from __future__ import annotations

import json
import sys
from typing import Iterable, Iterator

from rescue import cli
from rescue.archive.member import Member
from rescue.archive.reader import ArchiveReader, DamagedMemberError
from rescue.archive.record_reader import BadRecordError
from rescue.errors import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, RescueError
from rescue.names import json_safe, path_argument
from rescue.pathmatch import PathMatcher
from rescue.tapeset.catalog import open_catalog
from rescue.tapeset.filelist import VerboseLister
from rescue.tapeset.opener import TapeSet, catalog_path, open_set


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "list",
        help="list what a backup set holds",
        description="List the members of the backup in tape order, like 'tar -tv'. Reads the catalog from the "
        "tape (spacing straight to tape file 2) or from --catalog FILE (a catalog.jsonl.gz or its directory); "
        "--no-catalog reads the archive itself. Exit codes: 0 listed; 1 listed, but parts of the archive were "
        "unreadable (--no-catalog); 2 no usable catalog (the message says why), or a PATH not found.",
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="only these paths (directories with their contents)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per member (the catalog's lines)")
    p.add_argument("--catalog", metavar="FILE", help="read this catalog instead of the tape")
    p.add_argument(
        "--no-catalog",
        action="store_true",
        help="list the archive itself (reads all of it) instead of the catalog",
    )
    p.add_argument(
        "--archive-file", type=int, metavar="N", help="the archive is tape file N (when the label cannot say)"
    )
    cli.tape_arguments(p)
    p.set_defaults(func=run)


def _print(members: Iterable[Member], args, where: str = "the catalog") -> int:
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
        print(f"rescue: {p}: not found in {where}", file=sys.stderr)
    return EXIT_FATAL if unseen else EXIT_OK


def _archive_members(ts: TapeSet, damaged: list) -> Iterator[Member]:
    """The archive's members as read (like `tar -tv`), their data skipped."""

    def warn(where: str, message: str) -> None:
        damaged.append(message)
        print(f"rescue: warning: {where}: {message}", file=sys.stderr, flush=True)

    ts.space_to_archive()
    for entry in ArchiveReader(ts.tape, on_warning=warn):
        member = entry.member
        try:
            entry.skip()
        except (DamagedMemberError, BadRecordError) as e:
            warn(member.path, str(e))
        yield member


def run(args) -> int:
    if args.catalog and not args.no_catalog:
        return _print(open_catalog(catalog_path(args.catalog))[1], args)
    device = cli.device_of(args)
    with (
        cli.open_device(args) as tape,
        open_set(tape, no_catalog=args.no_catalog, archive_file=args.archive_file) as ts,
    ):
        for text in ts.warnings:
            print(f"rescue: warning: {text}", file=sys.stderr)
        if ts.catalog is not None:
            return _print(ts.members(), args)
        if not args.no_catalog:
            raise RescueError(
                f"{ts.no_catalog_reason}; list the archive itself with 'rescue -f {device} list --no-catalog' "
                "(reads all of it), or write a catalog with 'rescue catalog rebuild' and use 'list --catalog FILE'"
            )
        damaged: list = []
        code = _print(_archive_members(ts, damaged), args, f"tape file {ts.archive_file}")
        return code or (EXIT_PARTIAL if damaged else EXIT_OK)
