"""Helpers of the tests that boot the rescue image: building the pyz, the image and the ISOs, blank disks, the
QEMU machine arguments for each way to boot, booting a guest to the rescue shell, and the boot-time log
(build/out/boot-times.txt). Fixtures: tests/iso/conftest.py.

Running a script in the rescue image with disks attached (what a test of md, LVM or LUKS needs, since the host
has no device-mapper and no md):

    image = build_image(tmp_dir / "image", build_pyz(tmp_dir / "rescue.pyz"))   # once per session
    result = guestrun.run_script("name", script_text, workdir, None, sparse_disks(workdir, [640 << 20] * 2),
                                 files={"input.json": path}, image=image)       # from drill import guestrun
    result.status, result.console, result.share / "what the script left there"

The disks are /dev/vda, /dev/vdb ... in the guest; the script runs in the 9p share (its working directory).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from drill import qemu as vm
from tests.support import need, need_tool

ROOT = Path(__file__).resolve().parent.parent.parent
MEDIUM = ROOT / "iso" / "medium"
BOOT_TIMES = ROOT / "build" / "out" / "boot-times.txt"
SHELL_BANNER = r"rescue: shell on \S+"
BOOT_TIMEOUT = 240  # TCG on a busy 2-core machine; a normal boot takes 15-25 s


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess:
    """`python3 -m MODULE ARGS` from the source tree's root (build/pyz.py, iso.mkinitramfs, iso.mkimage ...)."""
    cmd = (
        [sys.executable, "-m", module, *args]
        if not module.endswith(".py")
        else [sys.executable, module, *args]
    )
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert p.returncode == 0, f"{module} failed:\n{p.stderr[-3000:]}"
    return p


def build_pyz(out: Path, commit: str = "") -> Path:
    cmd = [str(ROOT / "build" / "pyz.py"), "--out", str(out)]
    if commit:
        cmd += ["--commit", commit]
    run_tool(*cmd)
    return out


def build_image(out: Path, pyz: Path) -> Path:
    """vmlinuz + initrd.img of the rescue image with `pyz` in `out` (python3 -m iso.mkinitramfs)."""
    need_tool("apt-get", "apt-cache", "dpkg-deb", "readelf", "zstd")
    run_tool("iso.mkinitramfs", "--out", str(out), "--pyz", str(pyz))
    return out


def sparse_disks(workdir: Path, sizes: list) -> list:
    """Empty raw disk images of the given sizes in bytes (sparse: only what a guest writes takes space)."""
    disks = []
    for i, size in enumerate(sizes):
        disk = Path(workdir) / f"disk{i}.img"
        with disk.open("wb") as f:
            f.truncate(size)
        disks.append(disk)
    return disks


def pyz_version(pyz: Path) -> str:
    return subprocess.run(
        [sys.executable, "-I", str(pyz), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def mkimage(build_dir: Path, image: Path, pyz: Path, method: str) -> Path:
    need_tool("xorriso", "grub-mkrescue", "grub-mkstandalone", "mkfs.vfat", "mcopy")
    out = build_dir / f"rescue-{method}.iso"
    run_tool("iso.mkimage", "--method", method, "--image", str(image), "--pyz", str(pyz), "--out", str(out))
    return out


def machine_args(medium: Path, how: str, workdir: Path) -> list:
    """QEMU arguments booting `medium` as a CD (bios/uefi) or as a USB stick (usb-bios/usb-uefi)."""
    firmware = []
    if how.endswith("uefi"):
        need(vm.ovmf() is not None, "OVMF firmware missing (Debian package ovmf)")
        firmware = vm.uefi_args(workdir)
    if how.startswith("usb"):
        drive = [
            "-drive",
            f"if=none,id=stick,format=raw,readonly=on,file={medium}",
            "-device",
            "qemu-xhci",
            "-device",
            "usb-storage,drive=stick,bootindex=0",
        ]
    else:
        drive = ["-cdrom", str(medium)]
    return firmware + drive


def record_boot_time(what: str, seconds: float) -> None:
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {what}: shell after {seconds:.1f} s ({vm.accel()})"
    BOOT_TIMES.parent.mkdir(parents=True, exist_ok=True)
    with BOOT_TIMES.open("a") as f:
        f.write(line + "\n")
    print(line)


def boot_and_read_version(medium: Path, how: str, workdir: Path, label: str) -> tuple:
    """Boot `medium`, wait for the rescue shell, run `rescue --version`; returns (version line, RESCUE_PYZ, the
    filesystem type mounted on /sys/firmware/efi/efivars or "")."""
    need_tool(vm.QEMU)
    with vm.Guest(machine_args(medium, how, workdir), workdir, name=how, memory="512M") as guest:
        guest.wait_for(SHELL_BANNER, BOOT_TIMEOUT)
        record_boot_time(f"{label} {how}", time.monotonic() - guest.started_at)
        out, status = guest.run(
            "rescue --version; echo pyz=$RESCUE_PYZ; echo efivars=$(findmnt -n -o FSTYPE /sys/firmware/efi/efivars)",
            timeout=120,
        )
    assert status == 0, out
    lines = out.splitlines()
    return (
        lines[-3].strip(),
        lines[-2].strip().removeprefix("pyz="),
        lines[-1].strip().removeprefix("efivars="),
    )
