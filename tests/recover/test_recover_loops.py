"""`rescue recover` end to end on real loop devices (as root): a BIOS/MBR ext4 root + swap machine backed up
with `rescue backup`, its disk wiped, then recovered by one command.

The backed-up tree is a fake target system: a dpkg database listing grub-pc, GRUB's mark in the MBR, an fstab
by UUID, but no grub binaries.  The bootloader stage must stop naming the package to install; after "installing"
it (a shell and recording grub-install/update-grub/debconf-set-selections scripts copied in), `--resume`
continues from the bootloader stage, runs the target's own tools in a chroot and leaves no bind mount behind.
"""

from __future__ import annotations

import json
import os
import shutil

from rescue.cli import main
from rescue.layout import mounts as mountinfo
from tests.support import need_tool
from tests.support.backups import backed_up
from tests.support.loops import MIB, sh, wipe
from tests.support.tapes import gnu_tar, tree_state, write_tap

MBR = "label: dos\n,200M,83\n,,82\n"
DPKG_STATUS = "Package: grub-pc\nStatus: install ok installed\nVersion: 2.06-13\n\n"
RECORDER = '#!/bin/sh\necho "${0##*/} $*" >> /var/log/fake-boot.log\n'
DEBCONF = '#!/bin/sh\nwhile read -r line; do echo "debconf $line" >> /var/log/fake-boot.log; done\n'


def fake_system(loops, disk, src):
    loops.partition(disk, MBR)
    sh("mke2fs", "-q", "-t", "ext4", "-L", "root", f"{disk}p1")
    sh("mkswap", "-q", "-L", "swap", f"{disk}p2")
    with open(disk, "r+b") as f:  # GRUB's boot.img carries "GRUB" in the boot code (before the table at 446)
        f.seek(0x180)
        f.write(b"GRUB \0Geom\0")
    loops.mount(f"{disk}p1", src)
    root_uuid = sh("blkid", "-o", "value", "-s", "UUID", f"{disk}p1").strip()
    swap_uuid = sh("blkid", "-o", "value", "-s", "UUID", f"{disk}p2").strip()
    for d in (
        "etc",
        "boot",
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "usr/sbin",
        "var/lib/dpkg",
        "var/log",
        "root",
    ):
        os.makedirs(src / d, exist_ok=True)
    fstab = f"# <file system> <mount point> <type> <options> <dump> <pass>\nUUID={root_uuid} / ext4 errors=remount-ro 0 1\nUUID={swap_uuid} none swap sw 0 0\n"
    (src / "etc/fstab").write_text(fstab)
    (src / "etc/hostname").write_text("web1\n")
    (src / "var/lib/dpkg/status").write_text(DPKG_STATUS)
    (src / "boot/vmlinuz-6.1.0").write_bytes(os.urandom(200_000))
    (src / "root/notes.txt").write_text("tape on friday\n" * 50)
    return fstab


def install_fake_grub(target):
    """What `apt-get install grub-pc` would do for this test: a shell and the three tools, recording calls."""
    shell = shutil.which("dash") or "/bin/sh"
    libs = [w for line in sh("ldd", shell).splitlines() for w in line.split() if w.startswith("/")]
    for path in [shell, *libs]:
        dest = target / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), dest)
    (target / "bin").mkdir(exist_ok=True)
    shutil.copy2(os.path.realpath(shell), target / "bin/sh")
    for name, text in (
        ("grub-install", RECORDER),
        ("update-grub", RECORDER),
        ("debconf-set-selections", DEBCONF),
    ):
        (target / "usr/sbin" / name).write_text(text)
        (target / "usr/sbin" / name).chmod(0o755)


def _restored(state):
    return {
        k: v for k, v in state.items() if k not in ("var", "var/lib") and not k.startswith("var/lib/rescue")
    }


