"""Reading a layout: validation, the dependency tree, and the data the catalog holds under each mount point.

Contract (pure):
- `load(data, source)` -> the layout dict when it is a rescue layout this code understands (format
  "rescue-layout" version <= 1, or the older "rescue-layout-minimal" with mounts and lsblk only); raises
  LayoutError naming `source` otherwise.
- `is_full(layout)`: it has disks and partition tables (recreate needs that; the minimal format can only be shown).
- `tree(layout)` -> the roots of the dependency tree disk -> partition -> md -> LUKS -> PV/VG/LV -> filesystem ->
  mount point, as nested dicts {"device", "type", "size", "fstype", "uuid", "label", "mount_points", "children"}.
  A device stacked on several parents (an md array on two partitions, a VG on two PVs) is shown under its first
  parent and named as "(see above)" under the others.
- `usage_by_mount(layout, members)` -> {mount point: {"bytes", "files"}} from catalog members (anything with
  `.path`, `.size`, `.type`; the paths relative to the backup root like the mount points), each member counted
  under its deepest mount point.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional

from rescue.errors import RescueError

FULL_FORMAT = "rescue-layout"
MINIMAL_FORMAT = "rescue-layout-minimal"
SUPPORTED_VERSION = 1


class LayoutError(RescueError):
    """A layout file that is missing, damaged, or of a format this rescue does not understand."""


def load(data: object, source: str) -> dict:
    if not isinstance(data, dict) or data.get("format") not in (FULL_FORMAT, MINIMAL_FORMAT):
        raise LayoutError(f"{source}: not a rescue layout (no format {FULL_FORMAT!r})")
    if not isinstance(data.get("version"), int) or data["version"] > SUPPORTED_VERSION:
        raise LayoutError(
            f"{source}: layout version {data.get('version')!r} is newer than this rescue; use a newer one"
        )
    return data


def is_full(layout: dict) -> bool:
    return layout.get("format") == FULL_FORMAT


def mount_points_of(layout: dict, device: str) -> List[str]:
    return [m["mount_point"] for m in layout.get("mounts", []) if m.get("source_device") == device]


def filesystem_of(layout: dict, device: str) -> Optional[dict]:
    return next((f for f in layout.get("filesystems", []) if f["device"] == device), None)


def tree(layout: dict) -> List[dict]:
    devices = {d["path"]: d for d in layout.get("devices", [])}
    fs = {f["device"]: f for f in layout.get("filesystems", [])}
    shown: set = set()

    def node(path: str) -> dict:
        d = devices.get(path, {})
        f = fs.get(path, {})
        entry = {
            "device": path,
            "type": d.get("type"),
            "size": d.get("size"),
            "fstype": f.get("type") or d.get("fstype"),
            "uuid": f.get("uuid") or d.get("uuid"),
            "label": f.get("label") or d.get("label"),
            "mount_points": mount_points_of(layout, path),
            "children": [],
        }
        if path in shown:
            entry["see_above"] = True
            return entry
        shown.add(path)
        entry["children"] = [node(c) for c in d.get("children", [])]
        return entry

    return [node(disk["path"]) for disk in layout.get("disks", [])]


def mount_point_for(path: str, points: List[str]) -> Optional[str]:
    """The deepest of `points` ("/", "/boot" ...) holding archive path `path` ("boot/vmlinuz")."""
    full = "/" + path.strip("/")
    best = None
    for p in points:
        inside = full == p or full.startswith(p.rstrip("/") + "/")
        if inside and (best is None or len(p) > len(best)):
            best = p
    return best


def usage_by_mount(layout: dict, members: Iterable) -> Dict[str, dict]:
    points = sorted({m["mount_point"] for m in layout.get("mounts", [])})
    usage = {p: {"bytes": 0, "files": 0} for p in points}
    for member in members:
        where = mount_point_for(member.path, points)
        if where is None:
            continue
        usage[where]["files"] += 1
        if getattr(member, "type", "file") == "file":
            usage[where]["bytes"] += int(member.size or 0)
    return usage


# Filesystem parameters recreate keeps, per kind (the rest, like free counts, are state).
KEPT_EXT = (
    "features",
    "block_size",
    "inode_size",
    "inode_count",
    "block_count",
    "reserved_blocks",
    "blocks_per_group",
    "flex_bg_size",
    "journal_size_k",
)


def identity(layout: dict) -> dict:
    """What recreate promises to keep, in a form two captures can be compared by: partition tables (label, id,
    each partition's geometry, type, UUID, name), md (level, metadata, UUID, name), LUKS (version, UUID, cipher,
    key and sector size), LVM (VG and LV names, UUIDs, sizes; PV UUIDs) and filesystems (type, UUID, label,
    size and mkfs parameters), all keyed by what does not depend on device names."""
    tables = []
    for disk in layout.get("disks", []):
        t = disk.get("table") or {}
        parts = [
            {k: p.get(k) for k in ("number", "start", "size", "type", "uuid", "name", "attrs")}
            for p in t.get("partitions", [])
        ]
        tables.append({"size": disk["size"], "label": t.get("label"), "id": t.get("id"), "partitions": parts})
    fss = []
    for fs in layout.get("filesystems", []):
        entry = {k: fs.get(k) for k in ("type", "uuid", "label", "size")}
        if fs.get("ext"):
            entry["ext"] = {k: fs["ext"].get(k) for k in KEPT_EXT}
        if fs.get("xfs"):
            entry["xfs"] = {
                s: {k: v for k, v in fs["xfs"][s].items() if k != "_" or s == "log"} for s in fs["xfs"]
            }
        if fs.get("btrfs"):
            b = fs["btrfs"]
            entry["btrfs"] = {k: b.get(k) for k in ("nodesize", "sectorsize", "csum_type", "label")}
            entry["btrfs"]["subvolumes"] = [(s["id"], s["path"]) for s in b.get("subvolumes") or []]
            entry["btrfs"]["default_id"] = b.get("default_id")
        fss.append(entry)
    lvm = layout.get("lvm") or {}
    return {
        "tables": tables,
        "md": sorted(
            (m["uuid"], m["level"], m["metadata"], m.get("name"), m.get("raid_devices"))
            for m in layout.get("md", [])
        ),
        "luks": sorted(
            (x["uuid"], x["version"], x["cipher"], x["key_size"], x["sector_size"])
            for x in layout.get("luks", [])
        ),
        "pvs": sorted((p["pv_uuid"], p.get("vg_name")) for p in lvm.get("pvs", [])),
        "vgs": sorted((v["vg_uuid"], v["vg_name"], v.get("vg_extent_size")) for v in lvm.get("vgs", [])),
        "lvs": sorted(
            (lv["lv_uuid"], lv["vg_name"], lv["lv_name"], lv.get("lv_size")) for lv in lvm.get("lvs", [])
        ),
        "filesystems": sorted(fss, key=lambda f: str(f["uuid"])),
        "mounts": sorted((m["mount_point"], m["fstype"], m.get("fsroot")) for m in layout.get("mounts", [])),
    }
