"""`rescue [-f DEVICE] label [--json] [--restore-text]`: print the label of the tape (tape file 0)."""

from __future__ import annotations

import json
import sys

from rescue import cli
from rescue.errors import RescueError
from rescue.tapeset.label import read_label, restore_text


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "label",
        help="print the tape's label",
        description="Print the rescue label of the "
        "tape (tape file 0): host, date, backup id, record size, retention, dumps.",
    )
    p.add_argument("--json", action="store_true", help="print rescue-label.json (with the layout)")
    p.add_argument(
        "--restore-text", action="store_true", help="print RESTORE.txt: how to restore with mt and tar"
    )
    cli.tape_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    device = cli.device_of(args)
    with cli.open_device(args) as tape:
        label = read_label(tape)
        if label is None:
            raise RescueError(
                f"{device}: no rescue label in tape file 0 (a plain tar tape?); list it with "
                f"'tar -tvf {device} -b 512' or build a catalog with 'rescue catalog rebuild'"
            )
        tape.rewind()
    if args.json:
        data = label.to_json()
        data["layout"] = label.layout
        json.dump(data, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    elif args.restore_text:
        sys.stdout.write(restore_text(label))
    else:
        rows = [
            ("host", label.host),
            ("backup id", label.backup_id),
            ("created", label.created),
            ("machine id", label.machine_id),
            ("written by", f"rescue {label.tool_version}"),
            ("record size", f"{label.record_size} bytes (tar -b {label.blocking_factor})"),
            ("tape files", f"label 0, archive {label.archive_file}, catalog {label.catalog_file}"),
            ("keep until", label.retention_until or "-"),
            ("dumps", " ".join(label.dumps) or "-"),
            ("excludes", " ".join(label.excludes) or "-"),
            ("layout", "yes" if label.layout else "-"),
        ]
        for key, value in rows:
            print(f"{key + ':':13} {value}")
    return 0
