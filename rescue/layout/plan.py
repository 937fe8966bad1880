"""Plan a recreate: which disk here replaces which disk of the layout, how partitions are sized, and every
command in order.  Pure: `plan_recreate(layout, disks_now, options) -> Plan` reads nothing and runs nothing.

Algorithm:
1. Match disks.  `--map OLD=NEW` first (OLD: the layout's name, a by-id name, WWN or serial; NEW: a disk here,
   by path or by-id name); then identity: the same WWN, serial or by-id name.  A name alone never matches (vda
   may be another disk today), and a disk here that no layout disk matches is never touched: the rescue USB
   stick's by-id is not in the layout.  A layout disk without a match is refused, naming the candidates.
2. Size partitions.  The same size keeps every partition.  A bigger disk: the partition `--grow` names (a
   partition, a mount point or a filesystem label), else the last one, takes the extra space (rounded down to
   1 MiB); the partitions after it move.  A smaller disk: that partition gives up the difference (rounded up to
   1 MiB), only when it holds swap or a filesystem whose data, as the catalog counts it under its mount points,
   fits with the margin (bytes and, for ext*, inodes); otherwise PlanError names the filesystem and the shortfall,
   before anything is touched.
3. Commands, in the issue's order: wipefs (disks) -> sfdisk (same label, disk id, partition UUIDs) and partx ->
   wipefs (new partitions) -> md -> LUKS (luksFormat, open) -> LVM (pvcreate --uuid --restorefile, vgcfgrestore,
   pvresize where a PV grew, vgchange -ay) -> mkfs with the captured UUID, label and parameters (btrfs subvolumes
   in id order and the default) -> mkswap -> mounts under the target in mount-point order.  Each step carries
   the check `recreate` runs after it (the table, blkid identity, md UUID, LV UUIDs).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional

from rescue.errors import RefusedError
from rescue.layout import commands, model
from rescue.layout.parse_disks import partition_node

MIB_SECTORS = 2048  # 1 MiB in 512-byte sectors; partitions are kept 1 MiB aligned
DEFAULT_MARGIN = 0.10
# Space a filesystem spends on itself (metadata, journal, log, reserve), as a share of its size, for the fit check.
OVERHEAD = {"ext2": 0.04, "ext3": 0.06, "ext4": 0.06, "xfs": 0.05, "btrfs": 0.12, "vfat": 0.03}


class PlanError(RefusedError):
    """The layout cannot be recreated on these disks as asked; nothing was touched."""


@dataclasses.dataclass
class RecreateOptions:
    maps: Dict[str, str] = dataclasses.field(default_factory=dict)  # OLD=NEW
    grow: Optional[str] = None
    target: str = "/mnt/target"
    key_file: Optional[str] = None
    workdir: str = "/run/rescue/layout"  # VG metadata files, the btrfs top-level mount
    usage: Optional[Dict[str, dict]] = None  # model.usage_by_mount of the catalog
    margin: float = DEFAULT_MARGIN
    dry_run: bool = False
    yes: bool = False
    log_path: Optional[str] = None


@dataclasses.dataclass
class Step:
    stage: str
    argv: List[str]
    devices: List[str]  # the block devices the command writes to
    stdin: Optional[str] = None  # literal input (sfdisk scripts)
    secret_stdin: bool = False  # the LUKS passphrase goes to stdin (never into the plan or the log)
    writes: Dict[str, str] = dataclasses.field(default_factory=dict)  # files to write before running
    check: Optional[dict] = None

    def shown(self) -> str:
        text = " ".join(self.argv)
        return text + (" <<EOF\n" + self.stdin + "EOF" if self.stdin else "")


@dataclasses.dataclass
class Plan:
    steps: List[Step]
    device_map: Dict[str, str]  # old device path -> new
    disks: List[str]  # the disks here that will be wiped
    changes: List[str]  # what differs from the layout (sizes, UUIDs that cannot be kept)
    mounts: List[dict]  # {"device", "target", "fstype", "options"} in mount order

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _ids(disk: dict) -> set:
    ids = (
        {disk["path"], disk.get("name")}
        | set(disk.get("by_id") or [])
        | {f"/dev/disk/by-id/{b}" for b in disk.get("by_id") or []}
    )
    ids |= {x for x in (disk.get("wwn"), disk.get("serial")) if x}
    return {i for i in ids if i}


def _describe(disk: dict) -> str:
    extra = ", ".join(x for x in (disk.get("model"), disk.get("serial") and f"serial {disk['serial']}") if x)
    return f"{disk['path']} ({human(disk['size'])}{', ' + extra if extra else ''})"


def human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def match_disks(layout: dict, disks_now: List[dict], maps: Dict[str, str]) -> Dict[str, dict]:
    """Layout disk path -> the disk here that replaces it."""
    old_disks = layout["disks"]
    result: Dict[str, dict] = {}
    for old, new in maps.items():
        src = next((d for d in old_disks if old in _ids(d)), None)
        if src is None:
            raise PlanError(
                f"--map {old}={new}: {old} is not a disk of the layout ({', '.join(d['path'] for d in old_disks)})"
            )
        dst = next((d for d in disks_now if new in _ids(d) or os.path.realpath(new) == d["path"]), None)
        if dst is None:
            raise PlanError(f"--map {old}={new}: {new} is not a whole disk here (see lsblk)")
        result[src["path"]] = dst
    for src in old_disks:
        if src["path"] in result:
            continue
        identity = _ids(src) - {src["path"], src.get("name")}
        found = [d for d in disks_now if identity & (_ids(d) - {d["path"], d.get("name")})]
        if len(found) == 1:
            result[src["path"]] = found[0]
            continue
        used = {d["path"] for d in result.values()}
        fits = [_describe(d) for d in disks_now if d["path"] not in used]
        raise PlanError(
            f"disk {_describe(src)} of the layout has no match here by WWN, serial or by-id; "
            f"name its replacement with --map {src['path']}=DEV (disks here: {', '.join(fits) or 'none'})"
        )
    targets = [d["path"] for d in result.values()]
    dup = {t for t in targets if targets.count(t) > 1}
    if dup:
        raise PlanError(f"{', '.join(sorted(dup))}: named as the replacement of more than one layout disk")
    return result


def _grow_index(layout: dict, disk: dict, grow: Optional[str]) -> Optional[int]:
    parts = disk["table"]["partitions"]
    if grow:
        for i, p in enumerate(parts):
            fs = model.filesystem_of(layout, p["node"]) or {}
            if grow in (
                p["node"],
                str(p["number"]),
                fs.get("label"),
                *model.mount_points_of(layout, p["node"]),
            ):
                return i
        return None
    return max(range(len(parts)), key=lambda i: parts[i]["start"]) if parts else None


def _fit_check(layout: dict, node: str, new_bytes: int, options: RecreateOptions) -> None:
    fs = model.filesystem_of(layout, node)
    if fs is None:
        raise PlanError(
            f"{node} must shrink for the smaller disk, but it holds no filesystem the catalog can "
            "measure (md, LVM or LUKS); use a disk of at least the captured size"
        )
    if fs["type"] == "swap":
        return
    points = model.mount_points_of(layout, node)
    name = f"{fs['type']} {'LABEL=' + fs['label'] if fs.get('label') else 'UUID=' + str(fs.get('uuid'))} ({', '.join(points) or 'not mounted'})"
    if options.usage is None or not points:
        raise PlanError(
            f"filesystem {name} would shrink to {human(new_bytes)}, but without the catalog nothing "
            "shows its data fits; give the catalog or a disk of at least the captured size"
        )
    data = sum(options.usage.get(p, {}).get("bytes", 0) for p in points)
    files = sum(options.usage.get(p, {}).get("files", 0) for p in points)
    ext = fs.get("ext") or {}
    block = ext.get("block_size") or 4096
    need = int((data + files * block) * (1 + options.margin))
    room = int(new_bytes * (1 - OVERHEAD.get(fs["type"], 0.1)))
    if ext.get("reserved_blocks") and ext.get("block_count"):
        room -= int(new_bytes * ext["reserved_blocks"] / ext["block_count"])
    if need > room:
        raise PlanError(
            f"filesystem {name} holds {human(data)} in {files} files; with a {options.margin:.0%} margin it "
            f"needs {human(need)}, the smaller disk leaves {human(room)}: short by {human(need - room)}"
        )
    if ext.get("inode_count") and ext.get("block_count"):
        inodes = new_bytes // max(1, ext["block_count"] * block // ext["inode_count"])
        need_inodes = int(files * (1 + options.margin)) + 11
        if need_inodes > inodes:
            raise PlanError(
                f"filesystem {name} holds {files} files; with the margin it needs {need_inodes} inodes, "
                f"the smaller disk gives {inodes}: short by {need_inodes - inodes} inodes"
            )


def size_partitions(layout: dict, disk: dict, new: dict, options: RecreateOptions, changes: List[str]):
    """(starts, sizes) of the new partitions, in table order."""
    table = disk["table"]
    parts = table["partitions"]
    starts, sizes = [p["start"] for p in parts], [p["size"] for p in parts]
    ssize = table["sector_size"]
    delta = (new["size"] - disk["size"]) // ssize
    if delta == 0 or not parts:
        return starts, sizes
    i = _grow_index(layout, disk, options.grow)
    if i is None:
        raise PlanError(
            f"--grow {options.grow}: no partition, mount point or label of that name on {disk['path']}"
        )
    step = MIB_SECTORS * 512 // ssize
    change = (delta // step) * step if delta > 0 else -((-delta + step - 1) // step) * step
    if sizes[i] + change < step:
        raise PlanError(
            f"{parts[i]['node']}: the smaller disk leaves it no room ({human(-delta * ssize)} less)"
        )
    if change < 0:
        _fit_check(layout, parts[i]["node"], (sizes[i] + change) * ssize, options)
    sizes[i] += change
    for j, p in enumerate(parts):
        if p["start"] > parts[i]["start"]:
            starts[j] += change
    changes.append(
        f"{parts[i]['node']}: {human(parts[i]['size'] * ssize)} -> {human(sizes[i] * ssize)} on {new['path']}"
    )
    return starts, sizes


def _map_devices(layout: dict, matched: Dict[str, dict]) -> Dict[str, str]:
    dmap = {}
    for disk in layout["disks"]:
        new = matched[disk["path"]]["path"]
        dmap[disk["path"]] = new
        for p in (disk.get("table") or {}).get("partitions", []):
            dmap[p["node"]] = partition_node(new, p["number"])
    return dmap


def _disk_steps(layout, matched, dmap, options, changes, resized) -> List[Step]:
    steps = []
    for disk in layout["disks"]:
        new = matched[disk["path"]]
        steps.append(Step("wipe", ["wipefs", "-a", new["path"]], [new["path"]]))
    for disk in layout["disks"]:
        new, table = matched[disk["path"]], disk.get("table")
        if not table:
            continue
        starts, sizes = size_partitions(layout, disk, new, options, changes)
        nodes = [dmap[p["node"]] for p in table["partitions"]]
        resized.update(p["node"] for p, s in zip(table["partitions"], sizes) if s != p["size"])
        script = commands.sfdisk_script(table, nodes, sizes, starts, same_size=new["size"] == disk["size"])
        expect = [
            {"start": st, "size": sz, "type": p["type"], "uuid": p.get("uuid")}
            for p, st, sz in zip(table["partitions"], starts, sizes)
        ]
        check = {
            "kind": "table",
            "disk": new["path"],
            "label": table["label"],
            "id": table.get("id"),
            "partitions": expect,
        }
        steps.append(
            Step(
                "partition",
                ["sfdisk", "--no-reread", "--wipe=always", new["path"]],
                [new["path"]],
                stdin=script,
                check=check,
            )
        )
        # partx tells the kernel the new table even where it does not re-read one (loop devices, busy disks).
        kernel = {
            "kind": "kernel",
            "disk": new["path"],
            "nodes": nodes,
            "sizes": [z * table["sector_size"] for z in sizes],
        }
        steps.append(Step("partition", ["partx", "-u", new["path"]], [new["path"]], check=kernel))
        steps += [Step("wipe", ["wipefs", "-a", n], [n]) for n in nodes]
    return steps


def _stack_steps(layout, dmap, options, resized) -> List[Step]:
    steps = []
    for md in layout.get("md", []):
        members = [dmap.get(m["device"], m["device"]) for m in md["members"]]
        members += ["missing"] * max(0, (md.get("raid_devices") or 0) - len(members))
        check = {"kind": "md", "device": md["device"], "uuid": md["uuid"]}
        steps.append(Step("md", commands.md_create(md, members), [md["device"], *members], check=check))
    for luks in layout.get("luks", []):
        dev = dmap.get(luks["device"], luks["device"])
        check = {"kind": "blkid", "device": dev, "expect": {"TYPE": "crypto_LUKS", "UUID": luks["uuid"]}}
        secret = options.key_file is None
        steps.append(
            Step(
                "luks",
                commands.luks_format(luks, dev, options.key_file),
                [dev],
                secret_stdin=secret,
                check=check,
            )
        )
        if luks.get("mapping"):
            steps.append(
                Step("luks", commands.luks_open(luks, dev, options.key_file), [dev], secret_stdin=secret)
            )
    lvm = layout.get("lvm") or {}
    for vg, text in sorted((lvm.get("vgcfgbackup") or {}).items()):
        if any(lv.get("vg_name") == vg and "thin" in (lv.get("segtype") or "") for lv in lvm.get("lvs", [])):
            raise PlanError(f"volume group {vg} has thin pools; recreate does not rebuild thin pool metadata")
        path = os.path.join(options.workdir, f"{vg}.vg")
        pvs = [p for p in lvm.get("pvs", []) if p.get("vg_name") == vg]
        for i, pv in enumerate(pvs):
            dev = dmap.get(pv["pv_name"], pv["pv_name"])
            argv = ["pvcreate", "-ff", "-y", "--uuid", pv["pv_uuid"], "--restorefile", path, dev]
            steps.append(Step("lvm", argv, [dev], writes={path: text} if i == 0 else {}))
        lv_uuids = [lv["lv_uuid"] for lv in lvm.get("lvs", []) if lv.get("vg_name") == vg]
        steps.append(
            Step(
                "lvm",
                ["vgcfgrestore", "-f", path, vg],
                [],
                check={"kind": "lvs", "vg": vg, "uuids": lv_uuids},
            )
        )
        for pv in pvs:
            if pv["pv_name"] in resized:
                steps.append(Step("lvm", ["pvresize", dmap[pv["pv_name"]]], [dmap[pv["pv_name"]]]))
        steps.append(Step("lvm", ["vgchange", "-ay", vg], []))
    return steps


def _btrfs_steps(fs: dict, dev: str, workdir: str) -> List[Step]:
    b = fs.get("btrfs") or {}
    subs = b.get("subvolumes") or []
    if not subs:
        return []
    top = os.path.join(workdir, f"btrfs-{fs['uuid']}")
    steps = [
        Step("mkfs", ["mkdir", "-p", top], []),
        Step("mkfs", ["mount", "-t", "btrfs", "-o", "subvolid=5", dev, top], [dev]),
    ]
    for sub in subs:
        parent = os.path.dirname(sub["path"])
        if parent:
            steps.append(Step("mkfs", ["mkdir", "-p", os.path.join(top, parent)], []))
        steps.append(Step("mkfs", ["btrfs", "subvolume", "create", os.path.join(top, sub["path"])], [dev]))
    default = next((s for s in subs if s["id"] == b.get("default_id")), None)
    if default:
        steps.append(
            Step("mkfs", ["btrfs", "subvolume", "set-default", os.path.join(top, default["path"])], [dev])
        )
    steps.append(Step("mkfs", ["umount", top], [dev]))
    return steps


def _fs_steps(layout, dmap, options, resized, changes) -> List[Step]:
    steps = []
    for fs in sorted(layout.get("filesystems", []), key=lambda f: f["type"] == "swap"):
        dev = dmap.get(fs["device"], fs["device"])
        stage, argv = commands.mkfs(fs, dev, same_size=fs["device"] not in resized)
        expect = {"TYPE": fs["type"], "UUID": fs["uuid"], "LABEL": fs.get("label")}
        steps.append(Step(stage, argv, [dev], check={"kind": "blkid", "device": dev, "expect": expect}))
        if fs["type"] == "btrfs":
            steps += _btrfs_steps(fs, dev, options.workdir)
            if fs.get("btrfs", {}).get("subvolumes"):
                changes.append(f"btrfs {fs['uuid']}: subvolume UUIDs are new (btrfs cannot set them)")
    return steps


def mount_order(layout: dict) -> List[dict]:
    """The layout's filesystem mounts, parents first; bind mounts (another fsroot of a non-btrfs) left out."""
    seen, out = set(), []
    for m in layout.get("mounts", []):
        if m["fstype"] != "btrfs" and m.get("fsroot", "/") != "/":
            continue
        if m["mount_point"] in seen:
            continue
        seen.add(m["mount_point"])
        out.append(m)
    return sorted(out, key=lambda m: [c for c in m["mount_point"].split("/") if c])


