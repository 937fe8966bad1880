"""Pure parsers for the layers between partitions and filesystems: md RAID, LVM and LUKS.

- `parse_md(detail_export, examine_text)`: `mdadm --detail --export /dev/mdX` (KEY=value: MD_LEVEL, MD_DEVICES,
  MD_METADATA, MD_UUID, MD_NAME, MD_DEVICE_<dev>_ROLE/_DEV) plus the text of `mdadm --examine MEMBER` for what
  the export leaves out (chunk size, bitmap).  The result is what `mdadm --create` needs to make the same array.
- `parse_lvm_report(text, kind)`: `pvs|vgs|lvs --reportformat json --units b --nosuffix`, the rows of kind
  "pv", "vg" or "lv" with sizes as integers.
- `parse_luks_dump(text)`: `cryptsetup luksDump` (text is all it has, LUKS1 and LUKS2 differ).  It keeps the
  version, UUID, label, cipher, key size, sector size, PBKDF and hash, and the data offset, and deliberately
  nothing else: no salt, digest or key material ever enters the layout.
"""

from __future__ import annotations

import json
import re
from typing import Dict, List, Optional

from rescue.layout.parse_disks import parse_export


def _size_k(value: str) -> Optional[int]:
    m = re.match(r"\s*(\d+)\s*([KMG]?)", value)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2)]


def parse_md(detail_export: str, examine_text: str = "") -> dict:
    ex = parse_export(detail_export)
    members = []
    for key, value in ex.items():
        m = re.match(r"MD_DEVICE_(.+)_DEV$", key)
        if m:
            role = ex.get(f"MD_DEVICE_{m.group(1)}_ROLE")
            members.append({"device": value, "role": role})
    members.sort(
        key=lambda d: (not (d["role"] or "").isdigit(), int(d["role"]) if (d["role"] or "").isdigit() else 0)
    )
    fields: Dict[str, str] = {}
    for line in examine_text.splitlines():
        key, sep, value = line.partition(" : ")
        if sep:
            fields[key.strip()] = value.strip()
    bitmap = fields.get("Internal Bitmap")
    name = ex.get("MD_NAME")
    return {
        "level": ex.get("MD_LEVEL"),
        "raid_devices": int(ex["MD_DEVICES"]) if ex.get("MD_DEVICES", "").isdigit() else None,
        "metadata": ex.get("MD_METADATA"),
        "uuid": ex.get("MD_UUID"),
        "name": name,
        # MD_NAME is "host:name"; --create --name takes the part after the colon and adds this host's name
        # unless --homehost says otherwise.
        "homehost": name.split(":", 1)[0] if name and ":" in name else None,
        "devname": ex.get("MD_DEVNAME"),
        "members": members,
        "chunk_size": _size_k(fields["Chunk Size"]) if "Chunk Size" in fields else None,
        "bitmap": "internal" if bitmap else "none",
        "layout": fields.get("Layout"),
        "data_offset_sectors": int(fields["Data Offset"].split()[0]) if "Data Offset" in fields else None,
    }


LVM_INT_FIELDS = {
    "pv_size",
    "dev_size",
    "pe_start",
    "pv_free",
    "vg_size",
    "vg_free",
    "vg_extent_size",
    "pv_count",
    "lv_count",
    "lv_size",
    "stripes",
    "stripe_size",
    "seg_count",
}


def parse_lvm_report(text: str, kind: str) -> List[dict]:
    rows = []
    for report in json.loads(text).get("report", []):
        for row in report.get(kind, []):
            clean = {}
            for key, value in row.items():
                value = value.strip() if isinstance(value, str) else value
                if key in LVM_INT_FIELDS and isinstance(value, str) and value.isdigit():
                    value = int(value)
                clean[key] = value
            rows.append(clean)
    return rows


def _luks_fields(text: str) -> Dict[str, str]:
    """The first occurrence of every "Key: value" line (tabs and alignment spaces stripped)."""
    out: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key and key not in out:
            out[key] = value.strip()
    return out


def _bytes(value: Optional[str]) -> Optional[int]:
    m = re.match(r"(\d+)", value or "")
    return int(m.group(1)) if m else None


def parse_luks_dump(text: str) -> dict:
    f = _luks_fields(text)
    version = int(f.get("Version", "0") or 0)
    label = f.get("Label")
    if version == 1:
        mode = f.get("Cipher mode")
        return {
            "version": 1,
            "uuid": f.get("UUID"),
            "label": None,
            "cipher": f"{f.get('Cipher name')}-{mode}" if mode else f.get("Cipher name"),
            "key_size": _bytes(f.get("MK bits")),
            "sector_size": 512,
            "pbkdf": "pbkdf2",
            "hash": f.get("Hash spec"),
            "data_offset": (_bytes(f.get("Payload offset")) or 0) * 512,
        }
    # LUKS2: the first data segment has the cipher and sector size, the first keyslot the key size and PBKDF.
    segment = text.split("Data segments:", 1)[-1].split("Keyslots:", 1)[0]
    keyslot = text.split("Keyslots:", 1)[-1].split("Tokens:", 1)[0]
    seg, slot = _luks_fields(segment), _luks_fields(keyslot)
    return {
        "version": version,
        "uuid": f.get("UUID"),
        "label": None if label in (None, "(no label)") else label,
        "cipher": seg.get("cipher"),
        "key_size": _bytes(slot.get("Key")),
        "sector_size": _bytes(seg.get("sector")),
        "pbkdf": slot.get("PBKDF"),
        "hash": slot.get("AF hash") or slot.get("Hash"),
        "data_offset": _bytes(seg.get("offset")),
    }
