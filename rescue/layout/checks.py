"""Checks of recreate's steps: after each one, the tools are asked again and their answer compared with the
layout.  `check_step(check, run) -> None | problem` takes a step's `check` dict (built by `plan`) and a runner
(`run(argv) -> CompletedProcess`, which logs); it returns None when the result is as planned, else one line
saying what differs.  Kinds: "table" (`sfdisk --json`: label, disk id, every partition's start, size, type and
UUID), "kernel" (`lsblk -J` shows each new partition with its size), "blkid" (`blkid -p -o export`: TYPE, UUID, LABEL), "md" (`mdadm
--detail --export`: MD_UUID), "lvs" (`lvs --reportformat json`: the VG's LV UUIDs), "mount" (mountinfo).
"""

from __future__ import annotations

import os
from typing import Callable, Optional

from rescue.layout import mounts as mountinfo
from rescue.layout import parse_disks, parse_stack


def _text(run: Callable, argv) -> Optional[str]:
    proc = run(argv)
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None


def _same(a, b) -> bool:
    return (str(a).lower() if a is not None else None) == (str(b).lower() if b is not None else None)


def _table(check: dict, run: Callable) -> Optional[str]:
    text = _text(run, ["sfdisk", "--json", check["disk"]])
    if text is None:
        return f"sfdisk --json {check['disk']} shows no partition table"
    got = parse_disks.parse_sfdisk(text)
    if got["label"] != check["label"] or not _same(got["id"], check["id"]):
        return f"{check['disk']}: table {got['label']} {got['id']}, planned {check['label']} {check['id']}"
    if len(got["partitions"]) != len(check["partitions"]):
        return f"{check['disk']}: {len(got['partitions'])} partitions, planned {len(check['partitions'])}"
    for have, want in zip(got["partitions"], check["partitions"]):
        for key in ("start", "size", "type", "uuid"):
            if want.get(key) is not None and not _same(have.get(key), want[key]):
                return f"{have['node']}: {key} {have.get(key)}, planned {want[key]}"
    return None


def _kernel(check: dict, run: Callable) -> Optional[str]:
    listed = _text(run, ["lsblk", "-J", "-b", "-O", check["disk"]])
    sizes = {d["path"]: int(d.get("size") or 0) for d in parse_disks.parse_lsblk(listed)} if listed else {}
    for node, size in zip(check["nodes"], check["sizes"]):
        if node not in sizes or not os.path.exists(node):
            return f"{node}: the kernel does not show the new partition (lsblk -J)"
        if sizes[node] != size:
            return f"{node}: the kernel sees {sizes[node]} bytes, planned {size}"
    return None


def _blkid(check: dict, run: Callable) -> Optional[str]:
    got = parse_disks.parse_export(_text(run, ["blkid", "-p", "-o", "export", check["device"]]) or "")
    for key, want in check["expect"].items():
        if not _same(got.get(key) or None, want or None):
            return f"{check['device']}: blkid {key}={got.get(key)}, planned {want}"
    return None


def _md(check: dict, run: Callable) -> Optional[str]:
    got = parse_stack.parse_md(_text(run, ["mdadm", "--detail", "--export", check["device"]]) or "")
    if not _same(got["uuid"], check["uuid"]):
        return f"{check['device']}: md UUID {got['uuid']}, planned {check['uuid']}"
    return None


def _lvs(check: dict, run: Callable) -> Optional[str]:
    text = _text(run, ["lvs", "--reportformat", "json", "-o", "lv_name,lv_uuid", check["vg"]])
    got = {r["lv_uuid"] for r in parse_stack.parse_lvm_report(text, "lv")} if text else set()
    missing = [u for u in check["uuids"] if u not in got]
    return (
        f"volume group {check['vg']}: LV UUIDs {', '.join(missing)} missing after vgcfgrestore"
        if missing
        else None
    )


def _mount(check: dict, run: Callable) -> Optional[str]:
    for m in mountinfo.read_mounts():
        if m["mount_point"] == check["target"] and os.path.realpath(m["source"]) == os.path.realpath(
            check["device"]
        ):
            return None
    return f"{check['device']} is not mounted on {check['target']}"


KINDS = {"table": _table, "kernel": _kernel, "blkid": _blkid, "md": _md, "lvs": _lvs, "mount": _mount}


def check_step(check: dict, run: Callable) -> Optional[str]:
    return KINDS[check["kind"]](check, run)
