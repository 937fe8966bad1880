"""The temporary names extraction writes under before a rename: `.rescue-tmp.PID.N`, made and parsed here.

The extractor (rescue.archive.extract) names a file, symlink, device or link that is not complete yet
`.rescue-tmp.PID.N` in its final directory (PID: the process writing it, N: a counter of that process) and renames
it over the real name when done. A restore that was killed leaves such names behind; the restore job removes them
on `--resume` (`is_leftover`), but never the names of a process still writing them (its own).
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

PREFIX = ".rescue-tmp."


class Namer:
    """Temporary names of this process, one new name per call. Made after a fork, a worker names its own."""

    def __init__(self):
        self.prefix = f"{PREFIX}{os.getpid()}."
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"{self.prefix}{self.count}"


def parse(name: str) -> Optional[Tuple[int, int]]:
    """(pid, n) of a temporary name, None for any other name."""
    if not name.startswith(PREFIX):
        return None
    parts = name[len(PREFIX) :].split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def is_leftover(name: str, running_pid: int) -> bool:
    """True for a temporary name that a process other than `running_pid` made."""
    parsed = parse(name)
    return parsed is not None and parsed[0] != running_pid
