"""Running the storage tools (lsblk, sfdisk, mdadm, lvm, cryptsetup, blkid ...) for capture and recreate.

Contract: `probe(argv)` runs a read-only tool and never raises: it returns a `ToolOutput` whose `text` is None
when the tool is missing, fails or times out, and whose `problem` then says why in one line ("mdadm: not
installed", "sfdisk --json /dev/sda: exit 1: ..."), so a capture records what it could not see instead of failing
the backup.  `have(name)` tells whether a tool is on PATH.  Recreate runs its commands through
`rescue.layout.recreate`, which logs them; this module only reads.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from typing import Dict, List, Optional, Sequence

TIMEOUT = 60
# LVM warns about leaked descriptors and, without udev, about missing device links; neither changes its answer.
TOOL_ENV = {"LVM_SUPPRESS_FD_WARNINGS": "1", "LC_ALL": "C"}


@dataclasses.dataclass
class ToolOutput:
    argv: List[str]
    text: Optional[str]
    problem: Optional[str] = None


def have(name: str) -> bool:
    return shutil.which(name) is not None


def tool_env() -> dict:
    env = dict(os.environ)
    env.update(TOOL_ENV)
    return env


def probe(argv: Sequence[str], ok_codes: Sequence[int] = (0,)) -> ToolOutput:
    argv = list(argv)
    if not have(argv[0]):
        return ToolOutput(argv, None, f"{argv[0]}: not installed")
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT,
            env=tool_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return ToolOutput(argv, None, f"{' '.join(argv)}: {e}")
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode not in ok_codes:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = err[-1] if err else "no message"
        return ToolOutput(argv, None, f"{' '.join(argv)}: exit {proc.returncode}: {why}")
    return ToolOutput(argv, out)


def read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def sysfs_identity(name: str, sys_root: str = "/sys") -> Dict[str, str]:
    """Serial and WWN of disk `name` from sysfs, for when lsblk has no udev database to read them from (a rescue
    system): virtio's `serial`, NVMe's `device/serial` and `wwid`, SCSI's `device/wwid` (naa.X is udev's 0xX)."""
    top = os.path.join(sys_root, "block", name)
    found = {}
    for key, rel in (
        ("serial", "serial"),
        ("serial", "device/serial"),
        ("wwn", "wwid"),
        ("wwn", "device/wwid"),
    ):
        try:
            with open(os.path.join(top, rel), encoding="utf-8", errors="replace") as f:
                value = f.read().strip()
        except OSError:
            continue
        if value and key not in found:
            found[key] = "0x" + value[4:] if key == "wwn" and value.startswith("naa.") else value
    return found


def fill_identity(rec: dict, sys_root: str = "/sys") -> dict:
    """A disk record's serial and WWN, from sysfs where lsblk had none (no udev database)."""
    for key, value in sysfs_identity(os.path.basename(rec["path"]), sys_root).items():
        rec[key] = rec.get(key) or value
    return rec
