"""Pure builders of the commands that recreate one layer each: sfdisk scripts, mdadm --create, cryptsetup
luksFormat, mkfs with the captured parameters.  Each takes a record of layout.json (docs/layout-format.md) and
the device names on the new hardware and returns an argv (and stdin text where the tool reads one); `plan`
orders them and `recreate` runs them.  `same_size` says the target has the captured size, so size-bound
parameters (inode count, XFS allocation groups and log size) are kept; otherwise the tools size them again from
the ratios that are kept (bytes per inode, block and inode sizes, features).
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple


def sfdisk_script(table: dict, nodes: List[str], sizes: List[int], starts: List[int], same_size: bool) -> str:
    """An sfdisk script recreating `table` with the same label, disk id and partition UUIDs, names, attributes;
    `nodes`, `starts` and `sizes` are the new partitions' names and geometry (sectors), in the table's order."""
    lines = [f"label: {table['label']}"]
    if table.get("id"):
        lines.append(f"label-id: {table['id']}")
    lines.append("unit: sectors")
    if table["label"] == "gpt" and table.get("first_lba"):
        lines.append(f"first-lba: {table['first_lba']}")
    if table["label"] == "gpt" and table.get("last_lba") and same_size:
        lines.append(f"last-lba: {table['last_lba']}")
    lines.append(f"sector-size: {table['sector_size']}")
    lines.append("")
    for part, node, start, size in zip(table["partitions"], nodes, starts, sizes):
        fields = [f"start={start}", f"size={size}", f"type={part['type']}"]
        if part.get("uuid") and table["label"] == "gpt":
            fields.append(f"uuid={part['uuid']}")
        if part.get("name"):
            fields.append('name="{}"'.format(part["name"].replace('"', "'")))
        if part.get("attrs"):
            fields.append(f'attrs="{part["attrs"]}"')
        if part.get("bootable"):
            fields.append("bootable")
        lines.append(f"{node} : " + ", ".join(fields))
    return "\n".join(lines) + "\n"


def md_create(md: dict, members: List[str]) -> List[str]:
    argv = ["mdadm", "--create", md["device"], "--run", "--force", f"--level={md['level']}"]
    argv += [f"--raid-devices={md['raid_devices'] or len(members)}", f"--metadata={md['metadata']}"]
    argv += [f"--uuid={md['uuid']}"]
    if md.get("name"):
        argv += [f"--name={md['name'].split(':', 1)[-1]}"]
    if md.get("homehost"):
        argv += [f"--homehost={md['homehost']}"]
    if md.get("chunk_size") and md["level"] not in ("raid1", "linear"):
        argv += [f"--chunk={md['chunk_size'] // 1024}K"]
    if md.get("metadata") not in ("0.90",):
        argv += [f"--bitmap={md.get('bitmap') or 'none'}"]
    # Mirrors on fresh members hold no data yet and mkfs writes everything it later reads; parity levels
    # would compute new stripes from garbage, so they resync.
    if md["level"] in ("raid1", "raid10"):
        argv.append("--assume-clean")
    return argv + members


def luks_format(luks: dict, device: str, key_file: Optional[str]) -> List[str]:
    argv = [
        "cryptsetup",
        "luksFormat",
        "--batch-mode",
        f"--type=luks{luks['version']}",
        f"--uuid={luks['uuid']}",
    ]
    if luks.get("cipher"):
        argv.append(f"--cipher={luks['cipher']}")
    if luks.get("key_size"):
        argv.append(f"--key-size={luks['key_size']}")
    if luks.get("hash"):
        argv.append(f"--hash={luks['hash']}")
    if luks["version"] >= 2:
        if luks.get("sector_size"):
            argv.append(f"--sector-size={luks['sector_size']}")
        if luks.get("pbkdf"):
            argv.append(f"--pbkdf={luks['pbkdf']}")
        if luks.get("label"):
            argv.append(f"--label={luks['label']}")
        if luks.get("data_offset"):
            argv.append(f"--offset={luks['data_offset'] // 512}")
    return argv + [f"--key-file={key_file or '-'}", device]


def luks_open(luks: dict, device: str, key_file: Optional[str]) -> List[str]:
    return ["cryptsetup", "open", "--type=luks", f"--key-file={key_file or '-'}", device, luks["mapping"]]


def _pow2_near(value: float) -> int:
    return 1 << max(10, round(math.log2(max(value, 1024))))


def mkfs_ext(fs: dict, device: str, same_size: bool) -> List[str]:
    ext = fs.get("ext") or {}
    argv = ["mke2fs", "-F", "-q", "-t", fs["type"], "-U", fs["uuid"]]
    if fs.get("label"):
        argv += ["-L", fs["label"]]
    if ext.get("features"):
        argv += ["-O", "none," + ",".join(ext["features"])]
    if ext.get("block_size"):
        argv += ["-b", str(ext["block_size"])]
    if ext.get("inode_size"):
        argv += ["-I", str(ext["inode_size"])]
    blocks, inodes = ext.get("block_count"), ext.get("inode_count")
    if same_size and inodes:
        argv += ["-N", str(inodes)]
    elif blocks and inodes:
        argv += ["-i", str(_pow2_near(blocks * ext["block_size"] / inodes))]
    if blocks and ext.get("reserved_blocks") is not None:
        # mke2fs truncates percent * blocks / 100; half a block more keeps the captured count exact.
        pct = (ext["reserved_blocks"] + 0.5) * 100 / blocks if ext["reserved_blocks"] else 0
        argv += ["-m", f"{pct:.6f}"]
    if ext.get("blocks_per_group"):
        argv += ["-g", str(ext["blocks_per_group"])]
    if ext.get("flex_bg_size") and "flex_bg" in ext.get("features", []):
        argv += ["-G", str(ext["flex_bg_size"])]
    if ext.get("journal_size_k") and "has_journal" in ext.get("features", []) and same_size:
        argv += ["-J", f"size={max(1, ext['journal_size_k'] // 1024)}"]
    return argv + [device]


XFS_META = ("crc", "finobt", "rmapbt", "reflink", "bigtime", "inobtcount")
XFS_INODE = ("sparse", "nrext64")


def mkfs_xfs(fs: dict, device: str, same_size: bool) -> List[str]:
    info = fs.get("xfs") or {}
    meta, data = info.get("meta-data", {}), info.get("data", {})
    naming, log = info.get("naming", {}), info.get("log", {})
    argv = ["mkfs.xfs", "-f", "-q"]
    m = [f"uuid={fs['uuid']}"] + [f"{k}={meta[k]}" for k in XFS_META if k in meta]
    argv += ["-m", ",".join(m)]
    i = ([f"size={meta['isize']}"] if "isize" in meta else []) + [
        f"{k}={meta[k]}" for k in XFS_INODE if k in meta
    ]
    if i:
        argv += ["-i", ",".join(i)]
    if "bsize" in data:
        argv += ["-b", f"size={data['bsize']}"]
    if "sectsz" in meta:
        argv += ["-s", f"size={meta['sectsz']}"]
    n = [f"{k}={naming[k]}" for k in ("ftype",) if k in naming]
    if "bsize" in naming:
        n.append(f"size={naming['bsize']}")
    if n:
        argv += ["-n", ",".join(n)]
    if same_size and "agcount" in meta:
        argv += ["-d", f"agcount={meta['agcount']}"]
    if same_size and log.get("_") == "internal" and "blocks" in log:
        argv += ["-l", f"size={log['blocks'] * log.get('bsize', 4096)}"]
    if fs.get("label"):
        argv += ["-L", fs["label"]]
    return argv + [device]


def mkfs_vfat(fs: dict, device: str) -> List[str]:
    argv = ["mkfs.fat"]
    if fs.get("uuid"):
        argv += ["-i", fs["uuid"].replace("-", "")]
    if fs.get("label"):
        argv += ["-n", fs["label"]]
    version = (fs.get("version") or "").upper()
    if version in ("FAT12", "FAT16", "FAT32"):
        argv += ["-F", version[3:]]
    return argv + [device]


def mkfs_btrfs(fs: dict, device: str) -> List[str]:
    b = fs.get("btrfs") or {}
    argv = ["mkfs.btrfs", "-f", "-q", "-U", fs["uuid"]]
    if fs.get("label"):
        argv += ["-L", fs["label"]]
    if b.get("nodesize"):
        argv += ["-n", str(b["nodesize"])]
    if b.get("sectorsize"):
        argv += ["-s", str(b["sectorsize"])]
    if b.get("csum_type"):
        argv += ["--csum", str(b["csum_type"])]
    return argv + [device]


def mkswap(fs: dict, device: str) -> List[str]:
    argv = ["mkswap", "-f", "-U", fs["uuid"]]
    if fs.get("label"):
        argv += ["-L", fs["label"]]
    return argv + [device]


def mkfs(fs: dict, device: str, same_size: bool) -> Tuple[str, List[str]]:
    """(stage, argv) making filesystem `fs` on `device`."""
    kind = fs["type"]
    if kind in ("ext2", "ext3", "ext4"):
        return "mkfs", mkfs_ext(fs, device, same_size)
    if kind == "xfs":
        return "mkfs", mkfs_xfs(fs, device, same_size)
    if kind == "vfat":
        return "mkfs", mkfs_vfat(fs, device)
    if kind == "btrfs":
        return "mkfs", mkfs_btrfs(fs, device)
    if kind == "swap":
        return "swap", mkswap(fs, device)
    raise ValueError(kind)
