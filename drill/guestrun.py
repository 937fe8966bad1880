"""Boot the rescue image once to run one shell script, with the virtual tape (and disks) attached.

Contract: `run_script(name, script, workdir, tape, disks=(), files={})` makes `workdir/name/` the guest's
`/mnt/run` (a 9p share, read-write, so the script leaves its results there), writes `run.sh` and `files` into
it, boots `build/out/image` with `rescue.run=9p:drill:run.sh` and waits for the guest to power off.  It returns
a `GuestResult`: the script's exit status as /init reported it, the console text, wall time from QEMU's start to
its exit, and the time to the first line the script printed (the boot time).  QEMU is ended by its pid when the
guest does not finish in time.  `disks` are raw images attached as virtio disks (/dev/vda, /dev/vdb ...); `image` is the directory
holding vmlinuz and initrd.img (default build/out/image).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
from pathlib import Path
from typing import Dict, Iterable, Optional

from drill import qemu as vm
from drill.vtape import VirtualTape

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "build" / "out" / "image"
BOOTED = "rescue.run: 9p:"  # /init prints it just before it runs the script


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
    share: Path, tape: Optional[VirtualTape], disks: Iterable[Path], image: Optional[Path] = None
) -> list:
    image = image or IMAGE
    args = [
        "-kernel",
        str(image / "vmlinuz"),
        "-initrd",
        str(image / "initrd.img"),
        "-append",
        "console=ttyS0 panic=-1 rescue.run=9p:drill:run.sh",
        "-smp",
        "2",
        "-virtfs",
        f"local,path={share},mount_tag=drill,security_model=none",
    ]
    for i, disk in enumerate(disks):
        args += ["-drive", f"file={disk},if=none,id=disk{i},format=raw,cache=unsafe"]
        args += ["-device", f"virtio-blk-pci,drive=disk{i}"]
    if tape is not None:
        args += tape.qemu_args()
    return args


def run_script(
    name: str,
    script: str,
    workdir: Path,
    tape: Optional[VirtualTape],
    disks: Iterable[Path] = (),
    files: Optional[Dict[str, Path]] = None,
    timeout: float = 600,
    memory: str = "1024M",
    image: Optional[Path] = None,
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
    guest = vm.Guest(guest_args(share, tape, list(disks), image), Path(workdir), name=name, memory=memory)
    started = time.monotonic()
    boot = 0.0
    status: Optional[int] = None
    with guest:
        try:
            guest.wait_for(re.escape(BOOTED), timeout=120)
            boot = time.monotonic() - started
            m = guest.wait_for(r"rescue\.run: exit status (\d+)", timeout=timeout)
            status = int(m.group(1))
            guest.wait_exit(30)
        except vm.GuestTimeout:
            status = None
    console = guest.output.replace("\r\n", "\n").replace("\r", "")
    return GuestResult(name, status, console, time.monotonic() - started, boot, share)
