"""Fixtures of the layout tests: loop devices that are always detached (tests/support/loops.py), and the rescue
image for the guest tests (md, LVM, LUKS need its kernel)."""

from __future__ import annotations

import os

import pytest

from tests.support import need, need_tool
from tests.support.images import build_image, build_pyz
from tests.support.loops import LoopDisks


@pytest.fixture
def loops(tmp_path):
    need(os.geteuid() == 0, "loop devices need root")
    need_tool(
        "losetup", "sfdisk", "partx", "wipefs", "blkid", "lsblk", "mke2fs", "dumpe2fs", "mkswap", "mkfs.fat"
    )
    with LoopDisks(tmp_path) as disks:
        yield disks


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    """The rescue image (kernel + initrd) with this tree's rescue.pyz, built once per test run."""
    build = tmp_path_factory.mktemp("layout-image")
    return build_image(build / "image", build_pyz(build / "rescue.pyz"))
