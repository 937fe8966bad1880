"""Files that vanish, change or fail while being archived: the backup goes on, GNU tar still reads the archive,
and the job ends with exit 1 and a warning naming the path."""

from __future__ import annotations

import errno
import os

import pytest

from rescue.archive.writer import write_archive
from rescue.tape.base import EndOfMediumError
from tests.support import need_tool
from tests.support.archive import MemoryTape, gnu_tar

RECORD = 10240


def big_file(path, size=5 * RECORD):
    path.write_bytes(b"z" * size)
    return size


def run(root, tape, **kw):
    return write_archive(tape, str(root), record_size=RECORD, threaded=False, **kw)


def extract(tape, tmp_path):
    archive = tape.save(tmp_path / "a.tar")
    out = tmp_path / "out"
    out.mkdir()
    proc = gnu_tar("-xpf", archive, "-b", RECORD // 512, "-C", out)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    return out


def test_file_truncated_while_read_is_padded_with_zeros(tmp_path):
    need_tool("tar")
    root = tmp_path / "src"
    root.mkdir()
    size = big_file(root / "log")
    tape = MemoryTape()
    # the first record goes to the tape while "log" is half read: truncate it then
    tape.on_write = lambda n: os.truncate(root / "log", 100) if n == 0 else None
    result = run(root, tape)
    assert result.exit_code == 1
    read = RECORD - 3 * 512  # what fitted in the first record after the pax and ustar headers
    assert result.warnings == [("log", f"File shrank by {size - read} bytes; padding with zeros")]
    out = extract(tape, tmp_path)
    data = (out / "log").read_bytes()
    assert len(data) == size  # the header's size, as GNU tar keeps it
    assert data == b"z" * read + bytes(size - read)


def test_file_grown_while_read_keeps_header_size_and_warns(tmp_path):
    need_tool("tar")
    root = tmp_path / "src"
    root.mkdir()
    size = big_file(root / "log")

    def grow(n):
        if n == 0:
            with open(root / "log", "ab") as f:
                f.write(b"more" * 1000)

    tape = MemoryTape()
    tape.on_write = grow
    result = run(root, tape)
    assert result.warnings == [("log", "file changed as we read it")]
    assert result.exit_code == 1
    out = extract(tape, tmp_path)
    assert (out / "log").read_bytes() == b"z" * size


def test_file_removed_before_it_is_read_is_left_out(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    for i in range(6):
        (root / f"f{i}").write_bytes(b"x")
    order = os.listdir(root)  # the walk's order
    (root / order[0]).write_bytes(b"x" * 3 * RECORD)  # its records go to the tape while the walk is on it
    victim = order[-1]
    tape = MemoryTape()
    tape.on_write = lambda n: os.unlink(root / victim) if n == 0 else None
    members = []
    result = run(root, tape, on_member=members.append)
    assert victim not in [m.path for m in members]
    assert result.warnings == [(victim, "File removed before we read it")]
    assert result.exit_code == 1 and result.members == 5


def test_read_error_pads_and_warns(tmp_path, mocker):
    need_tool("tar")
    root = tmp_path / "src"
    root.mkdir()
    (root / "bad").write_bytes(b"q" * 3000)
    real_readv = os.readv
    mocker.patch("os.readv", side_effect=OSError(errno.EIO, "Input/output error"))
    tape = MemoryTape()
    result = run(root, tape)
    mocker.patch("os.readv", real_readv)
    assert result.warnings == [("bad", "Read error at byte 0, while reading 3000 bytes: Input/output error")]
    out = extract(tape, tmp_path)
    assert (out / "bad").read_bytes() == bytes(3000)


def test_unreadable_file_is_left_out_with_a_warning(tmp_path, mocker):
    root = tmp_path / "src"
    root.mkdir()
    (root / "secret").write_bytes(b"s")
    (root / "ok").write_bytes(b"o")
    real_open = os.open

    def fake_open(path, flags, *a, **kw):
        if path == "secret":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *a, **kw)

    mocker.patch("os.open", side_effect=fake_open)
    members = []
    result = write_archive(MemoryTape(), str(root), on_member=members.append)
    assert [m.path for m in members] == ["ok"]
    assert result.warnings == [("secret", "Cannot open: Permission denied")]
    assert result.exit_code == 1


def test_tape_error_stops_the_backup(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    big_file(root / "f", size=20 * RECORD)
    tape = MemoryTape(fail_after=3, error=EndOfMediumError("memory: end of medium"))
    for threaded in (False, True):
        with pytest.raises(EndOfMediumError):
            write_archive(tape, str(root), record_size=RECORD, threaded=threaded)


def test_small_file_truncated_after_its_stat_is_padded_like_a_big_one(tmp_path, mocker):
    """The one-read fast path for small files gets a short read: the general path pads and warns."""
    need_tool("tar")
    root = tmp_path / "src"
    root.mkdir()
    (root / "small").write_bytes(b"s" * 3000)
    real_open = os.open

    def truncating_open(path, flags, *a, **kw):
        if path == "small":
            os.truncate(root / "small", 100)
        return real_open(path, flags, *a, **kw)

    mocker.patch("os.open", side_effect=truncating_open)
    tape = MemoryTape()
    result = run(root, tape)
    mocker.stopall()
    assert result.warnings == [("small", "File shrank by 2900 bytes; padding with zeros")]
    out = extract(tape, tmp_path)
    assert (out / "small").read_bytes() == b"s" * 100 + bytes(2900)
