"""`layout capture` -> wipe -> `layout recreate` -> capture again, on real loop devices (as root).

The host kernel has loop devices and ext4, xfs, btrfs (vfat can be made but not mounted here), but neither md nor
device-mapper: md, LVM and LUKS run inside a rescue-image guest (test_recreate_guest.py).  Each test compares
`model.identity` of the two captures: partition tables (label, disk id, geometry, types, UUIDs), filesystems
(type, UUID, label, size, mkfs parameters), btrfs subvolumes and mounts.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from rescue.cli import main
from rescue.errors import RefusedError
from rescue.layout import capture, model, recreate
from rescue.layout.plan import RecreateOptions
from tests.support import need_tool
from tests.support.backups import backed_up
from tests.support.loops import MIB, sh, wipe
from tests.support.tapes import make_tree, tree_state

GPT = """label: gpt
,1M,21686148-6449-6E6F-744E-656564454649
,32M,U
,48M,L
,200M,L
,,S
"""
MBR = """label: dos
,48M,83
,200M,83
,,82
"""


def build_gpt(loops, disk: str, src) -> None:
    loops.partition(disk, GPT)
    sh("mkfs.fat", "-n", "ESP", f"{disk}p2")
    sh("mke2fs", "-q", "-t", "ext4", "-L", "boot", f"{disk}p3")
    sh("mke2fs", "-q", "-t", "ext4", "-L", "root", "-O", "^metadata_csum", "-i", "8192", f"{disk}p4")
    sh("mkswap", "-q", "-L", "swap", f"{disk}p5")
    loops.mount(f"{disk}p4", src)
    loops.mount(f"{disk}p3", src / "boot")


def build_mbr(loops, disk: str, src) -> None:
    loops.partition(disk, MBR)
    sh("mke2fs", "-q", "-t", "ext4", "-L", "boot", f"{disk}p1")
    sh("mke2fs", "-q", "-t", "ext4", "-L", "root", "-m", "1", f"{disk}p2")
    sh("mkswap", "-q", "-L", "swap", f"{disk}p3")
    loops.mount(f"{disk}p2", src)
    loops.mount(f"{disk}p1", src / "boot")


def rescue(*argv) -> int:
    return main([str(a) for a in argv])


def test_gpt_layout_from_the_tape_is_recreated_identically_and_the_restore_compares_equal(loops, tmp_path):
    disk = loops.disk("gpt", 400 * MIB)
    src = tmp_path / "src"
    build_gpt(loops, disk, src)
    make_tree(str(src / "srv"))
    (src / "boot/vmlinuz").write_bytes(os.urandom(300_000))
    before_state = tree_state(str(src))
    tap = backed_up(tmp_path, src)
    before = capture(str(src), [disk])
    loops.umount_all()
    wipe(disk)

    target = tmp_path / "target"
    log = tmp_path / "recreate.log"
    assert (
        rescue(
            "-f",
            tap,
            "layout",
            "recreate",
            "--map",
            f"{disk}={disk}",
            "--yes",
            "--target",
            target,
            "--log",
            log,
        )
        == 0
    )
    after = capture(str(target), [disk])
    assert model.identity(after) == model.identity(before)
    assert [m["mount_point"] for m in after["mounts"]] == ["/", "/boot"]
    assert "mke2fs" in log.read_text() and f"sfdisk --no-reread --wipe=always {disk}" in log.read_text()

    assert rescue("-f", tap, "restore", "-C", target, "--yes") == 0
    assert tree_state(str(target)) == before_state


def test_mbr_boot_root_swap_is_recreated_identically(loops, tmp_path):
    disk = loops.disk("mbr", 400 * MIB)
    src = tmp_path / "src"
    build_mbr(loops, disk, src)
    before = capture(str(src), [disk])
    loops.umount_all()
    wipe(disk)
    opts = RecreateOptions(
        maps={disk: disk}, yes=True, target=str(tmp_path / "t"), workdir=str(tmp_path / "w")
    )
    result = recreate.recreate(before, opts, out=io.StringIO())
    after = capture(str(tmp_path / "t"), [disk])
    assert model.identity(after) == model.identity(before)
    assert before["disks"][0]["table"]["label"] == "dos"
    assert [m["target"] for m in result.mounts] == [str(tmp_path / "t"), str(tmp_path / "t/boot")]


def test_xfs_and_btrfs_with_subvolumes_are_recreated_with_their_parameters(loops, tmp_path):
    need_tool("mkfs.xfs", "xfs_info", "mkfs.btrfs", "btrfs")
    disk = loops.disk("fs", 800 * MIB)
    loops.partition(disk, "label: gpt\n,320M,L\n,,L\n")
    sh("mkfs.xfs", "-q", "-L", "root", "-i", "size=1024", f"{disk}p1")
    sh("mkfs.btrfs", "-q", "-L", "data", "-n", "32768", f"{disk}p2")
    top = loops.mount(f"{disk}p2", tmp_path / "top")
    for sub in ("@home", "@srv", "@srv/cache"):
        sh("btrfs", "subvolume", "create", str(top / sub))
    sh("btrfs", "subvolume", "set-default", str(top / "@home"))
    sh("umount", str(top))
    src = loops.mount(f"{disk}p1", tmp_path / "src")
    loops.mount(f"{disk}p2", src / "home", "-o", "subvol=@home")
    loops.mount(f"{disk}p2", src / "srv", "-o", "subvol=@srv")
    before = capture(str(src), [disk])
    btrfs = next(f for f in before["filesystems"] if f["type"] == "btrfs")
    assert [s["path"] for s in btrfs["btrfs"]["subvolumes"]] == ["@home", "@srv", "@srv/cache"]
    loops.umount_all()
    wipe(disk)
    opts = RecreateOptions(
        maps={disk: disk}, yes=True, target=str(tmp_path / "t"), workdir=str(tmp_path / "w")
    )
    recreate.recreate(before, opts, out=io.StringIO())
    after = capture(str(tmp_path / "t"), [disk])
    assert model.identity(after) == model.identity(before)
    xfs = next(f for f in after["filesystems"] if f["type"] == "xfs")
    assert xfs["xfs"]["meta-data"]["isize"] == 1024


def test_a_bigger_disk_gives_the_grown_partition_the_space(loops, tmp_path):
    disk = loops.disk("small", 400 * MIB)
    bigger = loops.disk("bigger", 600 * MIB)
    src = tmp_path / "src"
    build_mbr(loops, disk, src)
    before = capture(str(src), [disk])
    loops.umount_all()
    target = tmp_path / "t"
    opts = RecreateOptions(
        maps={disk: bigger}, grow="/", yes=True, target=str(target), workdir=str(tmp_path / "w")
    )
    recreate.recreate(before, opts, out=io.StringIO())
    after = capture(str(target), [bigger])
    old, new = before["disks"][0]["table"]["partitions"], after["disks"][0]["table"]["partitions"]
    assert new[1]["size"] == old[1]["size"] + 200 * MIB // 512
    assert (new[0]["size"], new[2]["size"]) == (old[0]["size"], old[2]["size"])
    assert new[2]["start"] == old[2]["start"] + 200 * MIB // 512
    root_old = next(f for f in before["filesystems"] if f.get("label") == "root")
    root_new = next(f for f in after["filesystems"] if f.get("label") == "root")
    assert root_new["uuid"] == root_old["uuid"] and root_new["size"] == root_old["size"] + 200 * MIB
    for key in ("features", "block_size", "inode_size", "blocks_per_group"):
        assert root_new["ext"][key] == root_old["ext"][key]
    # -m 1 kept as a share, not as a count.
    assert abs(root_new["ext"]["reserved_blocks"] / root_new["ext"]["block_count"] - 0.01) < 0.001


def _smaller_case(loops, tmp_path, data_bytes: int):
    disk = loops.disk("orig", 400 * MIB)
    smaller = loops.disk("smaller", 300 * MIB)
    src = tmp_path / "src"
    build_mbr(loops, disk, src)
    with open(src / "big.bin", "wb") as f:
        for _ in range(data_bytes // MIB):
            f.write(os.urandom(MIB))
    tap = backed_up(tmp_path, src)
    loops.umount_all()
    sh("mkfs.ext4", "-q", "-L", "untouched", smaller)
    return disk, smaller, tap


def test_a_smaller_disk_shrinks_root_when_the_catalog_shows_the_data_fits(loops, tmp_path):
    disk, smaller, tap = _smaller_case(loops, tmp_path, 20 * MIB)
    target = tmp_path / "t"
    assert (
        rescue(
            "-f",
            tap,
            "layout",
            "recreate",
            "--map",
            f"{disk}={smaller}",
            "--grow",
            "/",
            "--yes",
            "--target",
            target,
            "--log",
            tmp_path / "log",
        )
        == 0
    )
    after = capture(str(target), [smaller])
    parts = after["disks"][0]["table"]["partitions"]
    assert parts[1]["size"] == (200 - 100) * MIB // 512
    assert rescue("-f", tap, "restore", "-C", target, "--yes") == 0
    assert (target / "big.bin").stat().st_size == 20 * MIB


def test_a_smaller_disk_is_refused_before_anything_is_touched_when_the_data_cannot_fit(
    loops, tmp_path, capsys
):
    disk, smaller, tap = _smaller_case(loops, tmp_path, 120 * MIB)
    digest = hashlib.sha256(open(smaller, "rb").read(4 * MIB)).hexdigest()
    code = rescue(
        "-f",
        tap,
        "layout",
        "recreate",
        "--map",
        f"{disk}={smaller}",
        "--grow",
        "/",
        "--yes",
        "--target",
        tmp_path / "t",
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "filesystem ext4 LABEL=root (/)" in err and "short by" in err
    assert hashlib.sha256(open(smaller, "rb").read(4 * MIB)).hexdigest() == digest


def test_recreate_refuses_a_disk_with_a_mounted_partition(loops, tmp_path):
    disk = loops.disk("busy", 400 * MIB)
    src = tmp_path / "src"
    build_mbr(loops, disk, src)
    before = capture(str(src), [disk])
    opts = RecreateOptions(
        maps={disk: disk}, yes=True, target=str(tmp_path / "t"), workdir=str(tmp_path / "w")
    )
    with pytest.raises(RefusedError, match=rf"{disk}p2 is mounted"):
        recreate.recreate(before, opts, out=io.StringIO())
    assert (src / "lost+found").is_dir()  # still the same mounted filesystem
    dry = recreate.recreate(before, RecreateOptions(maps={disk: disk}, dry_run=True), out=io.StringIO())
    assert not dry.done and any("is mounted" in r for r in dry.refusals)


def test_recreate_never_touches_a_disk_not_in_the_plan(loops, tmp_path):
    disk = loops.disk("planned", 400 * MIB)
    stick = loops.disk("stick", 400 * MIB)
    src = tmp_path / "src"
    build_mbr(loops, disk, src)
    before = capture(str(src), [disk])
    loops.umount_all()
    sh("mkfs.ext4", "-q", "-L", "RESCUE", stick)
    digest = hashlib.sha256(open(stick, "rb").read()).hexdigest()
    opts = RecreateOptions(yes=True, target=str(tmp_path / "t"), workdir=str(tmp_path / "w"))
    with pytest.raises(RefusedError, match=rf"--map {disk}=DEV"):
        recreate.recreate(before, opts, out=io.StringIO())  # names alone never match
    with pytest.raises(RefusedError, match="is not a disk of the layout"):
        recreate.recreate(before, RecreateOptions(maps={stick: stick}, yes=True), out=io.StringIO())
    opts.maps = {disk: disk}
    result = recreate.recreate(before, opts, out=io.StringIO())
    assert result.plan.disks == [disk]
    assert all(stick not in " ".join(s.argv) for s in result.plan.steps)
    assert hashlib.sha256(open(stick, "rb").read()).hexdigest() == digest