def _mount_steps(layout, dmap, options) -> (List[Step], List[dict]):
    steps, mounts = [], []
    for m in mount_order(layout):
        dev = dmap.get(m["source_device"], m["source_device"])
        target = os.path.join(options.target, m["mount_point"].lstrip("/")).rstrip("/") or "/"
        argv = ["mount", "-t", m["fstype"]]
        opts = (
            f"subvol={m['fsroot']}" if m["fstype"] == "btrfs" and m.get("fsroot") not in (None, "/") else None
        )
        if opts:
            argv += ["-o", opts]
        steps.append(Step("mount", ["mkdir", "-p", target], []))
        steps.append(
            Step(
                "mount", argv + [dev, target], [dev], check={"kind": "mount", "target": target, "device": dev}
            )
        )
        mounts.append({"device": dev, "target": target, "fstype": m["fstype"], "options": opts})
    return steps, mounts


def plan_recreate(layout: dict, disks_now: List[dict], options: RecreateOptions) -> Plan:
    if not model.is_full(layout) or not layout.get("disks"):
        raise PlanError(
            "the layout has no disks and partition tables (a minimal layout of an older rescue); "
            "partition by hand, then restore"
        )
    matched = match_disks(layout, disks_now, options.maps)
    dmap = _map_devices(layout, matched)
    changes: List[str] = []
    resized: set = set()
    steps = _disk_steps(layout, matched, dmap, options, changes, resized)
    steps += _stack_steps(layout, dmap, options, resized)
    steps += _fs_steps(layout, dmap, options, resized, changes)
    mount_steps, mounts = _mount_steps(layout, dmap, options)
    steps += mount_steps
    for disk in layout["disks"]:
        new = matched[disk["path"]]
        if new["path"] != disk["path"]:
            changes.append(f"{disk['path']} is {new['path']} here")
    return Plan(steps, dmap, [matched[d["path"]]["path"] for d in layout["disks"]], changes, mounts)
