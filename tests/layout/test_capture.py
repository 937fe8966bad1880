"""A capture records what it cannot see instead of failing, and never fails a backup."""

from __future__ import annotations

import importlib
import os
import shutil

from rescue.layout import backup_layout, capture
from tests.support.loops import sh


def test_a_missing_tool_is_recorded_and_the_rest_is_captured(loops, tmp_path, monkeypatch):
    disk = loops.disk("d", 64 << 20)
    loops.partition(disk, "label: gpt\n,,L\n")
    sh("mke2fs", "-q", "-t", "ext4", "-L", "data", f"{disk}p1")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("lsblk", "blkid", "dumpe2fs"):  # no sfdisk, no mdadm, no lvm
        os.symlink(shutil.which(tool), bin_dir / tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    got = capture("/", [disk])
    assert "sfdisk: not installed" in got["missing"]
    assert got["disks"][0]["table"] is None
    (fs,) = got["filesystems"]
    assert (fs["type"], fs["label"], fs["ext"]["inode_size"]) == ("ext4", "data", 256)


def test_a_capture_that_breaks_still_gives_the_backup_a_minimal_layout(monkeypatch):
    def broken(root):
        raise KeyError("partitiontable")

    # the package exports the function `capture` under the module's name; the module itself is in sys.modules
    monkeypatch.setattr(importlib.import_module("rescue.layout.capture"), "capture", broken)
    got = backup_layout("/")
    assert got["format"] == "rescue-layout-minimal" and got["mounts"]
    assert got["missing"] == ["layout capture failed: KeyError: 'partitiontable'"]
