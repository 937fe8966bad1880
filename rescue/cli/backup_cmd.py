"""`rescue [-f DEVICE] backup [ROOT] ...`: argument wiring for rescue.backup.job (flags override rescue.conf)."""

from __future__ import annotations

import json
import sys

from rescue import cli, config
from rescue.backup.job import BackupOptions, check_root, run_backup, summary_text


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
    config.add_flags(p)
    p.add_argument("--force", action="store_true", help="write although the shrink guard refuses")
    p.add_argument(
        "--ignore-retention", action="store_true", help="overwrite a tape inside its retention period"
    )
    p.add_argument("--allow-other-host", action="store_true", help="overwrite a tape written by another host")
    p.add_argument(
        "--db",
        metavar="SPEC",
        action="append",
        help="database hook NAME[,key=value...][,optional], e.g. mariadb,defaults_file=/etc/rescue/my.cnf",
    )
    p.add_argument("--no-db", action="store_true", help="skip the database hooks of the config file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def options_from(args, cfg) -> BackupOptions:
    """The job's options: rescue.conf's settings with the flags given on top, and this run's switches."""
    return BackupOptions(
        **config.backup_settings(args, cfg),
        force=args.force,
        ignore_retention=args.ignore_retention,
        allow_other_host=args.allow_other_host,
        db_hooks=config.select_hooks(cfg, args.db, args.no_db),
    )


def run(args) -> int:
    device = cli.device_of(args)
    # With the archive on stdout (-f -), the result (and a --json error) goes to stderr.
    stream = args.result_stream = sys.stderr if device == "-" else sys.stdout
    options = options_from(args, cli.settings(args))
    root = check_root(args.root)
    with cli.open_device(args, write=True) as tape:
        result = run_backup(tape, root, options)
    if args.json:
        json.dump(result.to_json(), stream, indent=2)
        stream.write("\n")
    else:
        print(summary_text(result), file=stream)
    return result.exit_code
