"""Loop devices for the layout tests: made on sparse files, always cleaned up by name.

`LoopDisks(workdir)` is a context manager: `disk(name, size)` -> "/dev/loopN" on `workdir/name.img` (partitions
appear with `partx -u`, since kernels without partition parsers do not scan loop devices themselves);
`mount(dev, point, *opts)` mounts and remembers; `wipe(disk)` makes a disk look dead or new.  On exit, even after
a failure, it unmounts what is still mounted below workdir (deepest first), turns off swap on its devices, and
detaches each loop device it made by its name.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List

from rescue.layout import mounts as mountinfo

MIB = 1024 * 1024


def sh(*argv: str, stdin: str = "") -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stderr}"
    return proc.stdout


def wipe(disk: str) -> None:
    """What a dead disk or a new one looks like: no signatures in the partitions, no table."""
    for name in sorted(os.listdir(f"/sys/block/{os.path.basename(disk)}")):
        if name.startswith(os.path.basename(disk)):
            sh("wipefs", "-a", "-q", f"/dev/{name}")
    sh("wipefs", "-a", "-q", disk)
    sh("partx", "-d", disk)


class LoopDisks:
    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.loops: List[str] = []

    def __enter__(self):
        return self

    def disk(self, name: str, size: int) -> str:
        image = self.workdir / f"{name}.img"
        with open(image, "wb") as f:
            f.truncate(size)
        dev = sh("losetup", "--find", "--show", str(image)).strip()
        self.loops.append(dev)
        return dev

    def partition(self, disk: str, script: str) -> None:
        sh("sfdisk", "-q", "--wipe=always", disk, stdin=script)
        sh("partx", "-u", disk)

    def mount(self, dev: str, point: Path, *opts: str) -> Path:
        point.mkdir(parents=True, exist_ok=True)
        sh("mount", *opts, dev, str(point))
        return point

    def umount_all(self) -> None:
        prefix = str(self.workdir) + "/"
        points = [m["mount_point"] for m in mountinfo.read_mounts() if m["mount_point"].startswith(prefix)]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", point], capture_output=True)

    def __exit__(self, *exc):
        self.umount_all()
        swaps = open("/proc/swaps").read()
        for dev in reversed(self.loops):
            for line in swaps.splitlines():
                if line.startswith(dev):
                    subprocess.run(["swapoff", line.split()[0]], capture_output=True)
            subprocess.run(["partx", "-d", dev], capture_output=True)
            subprocess.run(["losetup", "-d", dev], capture_output=True)
        for dev in self.loops:
            if os.path.exists(f"/sys/block/{os.path.basename(dev)}/loop/backing_file"):
                raise AssertionError(f"{dev} is still attached after the test")
