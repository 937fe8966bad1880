"""`layout show`: the dependency tree of a layout as text or JSON, with the data the catalog holds per mount point.

Contract: `show_json(layout, members=None, usage=None) -> dict` ({"tree": model.tree(...), "usage": {mount point: {bytes,
files}} or None, "missing": [...], "boot": {...}}) and `show_text(layout, members=None, usage=None) -> str`, one line per
device, indented by depth:

    /dev/sda  disk 20.0 GiB  gpt
      /dev/sda1  part 1.0 MiB  (bios_boot)
      /dev/sda2  part 512.0 MiB  vfat UUID=ABCD-1234  -> /boot/efi  (12.3 MiB in 40 files)

`members` is any iterable of catalog members (the CLI passes the tape's or a file's catalog); without it the
usage is left out (or `usage`, a `model.usage_by_mount` result computed while the catalog was at hand).  A minimal layout (mounts and lsblk only, written by older versions) shows its mounts.
"""

from __future__ import annotations

from typing import Iterable, List, Optional

from rescue.layout import model
from rescue.layout.parse_disks import find_partition
from rescue.layout.plan import human


def show_json(layout: dict, members: Optional[Iterable] = None, usage: Optional[dict] = None) -> dict:
    if members is not None:
        usage = model.usage_by_mount(layout, members)
    return {
        "format": layout.get("format"),
        "captured": layout.get("captured"),
        "tree": model.tree(layout) if model.is_full(layout) else [],
        "mounts": layout.get("mounts", []),
        "usage": usage,
        "boot": layout.get("boot"),
        "missing": layout.get("missing", []),
    }


def _line(layout: dict, node: dict, depth: int, usage: Optional[dict]) -> str:
    parts = [node["device"], node.get("type") or "?", human(int(node.get("size") or 0))]
    disk = next((d for d in layout.get("disks", []) if d["path"] == node["device"]), None)
    if disk and disk.get("table"):
        parts.append(disk["table"]["label"])
    part = find_partition(layout.get("disks", []), node["device"])
    if part and part.get("role"):
        parts.append(f"({part['role']})")
    if node.get("fstype"):
        parts.append(node["fstype"])
    if node.get("uuid"):
        parts.append(f"UUID={node['uuid']}")
    if node.get("label"):
        parts.append(f"LABEL={node['label']}")
    for point in node.get("mount_points", []):
        held = ""
        if usage is not None and point in usage:
            held = f" ({human(usage[point]['bytes'])} in {usage[point]['files']} files)"
        parts.append(f"-> {point}{held}")
    if node.get("see_above"):
        parts.append("(see above)")
    return "  " * depth + "  ".join(parts)


def show_text(layout: dict, members: Optional[Iterable] = None, usage: Optional[dict] = None) -> str:
    data = show_json(layout, members, usage)
    lines: List[str] = []

    def walk(node: dict, depth: int) -> None:
        lines.append(_line(layout, node, depth, data["usage"]))
        for child in node["children"]:
            walk(child, depth + 1)

    for root in data["tree"]:
        walk(root, 0)
    if not data["tree"]:
        lines.append("minimal layout (mounts only):")
        for m in data["mounts"]:
            lines.append(f"  {m.get('source')}  {m.get('fstype')}  -> {m.get('mount_point')}")
    boot = data.get("boot") or {}
    if boot:
        lines.append(
            f"firmware: {boot.get('firmware')}; boot packages: {' '.join(boot.get('packages') or []) or '-'}"
        )
    for problem in data["missing"]:
        lines.append(f"not captured: {problem}")
    return "\n".join(lines) + "\n"
