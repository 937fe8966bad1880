"""`rescue [-f DEVICE] label [--json] [--restore-text]`: print the label of the tape (tape file 0).

The tape is opened by rescue.tapeset.opener (a damaged label whose JSON survived is shown, with a warning); the
catalog tape file is only looked for, so a set whose backup did not finish is marked "incomplete"."""

from __future__ import annotations

import json
import sys

from rescue import cli
from rescue.errors import RescueError
from rescue.tapeset.label import restore_text
from rescue.tapeset.opener import open_set

INCOMPLETE = "incomplete (no catalog: the backup did not finish)"


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
    with cli.open_device(args) as tape, open_set(tape, read_catalog=False) as ts:
        for text in ts.warnings:
            print(f"rescue: warning: {text}", file=sys.stderr)
        label = ts.label
        if label is None:
            what = "a damaged rescue label" if ts.rescue_set else "no rescue label (a plain tar tape?)"
            raise RescueError(
                f"{device}: {what} in tape file 0; list it with 'tar -tvf {device} -b 512' or build a catalog "
                "with 'rescue catalog rebuild'"
            )
        tape.rewind()
    state = INCOMPLETE if ts.incomplete else "complete"
    if args.json:
        data = label.to_json()
        data["layout"] = label.layout
        data["incomplete"] = ts.incomplete
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
            ("set", state),
            ("keep until", label.retention_until or "-"),
            ("dumps", " ".join(label.dumps) or "-"),
            ("excludes", " ".join(label.excludes) or "-"),
            ("layout", "yes" if label.layout else "-"),
        ]
        for key, value in rows:
            print(f"{key + ':':13} {value}")
    return 0
