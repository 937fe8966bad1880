"""iso.mkinitramfs: vmlinuz + initrd.img boot with `qemu -kernel/-initrd` to a shell with rescue and the tools,
and `rescue.run=` runs a script from a second drive or a virtfs share, then powers off."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from drill import qemu as vm
from tests.support import need_tool
from tests.support.images import BOOT_TIMEOUT, ROOT, SHELL_BANNER, pyz_version, record_boot_time

pytestmark = pytest.mark.vm


def kernel_args(image, append: str) -> list:
    return ["-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"), "-append", append]


def test_kernel_and_initrd_boot_to_a_shell_with_rescue_and_the_real_tools(image, pyz, tmp_path):
    need_tool(vm.QEMU)
    with vm.Guest(kernel_args(image, "console=ttyS0"), tmp_path, name="kernel") as guest:
        guest.wait_for(SHELL_BANNER, BOOT_TIMEOUT)
        record_boot_time("mkinitramfs -kernel/-initrd", time.monotonic() - guest.started_at)
        out, status = guest.run("rescue --version", 120)
        assert status == 0 and out.strip().splitlines()[-1] == pyz_version(pyz)
        # mt-st and GNU tar, not busybox's applets of the same names
        out, status = guest.run("mt --version 2>&1 | head -n 1; tar --version | head -n 1", 60)
        assert "mt-st" in out and "GNU tar" in out
        tools = (
            "sfdisk lsblk blkid wipefs mkswap mkfs.ext4 mkfs.xfs mkfs.btrfs lvm mdadm cryptsetup mkfs.vfat"
        )
        tools += " python3 stinit chroot"
        out, status = guest.run(f"for t in {tools}; do command -v $t >/dev/null || echo missing $t; done", 60)
        assert status == 0 and "missing" not in out, out
        # util-linux's, not busybox's applets (busybox's mkswap has no -U, its blkid no -p)
        out, status = guest.run("realpath $(command -v mkswap blkid lsblk wipefs sfdisk) | sort -u", 60)
        assert status == 0 and "busybox" not in out and len(out.split()) == 5, out
        out, status = guest.run("bash /rescue/restore-tar.sh --help 2>&1 | head -n 1", 60)
        assert out.startswith("Usage: restore-tar.sh"), out
        out, status = guest.run(
            "python3 -c 'import hashlib, json, gzip, lzma, tarfile, fcntl; print(42)'", 60
        )
        assert out.strip().endswith("42"), out
        # st and sg are loaded, ready for a tape
        out, status = guest.run("grep -wE '^(st|sg|virtio_scsi)' /proc/modules | cut -d' ' -f1 | sort", 60)
        assert out.split() == ["sg", "st", "virtio_scsi"]


def test_rescue_run_runs_a_script_from_a_second_drive_and_powers_off(image, tmp_path):
    need_tool(vm.QEMU, "mkfs.vfat", "mcopy")
    script = tmp_path / "run.sh"
    script.write_text("echo hello from run.sh on $(hostname)\nrescue --version\nexit 3\n")
    disk = tmp_path / "run.img"
    subprocess.run(["mkfs.vfat", "-C", str(disk), "2048"], check=True, capture_output=True)
    subprocess.run(["mcopy", "-i", str(disk), str(script), "::/run.sh"], check=True)
    system = tmp_path / "system.img"
    system.write_bytes(b"\0" * (1 << 20))
    drives = [
        "-drive",
        f"file={system},format=raw,if=virtio",
        "-drive",
        f"file={disk},format=raw,if=virtio,readonly=on",
    ]
    args = kernel_args(image, "console=ttyS0 rescue.run=/dev/vdb:run.sh") + drives
    with vm.Guest(args, tmp_path, name="run-drive") as guest:
        guest.wait_for(r"hello from run\.sh on rescue", BOOT_TIMEOUT)
        guest.wait_for(r"rescue \S+ \(commit \S+\)", 120)
        guest.wait_for(r"rescue\.run: exit status 3", 60)
        assert guest.wait_exit(60) == 0


def test_rescue_run_from_a_virtfs_share_leaves_results_there(image, pyz, tmp_path):
    need_tool(vm.QEMU)
    share = tmp_path / "share"
    share.mkdir()
    (share / "drill.sh").write_text("rescue --version > result.txt\necho done >> result.txt\n")
    virtfs = ["-virtfs", f"local,path={share},mount_tag=drill,security_model=none,id=drill"]
    args = kernel_args(image, "console=ttyS0 rescue.run=9p:drill:drill.sh") + virtfs
    with vm.Guest(args, tmp_path, name="run-9p") as guest:
        guest.wait_for(r"rescue\.run: exit status 0", BOOT_TIMEOUT)
        assert guest.wait_exit(60) == 0
    assert (share / "result.txt").read_text().splitlines() == [pyz_version(pyz), "done"]


def test_rescue_run_runs_a_script_added_to_the_image(build_dir, pyz, tmp_path):
    need_tool(vm.QEMU)
    script = tmp_path / "drill.sh"
    script.write_text("echo added script ran in $(pwd)\nexit 0\n")
    image = tmp_path / "image"
    p = subprocess.run(
        [sys.executable, "-m", "iso.mkinitramfs", "--out", str(image), "--pyz", str(pyz)]
        + ["--add", f"{script}:/opt/drill/drill.sh"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    args = kernel_args(image, "console=ttyS0 rescue.run=/opt/drill/drill.sh")
    with vm.Guest(args, tmp_path, name="run-added") as guest:
        guest.wait_for(r"added script ran in /opt/drill", BOOT_TIMEOUT)
        guest.wait_for(r"rescue\.run: exit status 0", 60)
        assert guest.wait_exit(60) == 0


def test_disk_tools_partition_lvm_and_ext4_work_without_udev(image, tmp_path):
    """What a bare-metal restore does first: GPT with sfdisk, an LVM volume, ext4 with the old UUID, mount."""
    need_tool(vm.QEMU)
    disk = tmp_path / "disk.img"
    with disk.open("wb") as f:
        f.truncate(64 << 20)
    args = kernel_args(image, "console=ttyS0") + ["-drive", f"file={disk},format=raw,if=virtio"]
    uuid = "0b7e4c1e-1111-4222-8333-944455556666"
    with vm.Guest(args, tmp_path, name="disks") as guest:
        guest.wait_for(SHELL_BANNER, BOOT_TIMEOUT)
        out, status = guest.run("printf 'label: gpt\\n,,L\\n' | sfdisk -q /dev/vda", 120)
        assert status == 0, out
        out, status = guest.run("pvcreate -q /dev/vda1 && vgcreate -q vg0 /dev/vda1", 120)
        assert status == 0, out
        out, status = guest.run("lvcreate -q -y -L 16M -n root vg0", 120)
        assert status == 0, out
        out, status = guest.run(f"mkfs.ext4 -q -U {uuid} /dev/vg0/root", 120)
        assert status == 0, out
        out, status = guest.run("mkdir -p /mnt/target && mount /dev/vg0/root /mnt/target", 60)
        assert status == 0, out
        out, status = guest.run("blkid -o value -s UUID /dev/vg0/root; findmnt -n -o FSTYPE /mnt/target", 60)
        assert out.split()[-2:] == [uuid, "ext4"]
