"""Archives written by rescue.archive.writer, read by real GNU tar: same tree back, and not one warning."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess

import pytest

from rescue.archive import tarformat as tf
from rescue.archive.member import FILE, HARDLINK
from rescue.archive.walk import WalkSettings
from rescue.progress import Progress
from tests.support import need, need_tool
from tests.support.archive import IS_ROOT, build_tree, gnu_tar, snapshot, write_tree_archive

EXTRACT = ("--xattrs", "--acls", "--xattrs-include=*")


@pytest.fixture
def tree(tmp_path):
    need_tool("tar", "setfacl", "getfacl")
    need(IS_ROOT, "needs root (devices, ownership, trusted.* xattrs)")
    root = tmp_path / "src"
    build_tree(root)
    return root


@pytest.mark.parametrize("record_size", [tf.DEFAULT_RECORD_SIZE, 10240, 512])
def test_gnu_tar_extracts_identical_tree_without_warnings(tree, tmp_path, record_size):
    archive = tmp_path / "a.tar"
    result, members = write_tree_archive(tree, archive, record_size=record_size)
    assert result.exit_code == 0, result.warnings
    assert archive.stat().st_size % record_size == 0
    out = tmp_path / "out"
    out.mkdir()
    blocks = record_size // 512
    proc = gnu_tar("-xpf", archive, "-b", blocks, *EXTRACT, "-C", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert snapshot(out) == snapshot(tree)


def test_gnu_tar_lists_archive_without_warnings(tree, tmp_path):
    archive = tmp_path / "a.tar"
    write_tree_archive(tree, archive)
    proc = gnu_tar("-tvf", archive, "--xattrs", "--acls")
    assert proc.returncode == 0 and proc.stderr == b""
    names = proc.stdout.decode("utf-8", "surrogateescape")
    assert "etc/passwd.hard link to etc/passwd" in names or "var/passwd.hard2 link to" in names
    assert os.fsdecode(b"latin1-\xe9t\xe9") not in names  # listed with GNU tar's octal escapes
    assert "latin1-\\351t\\351" in names


def test_sparse_file_keeps_its_holes(tree, tmp_path):
    archive = tmp_path / "a.tar"
    _, members = write_tree_archive(tree, archive)
    sparse = next(m for m in members if m.path == "var/lib/sparse.img")
    # data found at file-system block granularity (4 KiB on ext4 and tmpfs), and the map ends at the size
    assert sparse.sparse == [(1024 * 1024, 8192), (40 * 1024 * 1024, 4096), (64 * 1024 * 1024, 0)]
    # the archive stores the data regions, not 64 MiB
    assert archive.stat().st_size < 2 * 1024 * 1024
    out = tmp_path / "out"
    out.mkdir()
    assert gnu_tar("-xpf", archive, "-C", out).returncode == 0
    st = os.stat(out / "var/lib/sparse.img")
    assert st.st_size == 64 * 1024 * 1024
    assert st.st_blocks * 512 < 1024 * 1024


def test_sparse_file_over_8_gib_extracts_with_its_size(tmp_path):
    need_tool("tar")
    root = tmp_path / "src"
    root.mkdir()
    size = 9 * 1024**3 + 12345
    with open(root / "huge", "wb") as f:
        f.truncate(size)
        f.seek(8 * 1024**3 + 1)
        f.write(b"end of the world")
    archive = tmp_path / "a.tar"
    result, members = write_tree_archive(root, archive)
    assert result.exit_code == 0
    assert members[0].size == size and members[0].sparse
    listing = gnu_tar("-tvf", archive)
    assert listing.stderr == b"" and str(size).encode() in listing.stdout
    out = tmp_path / "out"
    out.mkdir()
    proc = gnu_tar("-xpf", archive, "-C", out)
    assert proc.returncode == 0 and proc.stderr == b""
    with open(out / "huge", "rb") as f:
        assert os.fstat(f.fileno()).st_size == size
        f.seek(8 * 1024**3 + 1)
        assert f.read(16) == b"end of the world"


def test_on_member_reports_first_header_position_and_sha256(tree, tmp_path):
    record_size = 10240
    archive = tmp_path / "a.tar"
    _, members = write_tree_archive(tree, archive, record_size=record_size)
    data = archive.read_bytes()
    by_path = {}
    for m in members:
        at = m.record * record_size + m.offset
        header = data[at : at + 512]
        assert tf.header_checksum(header) == int(header[148:154], 8)
        assert header[156:157] in (tf.XHDTYPE, tf.TYPE_TO_TYPEFLAG[m.type])
        by_path[m.path] = m
    assert [m.record * record_size + m.offset for m in members] == sorted(
        m.record * record_size + m.offset for m in members
    )
    passwd = (tree / "etc" / "passwd").read_bytes()
    group = ("etc/passwd", "etc/passwd.hard", "var/passwd.hard2")
    first = [by_path[p] for p in group if by_path[p].type == FILE]
    assert len(first) == 1 and first[0].sha256 == hashlib.sha256(passwd).hexdigest()
    big = (tree / "var/lib/big.bin").read_bytes()
    assert by_path["var/lib/big.bin"].sha256 == hashlib.sha256(big).hexdigest()
    links = [m for m in members if m.type == HARDLINK and m.path in group]
    assert len(links) == 2 and {m.linkname for m in links} == {first[0].path}
    fifo_links = [m for m in members if m.type == HARDLINK and m.path.startswith("dev/fifo")]
    assert len(fifo_links) == 1 and fifo_links[0].linkname in ("dev/fifo", "dev/fifo.hard")
    assert all(m.sha256 for m in members if m.type == FILE)


def test_acl_text_is_what_gnu_tar_writes(tree, tmp_path):
    ours = tmp_path / "ours.tar"
    write_tree_archive(tree, ours)
    theirs = tmp_path / "theirs.tar"
    proc = gnu_tar("--format=posix", "--acls", "-C", tree, "-cf", theirs, "etc/acl", "srv")
    assert proc.returncode == 0, proc.stderr

    def acl_records(path):
        out = []
        for chunk in path.read_bytes().split(b" SCHILY.acl.")[1:]:
            key, _, rest = chunk.partition(b"=")
            out.append((key, rest.split(b"\n\n", 1)[0] if rest[:1] != b"\n" else b""))
        return out

    assert acl_records(ours) == acl_records(theirs)
    assert len(acl_records(ours)) == 3  # etc/acl access; srv access and default


def test_dump_spool_and_priority_paths_come_first(tree, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "mysql.sql").write_bytes(b"-- dump\n")
    archive = tmp_path / "a.tar"
    _, members = write_tree_archive(
        tree, archive, walk=WalkSettings(extra=[(str(spool), "rescue-db")], priority=["usr/bin", "srv"])
    )
    paths = [m.path for m in members]
    assert paths[:2] == ["rescue-db", "rescue-db/mysql.sql"]
    assert paths[2:4] == ["usr", "usr/bin"]
    assert sorted(paths[4:6]) == ["usr/bin/sgid", "usr/bin/suid"]
    assert paths.index("srv") < paths.index("etc")
    assert paths.count("usr") == 1 and paths.count("usr/bin") == 1 and len(paths) == len(set(paths))
    out = tmp_path / "out"
    out.mkdir()
    proc = gnu_tar("-xpf", archive, *EXTRACT, "-C", out)
    assert proc.returncode == 0 and proc.stderr == b""
    assert (out / "rescue-db/mysql.sql").read_bytes() == b"-- dump\n"


def test_gnu_tar_diff_finds_no_difference(tree, tmp_path):
    archive = tmp_path / "a.tar"
    write_tree_archive(tree, archive)
    proc = subprocess.run(
        ["tar", "--compare", "-f", str(archive), "-C", str(tree)], capture_output=True, env={"LC_ALL": "C"}
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_progress_counts_every_member_and_byte(tree, tmp_path):
    progress = Progress("backup", stream=io.StringIO())
    result, members = write_tree_archive(tree, tmp_path / "a.tar", progress=progress)
    assert progress.files == result.members == len(members)
    assert progress.bytes == result.bytes > 300 * 1024


def test_without_xattrs_and_acls_no_schily_keyword_is_written(tree, tmp_path):
    archive = tmp_path / "a.tar"
    write_tree_archive(tree, archive, xattrs=False, acls=False)
    assert b"SCHILY." not in archive.read_bytes()
    write_tree_archive(tree, archive, xattrs=False, acls=True)
    data = archive.read_bytes()
    assert b"SCHILY.acl.access" in data and b"SCHILY.xattr." not in data
