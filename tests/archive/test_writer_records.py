"""Records (rescue.archive.record_writer): whole records only, last one padded, positions, the writer thread."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess

import pytest

from rescue.archive.record_writer import RecordWriter
from rescue.archive.writer import write_archive
from rescue.tape.simh import SimhTape
from tests.support import need_tool
from tests.support.archive import MemoryTape, build_tree


@pytest.mark.parametrize("threaded", [False, True])
def test_every_record_is_whole_and_positions_follow_the_bytes(threaded):
    tape = MemoryTape()
    rw = RecordWriter(tape, 1024, threaded=threaded, ring=2)
    assert rw.position() == (0, 0)
    rw.write(b"a" * 1000)
    assert rw.position() == (0, 1000)
    rw.write(b"b" * 100)
    assert rw.position() == (1, 76)
    rw.zeros(948)
    assert rw.position() == (2, 0)
    rw.write(b"c")
    assert rw.close() == 3
    assert [len(r) for r in tape.records] == [1024, 1024, 1024]
    assert tape.data == b"a" * 1000 + b"b" * 100 + bytes(948) + b"c" + bytes(1023)


def test_read_from_fills_records_straight_from_the_file_and_hashes_it(tmp_path):
    data = os.urandom(5000)
    (tmp_path / "f").write_bytes(data)
    tape = MemoryTape()
    rw = RecordWriter(tape, 1536, threaded=True, ring=2)
    rw.write(b"h" * 512)
    h = hashlib.sha256()
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        rw.start_hash(h)
        assert rw.read_from(fd, 6000) == 5000  # end of file before n
        last = rw.stop_hash()
        assert rw.read_from(fd, 10, offset=4990) == 10
    finally:
        os.close(fd)
    assert last == 3  # 512 + 5000 bytes end in record 3 of 1536 bytes
    rw.close()
    assert rw.done == 4
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()
    assert tape.data[:5522] == b"h" * 512 + data + data[-10:]


def test_threaded_and_plain_writers_produce_the_same_archive(tmp_path):
    build_tree(tmp_path / "src", privileged=False)
    tapes = []
    for threaded in (False, True):
        tape = MemoryTape()
        write_archive(tape, str(tmp_path / "src"), record_size=4096, threaded=threaded)
        tapes.append(tape.data)
    assert tapes[0] == tapes[1]
    assert len(tapes[0]) % 4096 == 0 and tapes[0].endswith(bytes(1024))


def test_archive_on_a_simh_tape_reads_back_record_by_record_and_extracts_with_gnu_tar(tmp_path):
    need_tool("tar")
    build_tree(tmp_path / "src", privileged=False)
    image = str(tmp_path / "night.tap")
    with SimhTape(image, write=True) as tape:
        result = write_archive(tape, str(tmp_path / "src"), record_size=8192)
        tape.write_filemarks(1)
    assert result.exit_code == 0 and result.records > 1
    records = []
    with SimhTape(image) as tape:
        while True:
            record = tape.read_record(8192)
            if not record:
                break
            records.append(record)
    assert len(records) == result.records and {len(r) for r in records} == {8192}
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        ["tar", "-xpf", "-", "-b", "16", "-C", str(out)], input=b"".join(records), capture_output=True
    )
    assert proc.returncode == 0 and proc.stderr == b""
    assert (out / "etc/passwd").read_bytes() == (tmp_path / "src/etc/passwd").read_bytes()


@pytest.mark.parametrize("threaded", [False, True])
def test_small_files_around_record_boundaries_keep_data_digests_and_positions(tmp_path, threaded):
    """Small files take the one-read fast path when header and data fit in the current record and the
    general path when they straddle it: both give GNU tar the same files, and the catalog the right digest
    and first-header position."""
    need_tool("tar")
    rng = random.Random(7)
    src = tmp_path / "src"
    src.mkdir()
    contents = {}
    for i in range(150):
        data = os.urandom(rng.choice([0, 1, 511, 512, 513, 2047, 2048, 3000, 5000, 9000]))
        (src / f"f{i:03d}").write_bytes(data)
        os.utime(src / f"f{i:03d}", ns=(1_700_000_000_123_456_789 + i, 1_700_000_000_123_456_789 + i))
        contents[f"f{i:03d}"] = data
    record_size = 10240
    tape = MemoryTape()
    members = []
    result = write_archive(
        tape, str(src), record_size=record_size, threaded=threaded, on_member=members.append
    )
    assert result.exit_code == 0 and len(members) == 150
    stream = tape.data
    straddling = 0
    for m in members:
        assert m.sha256 == hashlib.sha256(contents[m.path]).hexdigest()
        at = m.record * record_size + m.offset
        assert stream[at + 156 : at + 157] == b"x"  # the pax header (nanosecond mtime) comes first
        assert stream[at + 1024 : at + 1024 + len(m.path)] == m.path.encode()
        size = len(contents[m.path])
        straddling += m.offset + 1536 + size > record_size
    assert straddling > 0 and straddling < len(members)  # both paths were taken
    archive = tmp_path / "a.tar"
    archive.write_bytes(stream)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(["tar", "-xpf", str(archive), "-b", "20", "-C", str(out)], capture_output=True)
    assert proc.returncode == 0 and proc.stderr == b""
    for name, data in contents.items():
        assert (out / name).read_bytes() == data
        assert os.stat(out / name).st_mtime_ns == os.stat(src / name).st_mtime_ns
