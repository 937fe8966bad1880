"""The minimal layout: mountinfo parsing and the pseudo file systems a backup leaves out."""

from __future__ import annotations

import os
import subprocess

from rescue import layout
from rescue.tapeset.catalog import open_catalog
from tests.support import need, need_tool
from tests.support.backups import backup

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
28 27 0:25 / /srv/my\\040data rw shared:5 - ext4 /dev/vdb1 rw
29 27 0:26 / /srv/www/cache rw,nosuid - tmpfs tmpfs rw,size=4k
30 27 0:27 / /run rw - tmpfs tmpfs rw
"""


def test_mountinfo_is_parsed_with_escapes_and_optional_fields():
    mounts = layout.parse_mountinfo(MOUNTINFO)
    assert [m["mount_point"] for m in mounts] == ["/proc", "/", "/srv/my data", "/srv/www/cache", "/run"]
    assert (
        mounts[2]["fstype"] == "ext4" and mounts[2]["source"] == "/dev/vdb1" and mounts[2]["device"] == "0:25"
    )


def test_pseudo_mounts_are_those_strictly_below_the_root():
    mounts = layout.parse_mountinfo(MOUNTINFO)
    assert layout.pseudo_mounts(mounts, "/") == ["proc", "srv/www/cache", "run"]
    assert layout.pseudo_mounts(mounts, "/srv") == ["www/cache"]
    assert layout.pseudo_mounts(mounts, "/srv/www/cache") == []


def test_minimal_layout_lists_real_filesystems_only():
    got = layout.minimal_layout()
    assert got["format"] == "rescue-layout-minimal"
    assert got["mounts"] and all(m["fstype"] not in layout.PSEUDO_FSTYPES for m in got["mounts"])


def test_a_tmpfs_mounted_in_the_tree_is_archived_as_an_empty_mount_point(tmp_path):
    need(os.geteuid() == 0, "mounting a tmpfs needs root")
    need_tool("mount", "umount")
    tree = tmp_path / "tree"
    (tree / "srv/scratch").mkdir(parents=True)
    (tree / "srv/keep.txt").write_text("keep\n")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "rescue-test", str(tree / "srv/scratch")], check=True
    )
    try:
        (tree / "srv/scratch/volatile").write_text("gone at reboot\n")
        result = backup(tmp_path, tree, tmp_path / "t.tap")
    finally:
        subprocess.run(["umount", str(tree / "srv/scratch")], check=True)
    _, members = open_catalog(result.catalog_path)
    paths = [m.path for m in members]
    assert "srv/scratch" in paths and "srv/keep.txt" in paths and "srv/scratch/volatile" not in paths