def test_recover_stops_at_the_bootloader_naming_grub_pc_and_resume_finishes_in_a_chroot(
    loops, tmp_path, capsys
):
    need_tool("tar", "chroot", "ldd", "mount", "umount")
    disk = loops.disk("sys", 400 * MIB)
    src = tmp_path / "src"
    fstab = fake_system(loops, disk, src)
    before = tree_state(str(src))
    tap = backed_up(tmp_path, src)
    loops.umount_all()
    wipe(disk)

    target, state_dir = tmp_path / "target", tmp_path / "state"
    common = ["-f", tap, "recover", "--map", f"{disk}={disk}", "--target", target, "--state-dir", state_dir]
    assert main([str(a) for a in common + ["--dry-run"]]) == 0
    out = capsys.readouterr().out
    assert f"grub-install --target=i386-pc {disk}" in out and "estimated time" in out
    assert "initramfs kept" in out
    assert not target.exists() or not os.listdir(target)  # the dry run touched nothing

    assert main([str(a) for a in common + ["--yes"]]) == 2
    said = capsys.readouterr()
    err = said.err
    # The restore stage gives no advice to run the stages that follow it by hand.
    assert "\nrestored 20 members" in said.out and "not reinstalled by restore" not in said.out + err
    assert "the target has no grub-install: install grub-pc in the target" in err and "--resume" in err
    state = json.loads((state_dir / "recover.json").read_text())
    assert [s for s in ("layout", "restore") if state["stages"][s]["done"]] == ["layout", "restore"]
    assert not state["stages"]["bootloader"]["done"]
    assert json.loads((target / "var/lib/rescue/recover.json").read_text())["stages"]["restore"]["done"]
    assert _restored(tree_state(str(target))) == _restored(before)

    install_fake_grub(target)
    resume = ["recover", "--resume", "--json", "--target", target, "--state-dir", state_dir]
    assert main([str(a) for a in resume]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["exit_code"] == 0 and summary["error"] is None
    assert all(summary["stages"][s]["done"] for s in ("layout", "restore", "bootloader", "finalize"))
    calls = (target / "var/log/fake-boot.log").read_text().splitlines()
    assert calls[0] == f"grub-install --target=i386-pc {disk}"
    assert calls[1] == f"debconf grub-pc grub-pc/install_devices multiselect {disk}"
    assert calls[2] == "update-grub "
    assert (target / "etc/fstab").read_text() == fstab  # same UUIDs, same names: unchanged
    assert not (target / "etc/fstab.rescue-orig").exists()
    assert {"recover.log", "layout.log"} <= set(os.listdir(target / "var/log/rescue"))
    assert "grub-install --target=i386-pc" in (target / "var/log/rescue/recover.log").read_text()
    prefix = str(target) + "/"
    assert [m["mount_point"] for m in mountinfo.read_mounts() if m["mount_point"].startswith(prefix)] == []


def test_a_plain_gnu_tar_tape_is_recovered_onto_a_layout_captured_separately(loops, tmp_path, capsys):
    need_tool("tar", "chroot", "ldd", "mount", "umount")
    disk = loops.disk("classic", 400 * MIB)
    src = tmp_path / "src"
    fstab = fake_system(loops, disk, src)
    install_fake_grub(src)  # this system has its bootloader tools
    layout = tmp_path / "layout.json"
    assert main(["layout", "capture", "--root", str(src), "--disk", disk, "-o", str(layout)]) == 0
    tap = write_tap(
        str(tmp_path / "classic.tap"), gnu_tar(str(src), str(tmp_path / "a.tar")), 20 * 512, rescue_set=False
    )
    loops.umount_all()
    wipe(disk)

    target, state_dir = tmp_path / "target", tmp_path / "state"
    argv = ["-f", tap, "recover", "--no-catalog", "--layout", layout, "--map", f"{disk}={disk}", "--yes"]
    assert main([str(a) for a in argv + ["--target", target, "--state-dir", state_dir]]) == 0
    out = capsys.readouterr().out
    assert "no rescue label" in out or "--no-catalog" in out
    assert (target / "etc/fstab").read_text() == fstab
    assert (target / "root/notes.txt").read_text() == "tape on friday\n" * 50
    calls = (target / "var/log/fake-boot.log").read_text().splitlines()
    assert calls[0] == f"grub-install --target=i386-pc {disk}" and calls[-1] == "update-grub "


def test_recover_onto_another_bigger_disk_rewrites_device_names_and_rebuilds_the_initramfs(
    loops, tmp_path, capsys
):
    need_tool("tar", "chroot", "ldd", "mount", "umount")
    old = loops.disk("old", 400 * MIB)
    new = loops.disk("new", 600 * MIB)
    src = tmp_path / "src"
    fake_system(loops, old, src)
    install_fake_grub(src)
    (src / "usr/sbin/update-initramfs").write_text(RECORDER)
    (src / "usr/sbin/update-initramfs").chmod(0o755)
    by_name = f"{old}p1 / ext4 errors=remount-ro 0 1\n{old}p2 none swap sw 0 0\n"
    (src / "etc/fstab").write_text(by_name)
    tap = backed_up(tmp_path, src)
    loops.umount_all()

    target = tmp_path / "target"
    argv = ["-f", tap, "recover", "--map", f"{old}={new}", "--grow", "/", "--yes", "--target", target]
    assert main([str(a) for a in argv + ["--state-dir", tmp_path / "state"]]) == 0
    assert f"initramfs rebuilt: disk {old} is {new} here" in capsys.readouterr().out
    calls = (target / "var/log/fake-boot.log").read_text().splitlines()
    assert calls[0] == f"grub-install --target=i386-pc {new}"
    assert calls[-1] == "update-initramfs -u -k all"
    assert (
        target / "etc/fstab"
    ).read_text() == f"{new}p1 / ext4 errors=remount-ro 0 1\n{new}p2 none swap sw 0 0\n"
    assert (target / "etc/fstab.rescue-orig").read_text() == by_name
    assert int(sh("blockdev", "--getsize64", f"{new}p1")) == 400 * MIB
