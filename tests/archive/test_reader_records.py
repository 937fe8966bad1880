"""GNU tar's archives read record by record: any blocking factor or record size on a tape image, members found
again by (record, offset) on a second pass, seeks on a pipe, entry data by read/readinto/skip, an empty tape
file."""

from __future__ import annotations

import os
import subprocess

import pytest

from rescue.archive.reader import ArchiveReader, TruncatedArchiveError
from rescue.errors import RescueError
from rescue.tape.simh import SimhTape
from rescue.tape.stream import StreamTape
from tests.support import need_tool
from tests.support.gnutar import (
    assert_positions,
    build_tree,
    gnu_extract,
    our_extract,
    snapshot,
    tar_create,
    to_simh,
)


@pytest.mark.parametrize("blocking", [1, 20, 512])
def test_blocking_factors_read_from_a_simh_tape_with_tar_records(tmp_path, blocking):
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src, sparse=True)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "posix", "-b", str(blocking), "--sparse")
    tap = str(tmp_path / "a.tap")
    to_simh(archive, tap, blocking * 512)
    gnu_extract(archive, str(tmp_path / "gnu"), "-b", str(blocking))
    with SimhTape(tap) as t:
        members = our_extract(t, str(tmp_path / "ours"))
    assert snapshot(str(tmp_path / "ours")) == snapshot(str(tmp_path / "gnu"))
    assert_positions(archive, members, blocking * 512)


def test_record_sizes_that_are_not_block_multiples_read_the_same(tmp_path):
    """The reader takes whatever the device returns: headers that straddle records included."""
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "gnu")
    our_extract(StreamTape(archive, record_size=700), str(tmp_path / "odd"))
    our_extract(StreamTape(archive, record_size=1 << 20), str(tmp_path / "big"))
    assert snapshot(str(tmp_path / "odd")) == snapshot(str(tmp_path / "big"))


def test_seek_record_jumps_to_a_member_found_on_a_first_pass(tmp_path):
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "posix", "-b", "4")
    tap = str(tmp_path / "a.tap")
    to_simh(archive, tap, 2048)
    with SimhTape(tap) as t:
        positions = {e.member.path: (e.member.record, e.member.offset) for e in ArchiveReader(t)}
    target = "dir/résumé.txt"
    with SimhTape(tap) as t:
        reader = ArchiveReader(t)
        reader.seek_record(*positions[target])
        first = next(iter(reader))
        assert first.member.path == target
        assert first.read() == b"unicode name\n"
        # and back to an earlier one: the SIMH backend seeks
        reader.seek_record(*positions["file.txt"])
        again = next(iter(reader))
        assert again.member.path == "file.txt"
        assert reader.records_read < 40


def test_seek_record_on_a_pipe_reads_forward(tmp_path):
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "posix")
    positions = {
        e.member.path: (e.member.record, e.member.offset) for e in ArchiveReader(StreamTape(archive))
    }
    target = "dir/résumé.txt"
    with subprocess.Popen(["cat", archive], stdout=subprocess.PIPE) as proc:
        fifo = f"/proc/self/fd/{proc.stdout.fileno()}"
        tape = StreamTape(fifo)
        try:
            reader = ArchiveReader(tape)
            reader.seek_record(*positions[target])
            assert next(iter(reader)).member.path == target
        finally:
            tape.close()
            proc.stdout.close()
            proc.kill()


def test_entry_data_reads_with_read_readinto_and_skip(tmp_path):
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "gnu")
    seen = {}
    for entry in ArchiveReader(StreamTape(archive, record_size=4096)):
        if entry.member.path == "file.txt":
            buf = bytearray(7)
            n = entry.readinto(buf)
            seen["head"] = bytes(buf[:n])
            seen["rest"] = entry.read()
        elif entry.member.path == "big.bin":
            entry.skip()
            seen["big_skipped"] = entry.remaining
    assert seen["head"] + seen["rest"] == b"hello world\n" * 100
    assert seen["big_skipped"] == 0


def test_empty_tape_file_has_no_members_but_a_seek_past_the_end_is_an_error(tmp_path):
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    assert list(ArchiveReader(StreamTape(str(empty)))) == []
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src, long_names=False)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "gnu")
    reader = ArchiveReader(StreamTape(archive, record_size=10240))
    with pytest.raises(RescueError):  # the device says end of data, or the reader finds no header there
        reader.seek_record(10_000)
        list(reader)
    # Just past the last record: nothing where a header should be is a truncation, not an empty archive.
    records = os.path.getsize(archive) // 10240
    reader = ArchiveReader(StreamTape(archive, record_size=10240))
    reader.seek_record(records)
    with pytest.raises(TruncatedArchiveError):
        list(reader)
