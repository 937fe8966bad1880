"""Pure parsers for filesystem parameters and firmware boot entries.

- `parse_dumpe2fs(text)`: `dumpe2fs -h` -> the ext2/3/4 parameters mke2fs takes back: features, block size,
  inode size, inode and block counts, reserved blocks, blocks per group, flex group size, journal size.
- `parse_xfs_info(text)`: `xfs_info DEV` -> {section: {key: value}} (meta-data, data, naming, log, realtime),
  numbers as integers, e.g. {"meta-data": {"isize": 512, "crc": 1, ...}, "data": {"bsize": 4096, ...}}.
- `parse_btrfs_super(text)`: `btrfs inspect-internal dump-super DEV` -> nodesize, sectorsize, csum type.
- `parse_btrfs_subvolumes(text)`: `btrfs subvolume list -a -p -u MNT` -> [{id, parent, path, uuid}] in id order;
  `parse_btrfs_default(text)`: `btrfs subvolume get-default MNT` -> the default subvolume's id.
- `parse_efibootmgr(text)`: `efibootmgr -v` -> {"current", "order", "entries": [{num, label, active, path}]}.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional

# Feature flags dumpe2fs shows that describe a state, not a choice made at mkfs time.
EXT_STATE_FEATURES = frozenset({"needs_recovery", "orphan_present", "snapshot_bitmap"})


def _fields(text: str) -> Dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out.setdefault(key.strip(), value.strip())
    return out


def _int(value: Optional[str]) -> Optional[int]:
    m = re.match(r"-?\d+", value or "")
    return int(m.group(0)) if m else None


def parse_dumpe2fs(text: str) -> dict:
    f = _fields(text)
    features = [x for x in f.get("Filesystem features", "").split() if x not in EXT_STATE_FEATURES]
    journal = f.get("Total journal size") or f.get("Journal size")
    journal_k = None
    if journal:
        m = re.match(r"(\d+)([kMG])", journal)
        if m:
            journal_k = int(m.group(1)) * {"k": 1, "M": 1024, "G": 1024 * 1024}[m.group(2)]
    return {
        "uuid": f.get("Filesystem UUID"),
        "label": None if f.get("Filesystem volume name") in (None, "<none>") else f["Filesystem volume name"],
        "features": features,
        "block_size": _int(f.get("Block size")),
        "inode_size": _int(f.get("Inode size")),
        "inode_count": _int(f.get("Inode count")),
        "block_count": _int(f.get("Block count")),
        "reserved_blocks": _int(f.get("Reserved block count")),
        "blocks_per_group": _int(f.get("Blocks per group")),
        "flex_bg_size": _int(f.get("Flex block group size")),
        "journal_size_k": journal_k,
        "free_blocks": _int(f.get("Free blocks")),
        "free_inodes": _int(f.get("Free inodes")),
    }


def parse_xfs_info(text: str) -> Dict[str, dict]:
    sections: Dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        head, sep, rest = line.partition("=")
        if not sep:
            continue
        if head.strip():
            current = head.strip()
            sections[current] = {}
            # "meta-data=/dev/sda1  isize=512": the first word after the section's "=" is its device or kind.
            first, _, after = rest.strip().partition(" ")
            if "=" not in first:
                sections[current]["_"] = first
                rest = after.partition(" ")[2] if first == "internal" else after  # "log =internal log"
        if current is None:
            continue
        for key, value in re.findall(r"([\w-]+)=([^\s,]+)", rest):
            sections[current][key] = int(value) if value.isdigit() else value
    return sections


def parse_btrfs_super(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) != 2 or parts[0] not in ("nodesize", "sectorsize", "csum_type", "label", "fsid"):
            continue
        value = parts[1].strip()
        m = re.match(r"\d+ \((\w+)\)$", value)  # "csum_type  0 (crc32c)": the name is what mkfs takes
        out[parts[0]] = m.group(1) if m else int(value) if value.isdigit() else value
    return out


def parse_btrfs_subvolumes(text: str) -> List[dict]:
    subs = []
    for line in text.splitlines():
        m = re.match(r"ID (\d+) gen \d+ parent (\d+) top level \d+.*?(?:uuid (\S+) )?path (.+)$", line)
        if m:
            path = m.group(4)
            if path.startswith("<FS_TREE>/"):
                path = path[len("<FS_TREE>/") :]
            subs.append({"id": int(m.group(1)), "parent": int(m.group(2)), "uuid": m.group(3), "path": path})
    return sorted(subs, key=lambda s: s["id"])


def parse_btrfs_default(text: str) -> Optional[int]:
    m = re.match(r"ID (\d+)", text.strip())
    return int(m.group(1)) if m else None


def parse_efibootmgr(text: str) -> dict:
    out: dict = {"current": None, "order": [], "entries": []}
    for line in text.splitlines():
        if line.startswith("BootCurrent:"):
            out["current"] = line.split(":", 1)[1].strip()
        elif line.startswith("BootOrder:"):
            out["order"] = [x for x in line.split(":", 1)[1].strip().split(",") if x]
        else:
            m = re.match(r"Boot([0-9A-Fa-f]{4})(\*?) (.*?)(?:\t(.*))?$", line)
            if m:
                out["entries"].append(
                    {
                        "num": m.group(1),
                        "active": m.group(2) == "*",
                        "label": m.group(3).strip(),
                        "path": m.group(4),
                    }
                )
    return out
