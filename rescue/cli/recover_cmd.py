"""`rescue [-f DEVICE] recover`: the whole recovery in named stages (wiring for rescue.recover.job)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from rescue.cli.layout_cmd import parse_maps
from rescue.cli.restore_cmd import restore_arguments
from rescue.errors import RescueError
from rescue.recover.job import RecoverOptions, run_recover
from rescue.recover.state import DEFAULT_STATE_DIR, STATE_NAME, State

EPILOG = """\
Stages: layout (recreate the disks of the backup and mount them under TARGET), restore (every file from the
tape), bootloader (grub and, only when disk names or md/LVM/LUKS identities changed, the initramfs, in a chroot
of TARGET with its own tools), finalize (fstab, crypttab, mdadm.conf, resume device; the logs into
TARGET/var/log/rescue/; with --reload-db-now the MariaDB dumps reloaded). The whole plan is shown first; one
confirmation (or --yes). A stage that fails stops with what to do next; --resume continues where it stopped.
Exit codes: 0 recovered; 1 recovered, but some files could not be restored (listed); 2 fatal or stopped."""


def add_common(p) -> None:
    p.add_argument("--target", default="/mnt/target", help="where the new filesystems are mounted")
    p.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        metavar="DIR",
        help=f"the recover state and logs (default {DEFAULT_STATE_DIR})",
    )


def reload_now_argument(p) -> None:
    p.add_argument(
        "--reload-db-now",
        action="store_true",
        help="reload the MariaDB dumps in the finalize stage, with the target's own server in a chroot "
        "(instead of --reload-db at first boot)",
    )


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "recover",
        help="recover the machine: layout, restore, bootloader, finalize",
        description="Recreate the disks, restore the files, install the bootloader and finalize, in one run.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(p)
    p.add_argument(
        "--layout", metavar="FILE", help="layout.json from `layout capture` (default: the tape's label)"
    )
    p.add_argument(
        "--map", action="append", default=[], metavar="OLD=NEW", help="layout disk OLD is NEW here"
    )
    p.add_argument(
        "--grow", metavar="NAME", help="partition taking the size difference (see layout recreate)"
    )
    p.add_argument("--key-file", metavar="FILE", help="LUKS passphrase file (default: ask on the terminal)")
    restore_arguments(p)
    reload_now_argument(p)
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop; nothing is touched")
    p.add_argument("--yes", action="store_true", help="do not ask for the typed confirmation")
    p.add_argument("--resume", action="store_true", help="continue a recover from the stage where it stopped")
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON summary on stdout (stages done, seconds, errors; the rest goes to stderr)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    options = RecoverOptions(
        device=args.device,
        layout_file=args.layout,
        maps=parse_maps(args.map),
        grow=args.grow,
        target=args.target,
        key_file=args.key_file,
        catalog=args.catalog,
        no_catalog=args.no_catalog,
        reload_db=args.reload_db,
        reload_db_now=args.reload_db_now,
        dry_run=args.dry_run,
        yes=args.yes,
        resume=args.resume,
        state_dir=args.state_dir,
    )
    if not args.json:
        return run_recover(options)
    try:
        code = run_recover(options, out=sys.stderr)
    except RescueError as e:
        _summary(args.state_dir, e.exit_code, str(e))
        raise
    _summary(args.state_dir, code, None)
    return code


def _summary(state_dir: str, code: int, error) -> None:
    state = State.load(os.path.join(state_dir, STATE_NAME))
    data = state.data if state else {}
    summary = {
        "exit_code": code,
        "error": error,
        "stages": data.get("stages", {}),
        "device_map": data.get("device_map", {}),
        "mounts": data.get("mounts", []),
    }
    print(json.dumps(summary, sort_keys=True))
