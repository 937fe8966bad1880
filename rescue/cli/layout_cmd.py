"""`rescue [-f DEVICE] layout capture|show|recreate`: the machine's storage, captured, shown, rebuilt.

Wiring only: the work is in rescue.layout (capture, show, plan, recreate; the format in docs/layout-format.md).
"""

from __future__ import annotations

import json
import sys

from rescue import config
from rescue.errors import EXIT_FATAL, UsageError
from rescue.layout import capture, recreate, show, source
from rescue.layout.plan import RecreateOptions


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "layout",
        help="capture, show or recreate the disk layout",
        description="Capture the machine's storage (disks, partition tables, md, LUKS, LVM, filesystems, "
        "mounts, boot), show a captured layout, or recreate it on this machine's disks.",
    )
    sub = p.add_subparsers(dest="layout_command", metavar="ACTION")
    sub.required = True
    c = sub.add_parser("capture", help="write this machine's layout as JSON")
    c.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    c.add_argument(
        "--root", default="/", help="mount points relative to this root, as the backup of it (default /)"
    )
    c.add_argument("--disk", action="append", default=[], metavar="DEV", help="only this disk (repeatable)")
    c.add_argument(
        "--luks-header-backup", metavar="DIR", help="also write LUKS header backups into DIR (see docs)"
    )
    c.set_defaults(func=run_capture)
    for name, helptext in (("show", "print the dependency tree"), ("recreate", "rebuild the layout here")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument(
            "--from", dest="source", metavar="FILE", help="layout.json (default: the tape's label)"
        )
        s.add_argument("--catalog", metavar="FILE", help="catalog.jsonl.gz for the data per mount point")
        s.add_argument("--json", action="store_true", help="print JSON")
        s.add_argument("--config", metavar="FILE", help=f"config file (default {config.DEFAULT_PATH})")
    s.add_argument(
        "--map", action="append", default=[], metavar="OLD=NEW", help="layout disk OLD is NEW here"
    )
    s.add_argument("--dry-run", action="store_true", help="print the plan (and refusals) and stop")
    s.add_argument("--yes", action="store_true", help="do not ask for the typed confirmation")
    s.add_argument("--target", default="/mnt/target", help="mount everything under DIR (default /mnt/target)")
    s.add_argument("--key-file", metavar="FILE", help="LUKS passphrase file (default: ask on the terminal)")
    s.add_argument(
        "--grow",
        metavar="NAME",
        help="partition (node, number, mount point, label) taking the size difference",
    )
    s.add_argument("--log", metavar="FILE", help="log of every command and its output")
    sub.choices["show"].set_defaults(func=run_show)
    s.set_defaults(func=run_recreate)


def run_capture(args) -> int:
    layout = capture(args.root, args.disk or None, args.luks_header_backup)
    text = json.dumps(layout, indent=2, sort_keys=True) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    for problem in layout["missing"]:
        print(f"rescue: layout capture could not see: {problem}", file=sys.stderr)
    return 0


def _layout_and_usage(args, want_usage: bool):
    if args.source:
        layout = source.load_layout_file(args.source)
        usage = None
    else:
        device = config.resolve_device(args.device, config.load(args.config))
        layout, usage = source.from_tape(device, want_usage and not args.catalog)
    if args.catalog:
        usage = source.usage_from_catalog(layout, args.catalog)
    return layout, usage


def run_show(args) -> int:
    layout, usage = _layout_and_usage(args, want_usage=True)
    if args.json:
        json.dump(show.show_json(layout, usage=usage), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(show.show_text(layout, usage=usage))
    return 0


def parse_maps(pairs) -> dict:
    """`--map OLD=NEW` values (layout recreate, recover, bootloader, finalize) as {OLD: NEW}."""
    maps = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise UsageError(f"--map {pair}: expected OLD=NEW, e.g. --map /dev/sda=/dev/nvme0n1")
        maps[old] = new
    return maps


def run_recreate(args) -> int:
    layout, usage = _layout_and_usage(args, want_usage=True)
    options = RecreateOptions(
        maps=parse_maps(args.map),
        grow=args.grow,
        target=args.target,
        key_file=args.key_file,
        usage=usage,
        dry_run=args.dry_run,
        yes=args.yes,
        log_path=args.log,
    )
    out = sys.stderr if args.json else sys.stdout
    result = recreate.recreate(layout, options, out=out)
    if args.json:
        data = {
            "done": result.done,
            "refusals": result.refusals,
            "mounts": result.mounts,
            "device_map": result.device_map,
            "changed": result.changed,
            "log": result.log_path,
            "plan": [{"stage": s.stage, "argv": s.argv} for s in result.plan.steps],
        }
        json.dump(data, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    return EXIT_FATAL if result.refusals else 0
