"""`rescue [-f DEVICE] backup [ROOT] ...`: argument wiring for rescue.backup.job (flags override rescue.conf)."""

from __future__ import annotations

import argparse
import json
import sys

from rescue import cli, config
from rescue.backup.job import BackupOptions, run_backup, summary_text


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "backup",
        help="write a backup set (label, archive, catalog) to the tape",
        description="Back up ROOT (default /) to the tape: database dumps first, then etc, boot, root and the "
        "rest; a label before and a catalog after. Refuses to overwrite a tape inside its retention period or "
        "from another host, and a backup that shrank suspiciously against the last catalog. Every option has "
        "a key in /etc/rescue/rescue.conf; flags win.",
    )
    p.add_argument("root", nargs="?", default="/", metavar="ROOT", help="tree to back up (default /)")
    cli.tape_arguments(p)
    p.add_argument(
        "--record-size", metavar="N", help="bytes per tape record: 262144, 256K, 512b (default 256K)"
    )
    p.add_argument("--exclude", metavar="PATTERN", action="append", default=[], help="leave out (repeatable)")
    p.add_argument(
        "--default-excludes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="leave out proc, sys, dev, run, tmp, mnt, media, lost+found and mounted pseudo file systems "
        "(default: yes)",
    )
    p.add_argument("--one-file-system", action=argparse.BooleanOptionalAction, default=None, help="as in tar")
    p.add_argument(
        "--catalog-dir", metavar="DIR", help=f"where catalogs are kept (default {config.DEFAULT_CATALOG_DIR})"
    )
    p.add_argument(
        "--spool-dir", metavar="DIR", help=f"where dumps are spooled (default {config.DEFAULT_SPOOL_DIR})"
    )
    p.add_argument("--retention", metavar="DAYS", type=int, help="protect this set from overwriting for DAYS")
    p.add_argument(
        "--shrink-threshold", metavar="PERCENT", help="refuse a backup that shrank more (default 30; off)"
    )
    p.add_argument(
        "--keep-catalogs",
        metavar="N",
        type=int,
        help="keep the newest N catalogs of this host (default 0: all)",
    )
    p.add_argument("--force", action="store_true", help="write although the shrink guard refuses")
    p.add_argument(
        "--ignore-retention", action="store_true", help="overwrite a tape inside its retention period"
    )
    p.add_argument("--allow-other-host", action="store_true", help="overwrite a tape written by another host")
    p.add_argument(
        "--verify", action=argparse.BooleanOptionalAction, default=None, help="read back and check"
    )
    p.add_argument("--eject", action=argparse.BooleanOptionalAction, default=None, help="unload when done")
    p.add_argument("--acls", action=argparse.BooleanOptionalAction, default=None, help="store POSIX ACLs")
    p.add_argument(
        "--xattrs", action=argparse.BooleanOptionalAction, default=None, help="store extended attributes"
    )
    p.add_argument(
        "--db",
        metavar="SPEC",
        action="append",
        help="database hook NAME[,key=value...][,optional], e.g. mariadb,defaults_file=/etc/rescue/my.cnf",
    )
    p.add_argument("--no-db", action="store_true", help="skip the database hooks of the config file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _pick(flag, configured):
    return configured if flag is None else flag


def options_from(args, cfg: config.Config) -> BackupOptions:
    return BackupOptions(
        record_size=config.parse_size(args.record_size) if args.record_size else cfg.record_size,
        excludes=cfg.exclude + list(args.exclude),
        default_excludes=_pick(args.default_excludes, cfg.default_excludes),
        one_file_system=_pick(args.one_file_system, cfg.one_file_system),
        catalog_dir=args.catalog_dir or cfg.catalog_dir,
        spool_dir=args.spool_dir or cfg.spool_dir,
        retention_days=_pick(args.retention, cfg.retention_days),
        keep_catalogs=_pick(args.keep_catalogs, cfg.keep_catalogs),
        shrink_threshold=(
            config.parse_percent(args.shrink_threshold)
            if args.shrink_threshold is not None
            else cfg.shrink_threshold
        ),
        force=args.force,
        ignore_retention=args.ignore_retention,
        allow_other_host=args.allow_other_host,
        verify=_pick(args.verify, cfg.verify),
        eject=_pick(args.eject, cfg.eject),
        acls=_pick(args.acls, cfg.acls),
        xattrs=_pick(args.xattrs, cfg.xattrs),
        db_hooks=config.select_hooks(cfg, args.db, args.no_db),
    )


def run(args) -> int:
    options = options_from(args, cli.settings(args))
    device = cli.device_of(args)
    # With the archive on stdout (-f -), the result (and a --json error) goes to stderr.
    stream = args.result_stream = sys.stderr if device == "-" else sys.stdout
    with cli.open_device(args, write=True) as tape:
        result = run_backup(tape, args.root, options)
    if args.json:
        json.dump(result.to_json(), stream, indent=2)
        stream.write("\n")
    else:
        print(summary_text(result), file=stream)
    return result.exit_code
