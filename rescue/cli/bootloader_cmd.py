"""`rescue bootloader install`: the bootloader stage of `rescue recover` alone (wiring for rescue.recover.job)."""

from __future__ import annotations

from rescue.cli.layout_cmd import parse_maps
from rescue.cli.recover_cmd import add_common
from rescue.recover.job import RecoverOptions, run_one


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bootloader",
        help="install the bootloader into a restored target",
        description="grub-install (BIOS or UEFI) and update-grub in a chroot of the target, the initramfs when "
        "disk names or md/LVM/LUKS identities changed. Uses the recover state, else --from LAYOUT.",
    )
    sub = p.add_subparsers(dest="bootloader_command", metavar="ACTION")
    sub.required = True
    s = sub.add_parser("install", help="install grub on the disks that had it")
    add_common(s)
    s.add_argument("--from", dest="layout_file", metavar="FILE", help="layout.json (without a recover state)")
    s.add_argument(
        "--map", action="append", default=[], metavar="OLD=NEW", help="layout disk OLD is NEW here"
    )
    s.set_defaults(func=run)


def run(args) -> int:
    options = RecoverOptions(
        target=args.target, state_dir=args.state_dir, layout_file=args.layout_file, maps=parse_maps(args.map)
    )
    return run_one("bootloader", options)
