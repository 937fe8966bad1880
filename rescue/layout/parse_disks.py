"""Pure parsers for disks and partition tables: `lsblk -J -b -O`, `sfdisk --json`, `blkid -p -o export`.

Each takes the tool's output text (or parsed JSON) and returns the plain dicts that go into layout.json (see
docs/layout-format.md); none runs anything.  Sizes are bytes, partition starts and sizes are sectors of the
table's sector size, as sfdisk reports them.
"""

from __future__ import annotations

import json
from typing import Dict, Iterator, List, Optional

# GPT partition type GUIDs (UEFI spec; the Discoverable Partitions Specification) and MBR type bytes with a role.
GPT_BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649"
GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
MBR_ESP = "ef"
ROLES = {GPT_BIOS_BOOT: "bios_boot", GPT_ESP: "esp", MBR_ESP: "esp"}

# lsblk columns kept per device (the rest, like scheduler and queue sizes, say nothing about the layout).
LSBLK_KEEP = (
    "name",
    "kname",
    "path",
    "type",
    "size",
    "maj:min",
    "fstype",
    "fsver",
    "uuid",
    "label",
    "partuuid",
    "partlabel",
    "parttype",
    "partflags",
    "pttype",
    "ptuuid",
    "mountpoints",
    "model",
    "serial",
    "wwn",
    "rota",
    "log-sec",
    "phy-sec",
    "pkname",
    "tran",
    "rm",
    "ro",
)


def lsblk_devices(data: dict) -> List[dict]:
    """The `lsblk -J -b -O` tree as a flat list in tree order, each device with the kept columns and `children`
    (paths).  A device under several parents (an md array on two partitions) appears once."""
    seen: Dict[str, dict] = {}

    def walk(dev: dict) -> None:
        path = dev.get("path") or "/dev/" + dev.get("name", "?")
        kids = dev.get("children") or []
        if path not in seen:
            entry = {k: dev.get(k) for k in LSBLK_KEEP}
            entry["path"] = path
            entry["mountpoints"] = [m for m in (dev.get("mountpoints") or []) if m]
            entry["children"] = []
            seen[path] = entry
        entry = seen[path]
        for kid in kids:
            kid_path = kid.get("path") or "/dev/" + kid.get("name", "?")
            if kid_path not in entry["children"]:
                entry["children"].append(kid_path)
            walk(kid)

    for dev in data.get("blockdevices") or []:
        walk(dev)
    return list(seen.values())


def parse_lsblk(text: str) -> List[dict]:
    return lsblk_devices(json.loads(text))


def descendants(devices: List[dict], path: str) -> Iterator[dict]:
    """Every device stacked on `path` (partitions, md, dm ...), depth first, each once."""
    by_path = {d["path"]: d for d in devices}
    seen = set()
    stack = list(reversed(by_path[path]["children"])) if path in by_path else []
    while stack:
        p = stack.pop()
        if p in seen or p not in by_path:
            continue
        seen.add(p)
        yield by_path[p]
        stack.extend(reversed(by_path[p]["children"]))


def parse_sfdisk(text: str) -> dict:
    """`sfdisk --json DISK`: the table with its label, id, LBA range, sector size and partitions, each with its
    number and role (bios_boot, esp or null)."""
    table = json.loads(text)["partitiontable"]
    parts = []
    for p in table.get("partitions", []):
        node = p["node"]
        number = int("".join(c for c in node[len(node.rstrip("0123456789")) :]) or 0)
        ptype = str(p.get("type", "")).upper() if table["label"] == "gpt" else str(p.get("type", "")).lower()
        parts.append(
            {
                "node": node,
                "number": number,
                "start": int(p["start"]),
                "size": int(p["size"]),
                "type": ptype,
                "uuid": p.get("uuid"),
                "name": p.get("name"),
                "attrs": p.get("attrs"),
                "bootable": bool(p.get("bootable", False)),
                "role": ROLES.get(ptype),
            }
        )
    return {
        "label": table["label"],
        "id": table.get("id"),
        "unit": table.get("unit", "sectors"),
        "first_lba": table.get("firstlba"),
        "last_lba": table.get("lastlba"),
        "sector_size": int(table.get("sectorsize", 512)),
        "partitions": parts,
    }


def parse_export(text: str) -> Dict[str, str]:
    """KEY=value lines (`blkid -o export`, `mdadm --export`); blank lines and others are skipped."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key and key.replace("_", "").isalnum():
            out[key] = value
    return out


def partition_node(disk: str, number: int) -> str:
    """The kernel's name for partition `number` of `disk`: sda1, but nvme0n1p1, loop0p1, mmcblk0p1, md0p1."""
    return f"{disk}p{number}" if disk[-1:].isdigit() else f"{disk}{number}"


def disk_record(dev: dict, by_id: List[str], by_path: List[str]) -> dict:
    """The identity and geometry of one whole disk from its lsblk entry and its /dev/disk links."""
    return {
        "path": dev["path"],
        "name": dev.get("name"),
        "type": dev.get("type"),
        "size": int(dev.get("size") or 0),
        "logical_sector_size": dev.get("log-sec"),
        "physical_sector_size": dev.get("phy-sec"),
        "model": (dev.get("model") or "").strip() or None,
        "serial": (dev.get("serial") or "").strip() or None,
        "wwn": dev.get("wwn"),
        "rotational": dev.get("rota"),
        "transport": dev.get("tran"),
        "by_id": sorted(by_id),
        "by_path": sorted(by_path),
        "table": None,
    }


def find_partition(disks: List[dict], node: str) -> Optional[dict]:
    for disk in disks:
        for part in (disk.get("table") or {}).get("partitions", []):
            if part["node"] == node:
                return part
    return None
