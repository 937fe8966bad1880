"""Fixtures of the layout tests: loop devices that are always detached (tests/support/loops.py)."""

from __future__ import annotations

import os

import pytest

from tests.support import need, need_tool
from tests.support.loops import LoopDisks


@pytest.fixture
def loops(tmp_path):
    need(os.geteuid() == 0, "loop devices need root")
    need_tool(
        "losetup", "sfdisk", "partx", "wipefs", "blkid", "lsblk", "mke2fs", "dumpe2fs", "mkswap", "mkfs.fat"
    )
    with LoopDisks(tmp_path) as disks:
        yield disks
