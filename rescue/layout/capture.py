"""Capture: describe the machine's storage completely, for the label's layout.json and `layout capture`.

Contract: `capture(root="/", disks=None, luks_header_dir=None) -> dict` returns a layout in the format
docs/layout-format.md documents (format "rescue-layout", version 1).  It never raises for what it cannot see: a
missing tool or a failing command becomes an entry of `missing` ("mdadm: not installed") and the rest is captured,
so a backup is never failed by its layout.  It only reads (the one write, the LUKS header backup, happens only
when `luks_header_dir` is given).

Which disks: with `disks`, those (and everything stacked on them); otherwise every whole disk lsblk lists when
root is "/", plus the disks holding a filesystem mounted at or below root (so a loop device holding a mounted
tree counts).  Mount points are recorded relative to root ("/" is root itself), the way the backup archives them.
Tool outputs are parsed by the pure parse_* modules; this module only runs the tools and assembles the result.
"""

from __future__ import annotations

import datetime
import glob
import os
import tempfile
from typing import Dict, Iterable, List, Optional

from rescue.layout import mounts as mountinfo
from rescue.layout import parse_disks, parse_fs, parse_stack
from rescue.layout.boot import boot_facts
from rescue.layout.tools import fill_identity, have, probe, read_text

FORMAT = "rescue-layout"
VERSION = 1
FS_TYPES = ("ext2", "ext3", "ext4", "xfs", "vfat", "btrfs", "swap")
COPIED_FILES = ("etc/fstab", "etc/crypttab", "etc/mdadm/mdadm.conf", "etc/mdadm.conf", "etc/default/grub")
LVM_REPORTS = {
    "pv": "pv_name,pv_uuid,vg_name,pv_size,dev_size,pe_start",
    "vg": "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,pv_count,lv_count",
    "lv": "lv_name,vg_name,lv_uuid,lv_size,lv_attr,lv_path,segtype,stripes,stripe_size,pool_lv,seg_count",
}


