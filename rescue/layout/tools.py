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
from typing import List, Optional, Sequence

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
