"""`rescue finalize`: the finalize stage of `rescue recover` alone (wiring for rescue.recover.job)."""

from __future__ import annotations

from rescue.cli.layout_cmd import parse_maps
from rescue.cli.recover_cmd import add_common, reload_now_argument
from rescue.recover.job import RecoverOptions, run_one


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "finalize",
        help="make fstab, crypttab, mdadm.conf agree with the new disks; copy the logs into the target",
        description="Rewrite the restored system's device names where the disks changed (a backup copy kept), "
        "copy the recovery logs into TARGET/var/log/rescue/, reload the databases now (--reload-db-now). "
        "Uses the recover state, else --from LAYOUT.",
    )
    add_common(p)
    p.add_argument("--from", dest="layout_file", metavar="FILE", help="layout.json (without a recover state)")
    p.add_argument(
        "--map", action="append", default=[], metavar="OLD=NEW", help="layout disk OLD is NEW here"
    )
    p.add_argument("--reload-db", action="store_true", help="reload the database dumps at first boot")
    reload_now_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    options = RecoverOptions(
        target=args.target,
        state_dir=args.state_dir,
        layout_file=args.layout_file,
        maps=parse_maps(args.map),
        reload_db=args.reload_db,
        reload_db_now=args.reload_db_now,
    )
    return run_one("finalize", options)