class Capture:
    """One capture run: the facts gathered so far and what could not be seen."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.missing: List[str] = []

    def run(self, argv: List[str], ok_codes=(0,)) -> Optional[str]:
        out = probe(argv, ok_codes)
        if out.text is None and out.problem and out.problem not in self.missing:
            self.missing.append(out.problem)
        return out.text


def _links(directory: str) -> Dict[str, List[str]]:
    """/dev/disk/by-id (or by-path) as target path -> link names."""
    out: Dict[str, List[str]] = {}
    for link in glob.glob(os.path.join(directory, "*")):
        target = os.path.realpath(link)
        out.setdefault(target, []).append(os.path.basename(link))
    return out


def _relative_mount(point: str, root: str) -> Optional[str]:
    if root == "/":
        return point
    if point == root:
        return "/"
    if point.startswith(root + "/"):
        return point[len(root) :]
    return None


def _choose_disks(devices: List[dict], root: str, disks: Optional[Iterable[str]]) -> List[dict]:
    by_path = {d["path"]: d for d in devices}
    if disks:
        wanted = [os.path.realpath(d) for d in disks]
        return [by_path[p] for p in wanted if p in by_path]
    tops = [d for d in devices if not d.get("pkname") and d.get("type") in ("disk", "loop")]
    # zram is swap in memory, not storage to rebuild.
    chosen = [d for d in tops if d["type"] == "disk" and root == "/" and not d["name"].startswith("zram")]
    for top in tops:
        stack = [top, *parse_disks.descendants(devices, top["path"])]
        if top not in chosen and any(_relative_mount(m, root) for d in stack for m in d["mountpoints"]):
            chosen.append(top)
    return chosen


def _md(cap: Capture, dev: dict) -> Optional[dict]:
    detail = cap.run(["mdadm", "--detail", "--export", dev["path"]])
    if detail is None:
        return None
    exported = parse_disks.parse_export(detail)
    first = next((v for k, v in sorted(exported.items()) if k.endswith("_DEV")), None)
    examine = cap.run(["mdadm", "--examine", first]) if first else None
    md = parse_stack.parse_md(detail, examine or "")
    md["device"] = dev["path"]
    sysfs = f"/sys/class/block/{dev['kname']}/md"
    chunk = read_text(f"{sysfs}/chunk_size")
    if chunk and chunk.strip().isdigit() and int(chunk) > 0:
        md["chunk_size"] = int(chunk)
    bitmap = read_text(f"{sysfs}/bitmap/location")
    if bitmap:
        md["bitmap"] = "none" if bitmap.strip() == "none" else "internal"
    md["examine"] = examine
    return md


def _luks(cap: Capture, dev: dict, devices: List[dict], header_dir: Optional[str]) -> Optional[dict]:
    dump = cap.run(["cryptsetup", "luksDump", dev["path"]])
    if dump is None:
        return None
    luks = parse_stack.parse_luks_dump(dump)
    luks["device"] = dev["path"]
    by_path = {d["path"]: d for d in devices}
    opened = [by_path[c] for c in dev["children"] if c in by_path and by_path[c].get("type") == "crypt"]
    luks["mapping"] = opened[0]["name"] if opened else None
    luks["mapped_device"] = opened[0]["path"] if opened else None
    luks["header_backup"] = None
    if header_dir:
        name = f"luks-header-{luks['uuid']}.img"
        if (
            cap.run(
                [
                    "cryptsetup",
                    "luksHeaderBackup",
                    dev["path"],
                    "--header-backup-file",
                    os.path.join(header_dir, name),
                ]
            )
            is not None
        ):
            luks["header_backup"] = name
    return luks


def _lvm(cap: Capture, pv_paths: List[str]) -> Optional[dict]:
    if not pv_paths:
        return None
    out: dict = {"pvs": [], "vgs": [], "lvs": [], "vgcfgbackup": {}}
    for kind, fields in LVM_REPORTS.items():
        argv = [f"{kind}s", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", fields]
        if kind == "lv":
            argv.insert(1, "-a")
        text = cap.run(argv)
        if text is not None:
            out[f"{kind}s"] = parse_stack.parse_lvm_report(text, kind)
    out["pvs"] = [p for p in out["pvs"] if p.get("pv_name") in pv_paths]
    vg_names = sorted({p["vg_name"] for p in out["pvs"] if p.get("vg_name")})
    out["vgs"] = [v for v in out["vgs"] if v.get("vg_name") in vg_names]
    out["lvs"] = [lv for lv in out["lvs"] if lv.get("vg_name") in vg_names]
    with tempfile.TemporaryDirectory(prefix="rescue-vgcfg-") as tmp:
        for vg in vg_names:
            path = os.path.join(tmp, f"{vg}.vg")
            if cap.run(["vgcfgbackup", "-f", path, vg]) is not None:
                out["vgcfgbackup"][vg] = read_text(path)
    return out


def _identify(cap: Capture, dev: dict) -> None:
    """Type, UUID and label by probing the device itself: lsblk takes them from udev's database, which a system
    without udev (the rescue system, a container) does not have."""
    ident = parse_disks.parse_export(
        cap.run(["blkid", "-p", "-o", "export", dev["path"]], ok_codes=(0, 2)) or ""
    )
    dev["blkid"] = ident
    for key, column in (("TYPE", "fstype"), ("UUID", "uuid"), ("LABEL", "label")):
        if ident.get(key):
            dev[column] = ident[key]


def _filesystem(cap: Capture, dev: dict) -> dict:
    ident = dev.get("blkid") or {}
    fs = {
        "device": dev["path"],
        "type": ident.get("TYPE") or dev.get("fstype"),
        "uuid": ident.get("UUID") or dev.get("uuid"),
        "label": ident.get("LABEL") or dev.get("label"),
        "size": int(dev.get("size") or 0),
        "version": ident.get("VERSION"),
    }
    kind = fs["type"]
    if kind in ("ext2", "ext3", "ext4"):
        text = cap.run(["dumpe2fs", "-h", dev["path"]])
        fs["ext"] = parse_fs.parse_dumpe2fs(text) if text else None
    elif kind == "xfs":
        # xfs_info is a shell wrapper around `xfs_db -p xfs_info -c info`; a system with only xfs_db has the same.
        if have("xfs_info"):
            text = cap.run(["xfs_info", dev["path"]])
        else:
            text = cap.run(["xfs_db", "-r", "-p", "xfs_info", "-c", "info", dev["path"]])
        fs["xfs"] = parse_fs.parse_xfs_info(text) if text else None
    elif kind == "btrfs":
        text = cap.run(["btrfs", "inspect-internal", "dump-super", dev["path"]])
        fs["btrfs"] = parse_fs.parse_btrfs_super(text) if text else {}
    elif kind == "vfat":
        fs["vfat"] = {
            "volume_id": (fs["uuid"] or "").replace("-", "") or None,
            "fat_size": ident.get("VERSION"),
        }
    elif kind == "swap":
        fs["swap"] = {"pagesize": os.sysconf("SC_PAGE_SIZE")}
    return fs


def _btrfs_subvolumes(cap: Capture, fs: dict, mounts: List[dict]) -> None:
    """Subvolumes need a mounted btrfs: list them through any of its mount points."""
    point = next((m["target"] for m in mounts if m["source_device"] == fs["device"]), None)
    if point is None:
        cap.missing.append(f"btrfs {fs['device']}: not mounted, subvolumes not listed")
        return
    listing = cap.run(["btrfs", "subvolume", "list", "-a", "-p", "-u", point])
    default = cap.run(["btrfs", "subvolume", "get-default", point])
    fs["btrfs"]["subvolumes"] = parse_fs.parse_btrfs_subvolumes(listing or "")
    fs["btrfs"]["default_id"] = parse_fs.parse_btrfs_default(default or "")


def _mounts(cap: Capture, paths: List[str]) -> List[dict]:
    """The mounts of the captured devices (from mountinfo, which findmnt reads too), with their point relative
    to root.  A mount's source is the name it was mounted by (/dev/vg/root, /dev/disk/by-uuid/...): it is
    matched to a captured device by its device number."""
    by_rdev = {}
    for path in paths:
        try:
            by_rdev[os.stat(path).st_rdev] = path
        except OSError:
            pass
    found = []
    for m in mountinfo.read_mounts():
        source = m["source"]
        if not source.startswith("/dev/"):
            continue
        try:
            dev = source if source in paths else by_rdev.get(os.stat(source).st_rdev)
        except OSError:
            dev = None
        rel = _relative_mount(m["mount_point"], cap.root)
        if dev is None or rel is None:
            continue
        entry = {
            "mount_point": rel,
            "target": m["mount_point"],
            "source_device": dev,
            "fstype": m["fstype"],
            "fsroot": m["root"],
            "options": m["options"],
        }
        try:
            st = os.statvfs(m["mount_point"])
            entry["used_bytes"] = (st.f_blocks - st.f_bfree) * st.f_frsize
            entry["used_inodes"] = st.f_files - st.f_ffree
        except OSError:
            pass
        found.append(entry)
    return found


def _files(root: str) -> Dict[str, Optional[str]]:
    out = {f"/{rel}": read_text(os.path.join(root, rel)) for rel in COPIED_FILES}
    lvm_conf = read_text(os.path.join(root, "etc/lvm/lvm.conf")) or ""
    filters = [
        ln.strip()
        for ln in lvm_conf.splitlines()
        if ln.strip().split("=")[0].strip() in ("filter", "global_filter")
    ]
    out["lvm.conf filters"] = "\n".join(filters) + "\n" if filters else None
    return out


def capture(
    root: str = "/", disks: Optional[Iterable[str]] = None, luks_header_dir: Optional[str] = None
) -> dict:
    cap = Capture(root)
    text = cap.run(["lsblk", "-J", "-b", "-O"])
    devices = parse_disks.parse_lsblk(text) if text else []
    chosen = _choose_disks(devices, cap.root, disks)
    by_id, by_path_links = _links("/dev/disk/by-id"), _links("/dev/disk/by-path")
    disk_records, stack = [], []
    for dev in chosen:
        rec = parse_disks.disk_record(dev, by_id.get(dev["path"], []), by_path_links.get(dev["path"], []))
        fill_identity(rec)  # a capture in a rescue system (no udev) still records the serial recover maps by
        table = cap.run(["sfdisk", "--json", dev["path"]], ok_codes=(0, 1))
        rec["table"] = parse_disks.parse_sfdisk(table) if table and table.strip() else None
        disk_records.append(rec)
        stack += [dev] + [d for d in parse_disks.descendants(devices, dev["path"]) if d not in stack]
    paths = [d["path"] for d in stack]
    for dev in stack:
        _identify(cap, dev)
    md = [m for m in (_md(cap, d) for d in stack if (d.get("type") or "").startswith("raid")) if m]
    luks = [
        x
        for x in (_luks(cap, d, devices, luks_header_dir) for d in stack if d.get("fstype") == "crypto_LUKS")
        if x
    ]
    lvm = _lvm(cap, [d["path"] for d in stack if d.get("fstype") == "LVM2_member"])
    mounts = _mounts(cap, paths)
    filesystems = [_filesystem(cap, d) for d in stack if d.get("fstype") in FS_TYPES]
    for fs in filesystems:
        if fs["type"] == "btrfs" and fs.get("btrfs") is not None:
            _btrfs_subvolumes(cap, fs, mounts)
    return {
        "format": FORMAT,
        "version": VERSION,
        "captured": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "root": cap.root,
        "disks": disk_records,
        "md": md,
        "luks": luks,
        "lvm": lvm,
        "filesystems": filesystems,
        "mounts": mounts,
        "devices": stack,
        "boot": boot_facts(cap, disk_records, filesystems, mounts),
        "files": _files(cap.root),
        "missing": cap.missing,
    }


def backup_layout(root: str) -> dict:
    """The layout a backup puts into its label: the full capture, or, should the capture itself break on
    something this code did not foresee, the minimal layout with the reason, because a layout never fails a
    backup (the tape is worth more than its description)."""
    try:
        return capture(root)
    except Exception as e:  # noqa: BLE001 - any failure of the description must not cost the backup
        minimal = mountinfo.minimal_layout()
        minimal["missing"] = [f"layout capture failed: {type(e).__name__}: {e}"]
        return minimal
