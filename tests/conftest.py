"""pytest options shared by the suite.

`--tape=DEVICE` runs the tape contract suite against a real device (the drill runs it inside a VM against
/dev/nst0); without it the contract suite runs against the emulated backends only.
"""

import os

import pytest

from rescue.archive import parallel_extract
from tests.support import need, need_tool
from tests.support.loops import LoopDisks


def pytest_addoption(parser):
    parser.addoption("--tape", default=None, help="also run the tape contract suite against this device")


@pytest.fixture(params=["one-process", "workers"])
def extract_mode(request, monkeypatch):
    """Run a test with the single-process extractor and again with worker processes writing the files (from
    the first file on: the tests' archives are small).  Modules opt in with
    `pytestmark = pytest.mark.usefixtures("extract_mode")`."""
    if request.param == "workers":
        monkeypatch.setattr(parallel_extract, "default_jobs", lambda: 2)
        monkeypatch.setattr(parallel_extract, "START_AFTER", 0)
    else:
        monkeypatch.setattr(parallel_extract, "default_jobs", lambda: 1)
    return request.param


@pytest.fixture
def loops(tmp_path):
    """Loop devices on sparse files under tmp_path, unmounted and detached whatever happens (layout, recover)."""
    need(os.geteuid() == 0, "loop devices need root")
    need_tool(
        "losetup", "sfdisk", "partx", "wipefs", "blkid", "lsblk", "mke2fs", "dumpe2fs", "mkswap", "mkfs.fat"
    )
    with LoopDisks(tmp_path) as disks:
        yield disks
