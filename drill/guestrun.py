"""Boot the rescue image once to run one shell script, with the virtual tape (and disks) attached.

Contract: `run_script(name, script, workdir, tape, disks=(), files={})` makes `workdir/name/` the guest's
`/mnt/run` (a 9p share, read-write, so the script leaves its results there), writes `run.sh` and `files` into
it, boots `build/out/image` with `rescue.run=9p:drill:run.sh` and waits for the guest to power off.  It returns
a `GuestResult`: the script's exit status as /init reported it, the console text, wall time from QEMU's start to
its exit, and the time to the first line the script printed (the boot time).  QEMU is ended by its pid when the
guest does not finish in time.  `disks` are raw images attached as virtio disks (/dev/vda, /dev/vdb ...), each a
path or a `Disk` (a serial, so the guest finds it as /dev/disk/by-id/virtio-SERIAL; bus "nvme": an NVMe
controller instead, /dev/nvme0n1 ..., /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_SERIAL; read-only; snapshot: the
guest's writes are discarded); `image` is the directory holding vmlinuz and initrd.img (default
build/out/image); `append` replaces the kernel command line (another /init, e.g. the production tree's installer,
must keep the protocol: print `rescue.run: 9p:` before the script and `rescue.run: exit status N` after it);
`machine` is more QEMU arguments (e.g. qemu.uefi_args: the image booted by OVMF instead of SeaBIOS).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
from pathlib import Path
from typing import Dict, Iterable, Optional, Union

from drill import qemu as vm
from drill.vtape import VirtualTape

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "build" / "out" / "image"
BOOTED = "rescue.run: 9p:"  # /init prints it just before it runs the script
APPEND = "console=ttyS0 panic=-1 rescue.run=9p:drill:run.sh"
# Shell prelude of every guest script: timing from /proc/uptime, the rescue command, mt-st by its own name.
PRELUDE = """\
set -u
now() { cut -d' ' -f1 /proc/uptime; }
rescue() { python3 "${RESCUE_PYZ:-/rescue/rescue.pyz}" "$@"; }
MT=mt-st
"""


@dataclasses.dataclass
class Disk:
    path: Path
    serial: Optional[str] = None
    readonly: bool = False
    snapshot: bool = False
    bus: str = "virtio"  # or "nvme" (one NVMe controller per disk; it needs a serial)

    def qemu_args(self, i: int) -> list:
        drive = f"file={self.path},if=none,id=disk{i},format=raw,cache=unsafe"
        drive += ",readonly=on" if self.readonly else ""
        drive += ",snapshot=on" if self.snapshot else ""
        if self.bus == "nvme":
            device = f"nvme,drive=disk{i},serial={self.serial or f'disk{i}'}"
        elif self.bus == "virtio":
            device = f"virtio-blk-pci,drive=disk{i}" + (f",serial={self.serial}" if self.serial else "")
        else:
            raise ValueError(f"disk bus {self.bus!r}: virtio or nvme")
        return ["-drive", drive, "-device", device]

    @property
    def by_id(self) -> str:
        """The guest's /dev/disk/by-id name of the disk (udev's: the NVMe one carries QEMU's model name)."""
        if self.bus == "nvme":
            return f"/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_{self.serial}"
        return f"/dev/disk/by-id/virtio-{self.serial}"


@dataclasses.dataclass
class GuestResult:
    name: str
    status: Optional[int]
    console: str
    seconds: float
    boot_seconds: float
    share: Path

    @property
    def ok(self) -> bool:
        return self.status == 0


def guest_args(
    share: Path,
    tape: Optional[VirtualTape],
    disks: Iterable[Union[Path, Disk]],
    image: Optional[Path] = None,
    append: str = APPEND,
    machine: Iterable[str] = (),
) -> list:
    image = image or IMAGE
    args = [
        *machine,
        "-kernel",
        str(image / "vmlinuz"),
        "-initrd",
        str(image / "initrd.img"),
        "-append",
        append,
        "-smp",
        "2",
        "-virtfs",
        f"local,path={share},mount_tag=drill,security_model=none",
    ]
    for i, disk in enumerate(disks):
        args += (disk if isinstance(disk, Disk) else Disk(Path(disk))).qemu_args(i)
    if tape is not None:
        args += tape.qemu_args()
    return args


def run_script(
    name: str,
    script: str,
    workdir: Path,
    tape: Optional[VirtualTape],
    disks: Iterable[Union[Path, Disk]] = (),
    files: Optional[Dict[str, Path]] = None,
    timeout: float = 600,
    memory: str = "1024M",
    image: Optional[Path] = None,
    append: str = APPEND,
    boot_timeout: float = 120,
    machine: Iterable[str] = (),
) -> GuestResult:
    share = Path(workdir) / name
    if share.exists():
        shutil.rmtree(share)
    share.mkdir(parents=True)
    (share / "run.sh").write_text(script)
    for dest, src in (files or {}).items():
        target = share / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if Path(src).is_dir():
            shutil.copytree(src, target, symlinks=True)
        else:
            shutil.copy2(src, target)
    args = guest_args(share, tape, list(disks), image, append, machine)
    guest = vm.Guest(args, Path(workdir), name=name, memory=memory)
    started = time.monotonic()
    boot = 0.0
    status: Optional[int] = None
    with guest:
        try:
            guest.wait_for(re.escape(BOOTED), timeout=boot_timeout)
            boot = time.monotonic() - started
            m = guest.wait_for(r"rescue\.run: exit status (\d+)", timeout=timeout)
            status = int(m.group(1))
            guest.wait_exit(30)
        except vm.GuestTimeout:
            status = None
    console = guest.output.replace("\r\n", "\n").replace("\r", "")
    return GuestResult(name, status, console, time.monotonic() - started, boot, share)
