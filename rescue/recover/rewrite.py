"""Pure rewrites of the files that name devices: fstab, crypttab, mdadm.conf, the resume device.

Contract: each function takes the file's text, `uuids` (old UUID -> new, filesystems, swap, LUKS and md arrays)
and `devices` (old device path -> new, the device map of the layout stage) and returns `(text, changes)`:
the new text and one line per replaced name.  Empty maps return the text unchanged, byte for byte, as when the
layout stage kept every UUID and disk name.  Comments and spacing are kept; only the names are replaced.  md
UUIDs are compared without their separators (mdadm writes them as 4 groups of 8 hex digits with colons).
"""

from __future__ import annotations

import re
from typing import Dict, List, Tuple

Changes = List[str]


def _bare(uuid: str) -> str:
    return re.sub(r"[^0-9a-f]", "", uuid.lower())


def _name(token: str, uuids: Dict[str, str], devices: Dict[str, str]) -> str:
    """The new name for one device reference (UUID=, /dev/disk/by-uuid/, a device path), else the token."""
    for prefix in ("UUID=", "/dev/disk/by-uuid/"):
        if token.startswith(prefix):
            old = token[len(prefix) :]
            for o, n in uuids.items():
                if _bare(o) == _bare(old) and o != n:
                    return prefix + n
            return token
    return devices.get(token, token)


def _rewrite_field(text: str, field: int, uuids, devices, what: str) -> Tuple[str, Changes]:
    out, changes = [], []
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("#") or not line.strip():
            out.append(line)
            continue
        parts = re.split(r"(\s+)", line)  # keeps the separators, so spacing survives
        words = [i for i, p in enumerate(parts) if p and not p.isspace()]
        if len(words) > field:
            i = words[field]
            new = _name(parts[i], uuids, devices)
            if new != parts[i]:
                changes.append(f"{what}: {parts[i]} -> {new}")
                parts[i] = new
        out.append("".join(parts))
    return "".join(out), changes


def rewrite_fstab(text: str, uuids: Dict[str, str], devices: Dict[str, str]) -> Tuple[str, Changes]:
    """fstab(5): the first field names the device."""
    return _rewrite_field(text, 0, uuids, devices, "fstab")


def rewrite_crypttab(text: str, uuids: Dict[str, str], devices: Dict[str, str]) -> Tuple[str, Changes]:
    """crypttab(5): the second field names the encrypted device."""
    return _rewrite_field(text, 1, uuids, devices, "crypttab")


_TOKEN = re.compile(r"(?<![\w/-])(UUID=[0-9A-Fa-f:-]+|/dev/disk/by-uuid/[0-9A-Fa-f-]+|/dev/[\w/.-]+)")


def rewrite_names(
    text: str, uuids: Dict[str, str], devices: Dict[str, str], what: str
) -> Tuple[str, Changes]:
    """Every device name anywhere in the text: mdadm.conf ARRAY lines, RESUME=, resume= on a kernel line."""
    changes: Changes = []

    def one(m):
        new = _name(m.group(1), uuids, devices)
        if new != m.group(1):
            changes.append(f"{what}: {m.group(1)} -> {new}")
        return new

    lines = []
    for line in text.splitlines(keepends=True):
        lines.append(line if line.lstrip().startswith("#") else _TOKEN.sub(one, line))
    return "".join(lines), changes


def uuid_changes(layout: dict, device_map: Dict[str, str], blkid_devices: List[dict]) -> Dict[str, str]:
    """Old UUID -> new for every filesystem, swap, LUKS device and md array whose device now reports another."""
    by_dev = {d["DEVNAME"]: d for d in blkid_devices}
    pairs = [(fs.get("uuid"), fs["device"]) for fs in layout.get("filesystems", [])]
    pairs += [(k.get("uuid"), k["device"]) for k in layout.get("luks", [])]
    pairs += [
        (md.get("uuid"), md["members"][0]["device"]) for md in layout.get("md", []) if md.get("members")
    ]
    found = {}
    for old, dev in pairs:
        now = by_dev.get(device_map.get(dev, dev), {}).get("UUID")
        if old and now and _bare(now) != _bare(old):
            found[old] = now
    return found


# (path in the target, rewrite) of every file that names devices; the first existing mdadm.conf counts.
FILES = (
    ("etc/fstab", rewrite_fstab),
    ("etc/crypttab", rewrite_crypttab),
    ("etc/mdadm/mdadm.conf", lambda t, u, d: rewrite_names(t, u, d, "mdadm.conf")),
    ("etc/mdadm.conf", lambda t, u, d: rewrite_names(t, u, d, "mdadm.conf")),
    ("etc/initramfs-tools/conf.d/resume", lambda t, u, d: rewrite_names(t, u, d, "resume")),
    ("etc/default/grub", lambda t, u, d: rewrite_names(t, u, d, "grub resume")),
)
