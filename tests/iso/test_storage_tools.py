"""The rescue image holds every tool a recover needs, working: in one guest on two empty virtual disks it
partitions (sfdisk, GPT), builds md RAID1, LUKS2 (aes-xts-plain64, key file), LVM, ext4, xfs, btrfs, vfat and
swap, each with the UUID it was given, bind-mounts and chroots into the target, reports what `blkid -p` and
`lsblk -J` see, and reassembles the whole stack from the disks alone. The host has no device-mapper and no md:
only the image's kernel can prove this."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from drill import guestrun
from drill import qemu as vm
from tests.support import need_tool
from tests.support.images import record_boot_time, sparse_disks

pytestmark = pytest.mark.vm

SCRIPT = Path(__file__).resolve().parent / "data" / "storage-stack.sh"
UUIDS = {
    "MD_UUID": "6a1f0c3e-2b4d-4e5f-8a9b-0c1d2e3f4a5b",
    "LUKS_UUID": "c0ffee00-1234-4abc-9def-001122334455",
    "PV_UUID": "Rescue-PV00-0000-0000-0000-0000-000001",
    "EXT4_UUID": "0b7e4c1e-1111-4222-8333-944455556666",
    "XFS_UUID": "d1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8",
    "BTRFS_UUID": "5e5e5e5e-6f6f-4a7a-8b8b-9c9c9c9c9c9c",
    "VFAT_ID": "1234ABCD",
    "SWAP_UUID": "f00dfeed-0000-4111-8222-333344445555",
}


def blkid_reports(text: str) -> dict:
    """`blkid -p -o export` per device, as written by the guest: {device: {KEY: value}}."""
    found: dict = {}
    device = None
    for line in text.splitlines():
        m = re.fullmatch(r"== (\S+)", line)
        if m:
            device = m.group(1)
            found[device] = {}
        elif "=" in line and device:
            key, _, value = line.partition("=")
            found[device][key] = value
    return found


def lsblk_tree(devices: list, depth: int = 0) -> list:
    """The lsblk -J tree flattened to (depth, name, type)."""
    rows = []
    for d in devices:
        rows.append((depth, d["name"], d["type"]))
        rows += lsblk_tree(d.get("children", []), depth + 1)
    return rows


@pytest.fixture(scope="module")
def stack(image, tmp_path_factory):
    """The guest run, once for all assertions: (GuestResult, blkid reports, lsblk rows)."""
    need_tool(vm.QEMU)
    work = tmp_path_factory.mktemp("storage-stack")
    disks = sparse_disks(work, [640 << 20] * 2)
    env = work / "uuids.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in UUIDS.items()))
    result = guestrun.run_script(
        "stack", SCRIPT.read_text(), work, None, disks, files={"uuids.env": env}, timeout=900, image=image
    )
    assert result.status == 0, result.console[-4000:]
    record_boot_time("storage stack guest (-kernel/-initrd)", result.boot_seconds)
    print(f"storage stack guest: {result.seconds:.1f} s from start to power-off")
    blkid = blkid_reports((result.share / "blkid.txt").read_text())
    lsblk = lsblk_tree(json.loads((result.share / "lsblk.json").read_text())["blockdevices"])
    return result, blkid, lsblk


def test_every_layer_carries_the_uuid_it_was_given(stack):
    _, blkid, _ = stack
    md_member = {"TYPE": "linux_raid_member", "UUID": UUIDS["MD_UUID"]}
    assert blkid["/dev/vda2"].items() >= md_member.items()
    assert (
        blkid["/dev/md0"].items()
        >= {"TYPE": "crypto_LUKS", "UUID": UUIDS["LUKS_UUID"], "VERSION": "2"}.items()
    )
    assert blkid["/dev/mapper/crypt"].items() >= {"TYPE": "LVM2_member", "UUID": UUIDS["PV_UUID"]}.items()
    assert blkid["/dev/vg0/root"].items() >= {"TYPE": "ext4", "UUID": UUIDS["EXT4_UUID"]}.items()
    assert blkid["/dev/vg0/data"].items() >= {"TYPE": "xfs", "UUID": UUIDS["XFS_UUID"]}.items()
    assert blkid["/dev/vg0/home"].items() >= {"TYPE": "btrfs", "UUID": UUIDS["BTRFS_UUID"]}.items()
    assert blkid["/dev/vda1"].items() >= {"TYPE": "vfat", "UUID": "1234-ABCD"}.items()
    assert blkid["/dev/vdb1"].items() >= {"TYPE": "swap", "UUID": UUIDS["SWAP_UUID"]}.items()
    # blkid -p reads the partition table too (what layout capture records)
    assert blkid["/dev/vda1"]["PART_ENTRY_SCHEME"] == "gpt"
    assert blkid["/dev/vda1"]["PART_ENTRY_TYPE"] == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"


def test_lsblk_shows_raid1_under_luks_under_lvm_on_both_disks(stack):
    _, _, rows = stack
    for disk in ("vda", "vdb"):
        start = rows.index((0, disk, "disk"))
        below = [(depth, name, kind) for depth, name, kind in rows[start + 1 :]][:7]
        assert below[:4] == [
            (1, f"{disk}1", "part"),
            (1, f"{disk}2", "part"),
            (2, "md0", "raid1"),
            (3, "crypt", "crypt"),
        ], rows
        assert sorted(below[4:]) == [
            (4, "vg0-data", "lvm"),
            (4, "vg0-home", "lvm"),
            (4, "vg0-root", "lvm"),
        ], rows


def test_the_target_is_chrooted_with_bind_mounts_and_the_stack_reassembles(stack):
    result, _, _ = stack
    assert (result.share / "chroot.txt").read_text().split() == ["root", "esp", "ext4"]
    assert (result.share / "reassembled.txt").read_text() == "home\n"
    assert "storage stack: built, reported and reassembled" in result.console
