"""`rescue db dump|reload`: run the database hooks by hand, or load dumps into running servers after a restore."""

from __future__ import annotations

import os
import sys

from rescue import cli, config, db
from rescue.errors import EXIT_OK, EXIT_PARTIAL, UsageError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "db", help="dump or reload the databases", description="Database hooks by hand."
    )
    sub = p.add_subparsers(dest="db_command", metavar="dump|reload")
    sub.required = True

    d = sub.add_parser("dump", help="dump the configured databases into a directory (0700, files 0600)")
    d.add_argument("-o", "--output", metavar="DIR", help=f"directory (default {config.DEFAULT_SPOOL_DIR})")
    _common(d)
    d.set_defaults(func=run_dump)

    r = sub.add_parser(
        "reload",
        help="load dumps into the running servers (after a restore)",
        description="Load each dump into its running server: the FILEs given, else ROOT/var/lib/rescue/dumps/*.sql. "
        "A dump is matched to a hook of the same name (config or --db), else its type is read from its header "
        "and the local server is used (PostgreSQL as the postgres user).",
    )
    r.add_argument("files", nargs="*", metavar="FILE")
    r.add_argument("--root", default="/", help="restored system whose dumps to load (default /)")
    _common(r)
    r.set_defaults(func=run_reload)


def _common(p) -> None:
    p.add_argument(
        "--db", metavar="SPEC", action="append", help="hook NAME[,key=value...] (see rescue backup)"
    )
    p.add_argument("--no-db", action="store_true", help="ignore the hooks of the config file")
    cli.config_argument(p)


def run_dump(args) -> int:
    cfg = cli.settings(args)
    hooks = config.select_hooks(cfg, args.db, args.no_db)
    if not hooks:
        raise UsageError("no database hooks: add a [db NAME] section to the config or give --db")
    spool = args.output or cfg.spool_dir
    dumps, warnings = db.run_dumps(hooks, spool, sys.stderr)
    for d in dumps:
        print(f"{d.path}\t{d.size}")
    return EXIT_PARTIAL if warnings else EXIT_OK


def run_reload(args) -> int:
    cfg = cli.settings(args)
    hooks = {h.name: h for h in config.select_hooks(cfg, args.db, args.no_db)}
    files = args.files or db.dump_files(args.root)
    if not files:
        raise UsageError(f"{os.path.join(args.root, db.DUMP_ARCDIR)}: no dumps to reload")
    for path in files:
        name = os.path.basename(path).rsplit(".", 1)[0]
        print(f"rescue: reloading {path}", file=sys.stderr)
        db.reload(path, hooks.get(name))
        print(f"{path}\treloaded")
    return EXIT_OK
