"""A minimal description of the machine's storage for the label's layout.json: mounts and block devices.

Sources: /proc/self/mountinfo (proc(5): mount id, parent id, major:minor, root, mount point, options, optional
fields ended by "-", filesystem type, source, super options; spaces and such escaped as octal `\\040`) and
`lsblk -J` (JSON, when lsblk exists).  A full capture (partition tables, RAID, LVM) belongs to `layout capture`;
this is what a restore needs at least to know which filesystems existed and where they were mounted.

`pseudo_mounts()` also tells the backup which mount points below its root hold no data worth a tape (proc,
sysfs, tmpfs ...), the "any other mounted pseudo filesystem" default excludes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import List, Optional

MINIMAL_FORMAT = "rescue-layout-minimal"

# Filesystems without data of their own (kernel views, scratch in memory).  tmpfs is here: its content is gone at
# the next boot anyway, and /run, /dev/shm and /tmp are tmpfs on most systems.
PSEUDO_FSTYPES = frozenset(
    {
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "tmpfs",
        "ramfs",
        "cgroup",
        "cgroup2",
        "debugfs",
        "tracefs",
        "securityfs",
        "pstore",
        "bpf",
        "autofs",
        "mqueue",
        "hugetlbfs",
        "configfs",
        "fusectl",
        "binfmt_misc",
        "efivarfs",
        "rpc_pipefs",
        "nsfs",
        "selinuxfs",
        "fuse.gvfsd-fuse",
        "fuse.portal",
        "binder",
    }
)


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> List[dict]:
    """The mounts of a /proc/<pid>/mountinfo text, in its order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        if "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)
        if len(fields) < sep + 3:
            continue
        mounts.append(
            {
                "mount_point": _unescape(fields[4]),
                "root": _unescape(fields[3]),
                "device": fields[2],
                "fstype": fields[sep + 1],
                "source": _unescape(fields[sep + 2]),
                "options": fields[5],
            }
        )
    return mounts


def read_mounts(path: str = "/proc/self/mountinfo") -> List[dict]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return parse_mountinfo(f.read())
    except OSError:
        return []


def pseudo_mounts(mounts: List[dict], root: str) -> List[str]:
    """Archive paths (relative to root) of pseudo filesystems mounted strictly below root."""
    root = os.path.normpath(root)
    prefix = root.rstrip("/") + "/"
    found = []
    for m in mounts:
        point = os.path.normpath(m["mount_point"])
        if m["fstype"] in PSEUDO_FSTYPES and point.startswith(prefix) and point != root:
            rel = point[len(prefix) :]
            if rel not in found:
                found.append(rel)
    return found


def lsblk() -> Optional[dict]:
    """`lsblk -J -O` output (every column), or None where lsblk is missing or fails."""
    if shutil.which("lsblk") is None:
        return None
    try:
        proc = subprocess.run(
            ["lsblk", "-J", "-O"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return None


def minimal_layout() -> dict:
    """Mounts (pseudo filesystems left out) and block devices."""
    mounts = [m for m in read_mounts() if m["fstype"] not in PSEUDO_FSTYPES]
    return {"format": MINIMAL_FORMAT, "version": 1, "mounts": mounts, "lsblk": lsblk()}
