"""What the writer walks (rescue.archive.walk): order, excludes, file-system boundaries, sockets, the plan."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from rescue.archive.walk import Walker, plan_tree
from rescue.archive.writer import write_archive
from rescue.errors import RescueError
from rescue.pathmatch import DEFAULT_EXCLUDES
from tests.support import need
from tests.support.archive import IS_ROOT, MemoryTape


def make(root, files):
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def paths_of(root, **kw):
    return [e[0] for e in Walker(str(root), **kw)]


def test_every_directory_comes_before_its_contents_and_names_are_relative(tmp_path):
    make(tmp_path, {"a/b/c/f": b"1", "a/g": b"2", "h": b"3"})
    paths = paths_of(tmp_path)
    assert sorted(paths) == ["a", "a/b", "a/b/c", "a/b/c/f", "a/g", "h"]
    for p in paths:
        if "/" in p:
            assert paths.index(p.rsplit("/", 1)[0]) < paths.index(p)


def test_excludes_leave_out_the_subtree(tmp_path):
    make(
        tmp_path, {"var/cache/apt/x": b"", "var/log/syslog": b"", "home/u/file.tmp": b"", "home/u/keep": b""}
    )
    paths = paths_of(tmp_path, excludes=["var/cache", "*.tmp"])
    assert "var/cache" not in paths and "var/cache/apt/x" not in paths
    assert "home/u/file.tmp" not in paths and "home/u/keep" in paths and "var/log/syslog" in paths


def test_default_excludes_keep_the_mount_point_but_not_its_contents(tmp_path):
    make(tmp_path, {"proc/1/status": b"x", "tmp/junk": b"j", "usr/src/linux/proc/keep.c": b"c"})
    os.chmod(tmp_path / "tmp", 0o1777)
    paths = paths_of(tmp_path, default_excludes=DEFAULT_EXCLUDES)
    assert "proc" in paths and "tmp" in paths
    assert "proc/1" not in paths and "tmp/junk" not in paths
    assert "usr/src/linux/proc/keep.c" in paths  # anchored at the root only


def test_sockets_are_skipped_and_reported_without_a_warning(tmp_path):
    make(tmp_path, {"run/x": b""})
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "run" / "app.sock"))
    try:
        result = write_archive(MemoryTape(), str(tmp_path))
    finally:
        sock.close()
    assert result.skipped == [("run/app.sock", "socket ignored")]
    assert result.warnings == [] and result.exit_code == 0 and result.members == 2


def test_priority_paths_and_their_parents_come_first_and_only_once(tmp_path):
    make(tmp_path, {"a/x": b"", "var/lib/dpkg/status": b"s", "var/log/l": b"", "etc/passwd": b"p", "z": b""})
    paths = paths_of(tmp_path, priority=["etc", "var/lib/dpkg", "missing"])
    assert paths[:2] == ["etc", "etc/passwd"]
    assert paths[2:6] == ["var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/status"]
    assert sorted(paths) == sorted(set(paths))
    assert {"a", "a/x", "var/log", "var/log/l", "z"} <= set(paths[6:])


def test_extra_trees_come_first_under_their_archive_name(tmp_path):
    spool = tmp_path / "spool"
    make(spool, {"mysql/all.sql": b"--", "pg.sql": b"--"})
    root = tmp_path / "root"
    make(root, {"etc/hosts": b"h"})
    paths = paths_of(root, extra=[(str(spool), "rescue-db/dumps"), (str(spool / "pg.sql"), "single.sql")])
    assert paths[0] == "rescue-db/dumps"
    assert set(paths[1:4]) == {
        "rescue-db/dumps/mysql",
        "rescue-db/dumps/mysql/all.sql",
        "rescue-db/dumps/pg.sql",
    }
    assert paths[4] == "single.sql" and paths[5:] == ["etc", "etc/hosts"]


def test_one_file_system_keeps_the_mount_point_and_stops_there(tmp_path):
    need(IS_ROOT, "needs root to mount a tmpfs")
    make(tmp_path, {"data/keep": b"k", "mnt/.placeholder": b""})
    os.unlink(tmp_path / "mnt/.placeholder")
    subprocess.run(["mount", "-t", "tmpfs", "none", str(tmp_path / "mnt")], check=True)
    try:
        (tmp_path / "mnt" / "other-fs").write_bytes(b"o")
        same = paths_of(tmp_path, one_file_system=True)
        both = paths_of(tmp_path)
    finally:
        subprocess.run(["umount", str(tmp_path / "mnt")], check=True)
    assert "mnt" in same and "mnt/other-fs" not in same and "data/keep" in same
    assert "mnt/other-fs" in both


def test_plan_counts_members_and_bytes_per_top_level_directory(tmp_path):
    make(tmp_path, {"etc/a": b"12345", "etc/b": b"", "var/log/x": b"x" * 1000, "top": b"t"})
    os.link(tmp_path / "var/log/x", tmp_path / "var/log/x2")
    with open(tmp_path / "var" / "sparse", "wb") as f:
        f.truncate(10 * 1024 * 1024)
    plan = plan_tree(str(tmp_path))
    assert plan.per_top == {"etc": [3, 5], "var": [5, 1000], "top": [1, 1]}
    assert plan.files == 9 and plan.bytes == 1006
    result = write_archive(MemoryTape(), str(tmp_path))
    assert result.members == plan.files and result.bytes == plan.bytes


def test_unreadable_root_is_a_warning_not_a_crash(tmp_path):
    result = write_archive(MemoryTape(), str(tmp_path / "missing"))
    assert result.members == 0 and result.exit_code == 1
    assert result.warnings[0][0].endswith("missing")


def test_record_size_must_be_a_multiple_of_512(tmp_path):
    with pytest.raises(RescueError, match="multiple of 512"):
        write_archive(MemoryTape(), str(tmp_path), record_size=1000)


def test_root_given_as_a_symlink_is_followed_but_nothing_below_it_is(tmp_path):
    make(tmp_path, {"real/etc/hosts": b"h", "elsewhere/secret": b"s"})
    os.symlink("real", tmp_path / "root-link")
    os.symlink("../elsewhere", tmp_path / "real" / "escape")
    paths = paths_of(tmp_path / "root-link")
    assert sorted(paths) == ["escape", "etc", "etc/hosts"]


def test_extra_tree_needs_an_archive_name(tmp_path):
    with pytest.raises(RescueError, match="archive name"):
        Walker(str(tmp_path), extra=[(str(tmp_path), "/")])
