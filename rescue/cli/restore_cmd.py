"""`rescue restore`: argument wiring for rescue.restore.job."""

from __future__ import annotations

import argparse
import json

from rescue import cli
from rescue.errors import UsageError
from rescue.names import json_safe, path_argument
from rescue.restore.job import DEFAULT_TARGET, RestoreOptions, run_restore

EPILOG = """\
Reads the tape's label (tape file 0) and catalog (tape file 2), prints the plan (host, date, files and bytes,
record ranges, seeks, estimated time), then restores the selection in one forward pass, seeking between runs of
selected members, checking every file's SHA-256 against the catalog. A tape without a rescue label (plain GNU tar)
is restored in one streaming pass. A journal in the target (.rescue-restore.journal) lets --resume continue after
a crash. Exit codes: 0 all restored and verified; 1 finished, but some files were lost, differ or could not be
restored (listed); 2 fatal (no tape, blank tape, not a tar archive or tape image, catalog does not fit the
tape, target refused). A damaged or missing catalog on the tape makes it one streaming pass instead."""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "restore",
        help="restore files from tape in one pass (seeking with the tape's catalog)",
        description="Restore PATHs (directories, files or globs; everything by default) into TARGET.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.tape_arguments(p)
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="what to restore, in any order (default: everything)"
    )
    p.add_argument(
        "-C",
        "--directory",
        dest="target",
        default=DEFAULT_TARGET,
        metavar="TARGET",
        help=f"restore into TARGET (default: {DEFAULT_TARGET}); '/' needs --yes",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave out paths matching PATTERN (repeatable; as GNU tar --exclude)",
    )
    p.add_argument(
        "--no-default-excludes",
        action="store_true",
        help="also restore the contents of proc, sys, dev, run, tmp, mnt, media, lost+found (their empty directories always come back)",
    )
    restore_arguments(p)
    p.add_argument(
        "--archive-file",
        type=int,
        metavar="N",
        help="the archive is tape file N (for a tape whose label cannot say; default: from the label, else 0)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop; nothing is written")
    p.add_argument("--resume", action="store_true", help="continue an interrupted restore from its journal")
    p.add_argument(
        "--seek-threshold",
        type=int,
        metavar="RECORDS",
        help="read through gaps of up to RECORDS records instead of seeking (default: 64 MiB worth)",
    )
    p.add_argument("-y", "--yes", action="store_true", help="restore into a non-empty target, or over /")
    p.add_argument(
        "--same-owner-names",
        action="store_true",
        help="map owners by user/group name in the target's passwd/group (default: numeric ids)",
    )
    p.add_argument(
        "--jobs",
        type=_jobs,
        metavar="N",
        help="processes writing files (default: the CPUs this process may use; 1: one process)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=run)


def restore_arguments(p) -> None:
    """The flags `recover` passes on to its restore stage, declared once for both commands."""
    p.add_argument("--catalog", metavar="FILE", help="use this catalog.jsonl.gz instead of the tape's")
    p.add_argument(
        "--no-catalog",
        action="store_true",
        help="ignore any catalog: one streaming pass over the archive, no seeking",
    )
    p.add_argument(
        "--reload-db",
        action="store_true",
        help="install a one-shot systemd unit in the target that reloads the database dumps at boot",
    )


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--jobs {text}: give a number of processes, 1 or more")
    return int(text)


def run(args) -> int:
    if args.seek_threshold is not None and args.seek_threshold < 0:
        raise UsageError(
            f"--seek-threshold: {args.seek_threshold} cannot be negative (0 seeks over every gap)"
        )
    options = RestoreOptions(
        paths=[path_argument(p) for p in args.paths],
        target=args.target,
        excludes=list(args.exclude),
        default_excludes=not args.no_default_excludes,
        catalog=args.catalog,
        no_catalog=args.no_catalog,
        archive_file=args.archive_file,
        dry_run=args.dry_run,
        resume=args.resume,
        seek_threshold=args.seek_threshold,
        yes=args.yes,
        reload_db=args.reload_db,
        numeric_owner=not args.same_owner_names,
        jobs=args.jobs,
    )
    with cli.open_device(args) as tape:
        result = run_restore(tape, options)
    if args.json:
        print(json.dumps(json_safe(result.to_json()), ensure_ascii=False))
    return result.exit_code
