"""A damaged archive does not stop a restore: an unreadable record or a garbled header loses only the members
in it (and they are named), a truncated archive ends with a clear error naming the last good member, and memory
stays flat however many members stream by."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tracemalloc

import pytest

from rescue.archive import tarformat as tf
from rescue.archive.parallel_extract import open_extractor
from rescue.archive.reader import ArchiveReader, TruncatedArchiveError
from rescue.errors import RescueError
from rescue.tape.base import MediumError
from rescue.tape.faults import FaultyTape
from rescue.tape.simh import SimhTape
from rescue.tape.simh_format import record_bytes
from rescue.tape.stream import StreamTape
from tests.support import need_tool

RECORD = 2048  # tar -b 4

pytestmark = pytest.mark.usefixtures("extract_mode")


def make_members(tmp_path, count=120, size=3000):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(count):
        (src / f"f{i:03d}").write_bytes(bytes([i % 251]) * (size + i))
    archive = str(tmp_path / "a.tar")
    subprocess.run(
        ["tar", "--format=posix", "-b", "4", "-cf", archive, "-C", str(src), "--sort=name", "."],
        check=True,
        capture_output=True,
    )
    return src, archive


def spans(archive):
    """path -> (first byte of its headers, end of its data and padding), from a clean read."""
    out = []
    for e in ArchiveReader(StreamTape(archive, record_size=RECORD)):
        out.append((e.member.path, e.member.record * RECORD + e.member.offset))
    ends = [start for _, start in out[1:]]
    size = os.path.getsize(archive)
    return {path: (start, end) for (path, start), end in zip(out, ends + [size])}


def write_tap(archive, tap, bad=()):
    data = open(archive, "rb").read()
    with open(tap, "wb") as f:
        for i in range(0, len(data), RECORD):
            f.write(record_bytes(data[i : i + RECORD], bad=(i // RECORD) in bad))
        f.write(b"\0\0\0\0")  # a filemark


def restore(tape, dest):
    dest.mkdir()
    reader = ArchiveReader(tape)
    with open_extractor(str(dest)) as x:
        for entry in reader:
            x.extract(entry)
    return reader, x


@pytest.mark.parametrize("bad_record", [0, 1, 9, 30, 31, 77, 150, 268])
def test_unreadable_record_loses_only_the_members_in_it(tmp_path, bad_record):
    need_tool("tar")
    src, archive = make_members(tmp_path)
    tap = str(tmp_path / "a.tap")
    write_tap(archive, tap, bad={bad_record})
    lo, hi = bad_record * RECORD, (bad_record + 1) * RECORD
    where = spans(archive)
    # A member is lost when its ustar header (after its one-block pax header) or its data is in the record.
    sizes = {p: os.path.getsize(src / p) for p in where if p}
    lost = {p for p in sizes if where[p][0] + 1024 < hi and where[p][0] + 1536 + sizes[p] > lo}
    with SimhTape(tap) as t:
        reader, x = restore(t, tmp_path / "dest")
    restored = {p for p in where if p and os.path.isfile(tmp_path / "dest" / p)}
    assert restored == {p for p in where if p} - lost
    for p in restored:
        assert (tmp_path / "dest" / p).read_bytes() == (src / p).read_bytes()
    # A member whose header was read and whose data was hit is named; for members whose headers were in the
    # record, the span between the named neighbours is reported.
    text = " ".join(f"{w} {m}" for w, m in reader.warnings)
    hit = [p for p in lost if where[p][0] + 1024 + 512 <= lo]
    for p in hit:
        assert p in text
    assert reader.lost_ranges
    assert not any(n.startswith(".rescue-tmp") for n in os.listdir(tmp_path / "dest"))


def test_fault_injected_bad_block_is_skipped_and_reported(tmp_path):
    need_tool("tar")
    src, archive = make_members(tmp_path, count=40)
    tap = str(tmp_path / "a.tap")
    write_tap(archive, tap)
    with SimhTape(tap) as t:
        reader, x = restore(FaultyTape(t, bad_blocks={12}), tmp_path / "dest")
    assert reader.warnings
    restored = [p for p in os.listdir(tmp_path / "dest")]
    assert 30 <= len(restored) < 40
    assert "f039" in restored and "f000" in restored


def test_garbled_header_resyncs_at_the_next_header(tmp_path):
    need_tool("tar")
    src, archive = make_members(tmp_path, count=20, size=100)
    where = spans(archive)
    start, _ = where["f007"]
    data = bytearray(open(archive, "rb").read())
    pax_only = bytearray(data)
    data[start + 1024 + 10 : start + 1024 + 60] = b"\xff" * 50  # f007's ustar header, after its pax header
    damaged = tmp_path / "d.tar"
    damaged.write_bytes(bytes(data))
    reader, x = restore(StreamTape(str(damaged)), tmp_path / "dest")
    restored = sorted(os.listdir(tmp_path / "dest"))
    assert restored == [f"f{i:03d}" for i in range(20) if i != 7]
    assert any("f006" in m and "f008" in m for _, m in reader.warnings), reader.warnings
    # A garbled pax header alone: the member comes back from its ustar header, with a warning naming it.
    pax_only[start + 10 : start + 60] = b"\xff" * 50
    damaged.write_bytes(bytes(pax_only))
    reader, x = restore(StreamTape(str(damaged)), tmp_path / "dest2")
    assert len(os.listdir(tmp_path / "dest2")) == 20
    assert (
        "f007",
        "restored from its plain header: its extended (pax) header may have been lost",
    ) in reader.warnings


def test_truncated_archive_names_the_last_good_member(tmp_path):
    need_tool("tar")
    src, archive = make_members(tmp_path, count=10, size=5000)
    where = spans(archive)
    start, end = where["f004"]
    data = open(archive, "rb").read()[: start + 1536 + 1000]  # into f004's data
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data)
    dest = tmp_path / "dest"
    dest.mkdir()
    got = []
    with pytest.raises(TruncatedArchiveError) as err, open_extractor(str(dest)) as x:
        for entry in ArchiveReader(StreamTape(str(cut))):
            got.append(entry.member.path)
            x.extract(entry)
    assert "last complete member: 'f003'" in str(err.value)
    assert "f004" in str(err.value)
    assert isinstance(err.value, RescueError)
    assert sorted(os.listdir(dest)) == ["f000", "f001", "f002", "f003"]  # no half file, no temporary


def test_archive_cut_at_a_header_boundary_is_truncated_too(tmp_path):
    need_tool("tar")
    src, archive = make_members(tmp_path, count=5, size=100)
    where = spans(archive)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(open(archive, "rb").read()[: where["f003"][0]])
    with pytest.raises(TruncatedArchiveError, match="last complete member: 'f002'"):
        for entry in ArchiveReader(StreamTape(str(cut))):
            entry.skip()


def test_lone_zero_block_at_the_end_is_accepted_with_a_warning(tmp_path):
    need_tool("tar")
    src, archive = make_members(tmp_path, count=3, size=10)
    data = open(archive, "rb").read()
    where = spans(archive)
    end = where["f002"][0] + 1024 + 512 + 512  # pax header and its data, member header, data block
    one = tmp_path / "one.tar"
    one.write_bytes(data[:end] + b"\0" * 512)
    reader = ArchiveReader(StreamTape(str(one)))
    names = [e.member.path for e in reader]
    assert names[-1] == "f002"
    assert any("lone zero block" in m.lower() for _, m in reader.warnings)


def _ustar(name: str, size: int) -> bytes:
    block = bytearray(512)
    block[0 : len(name)] = name.encode()
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"14000000000\0"
    block[156:157] = b"0"
    block[257:265] = tf.USTAR_MAGIC
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % tf.header_checksum(bytes(block))
    return bytes(block)


def test_reading_many_members_keeps_memory_flat(tmp_path):
    """30,000 members stream through with the same peak allocation as 3,000 (no member list)."""
    path = tmp_path / "many.tar"
    with open(path, "wb") as f:
        for i in range(30_000):
            f.write(_ustar(f"dir/file{i:07d}", 3))
            f.write(b"abc".ljust(512, b"\0"))
        f.write(b"\0" * 1024)

    def peak(limit):
        tracemalloc.start()
        for count, _entry in enumerate(ArchiveReader(StreamTape(str(path))), start=1):
            if count == limit:
                break
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(3_000), peak(30_000)
    assert large < small + 256 * 1024, (small, large)
    assert large < 8 * 1024 * 1024


def test_peak_rss_of_a_reading_process_stays_small(tmp_path):
    """A child process reads 200,000 members from a pipe; its peak RSS stays far under the 64 MiB target."""
    code = (
        "import resource, sys\n"
        "from rescue.archive.reader import ArchiveReader\n"
        "from rescue.tape.stream import StreamTape\n"
        "n = sum(1 for _ in ArchiveReader(StreamTape('-')))\n"
        "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    header = _ustar("x" * 90, 0)
    stream = tmp_path / "many.tar"
    stream.write_bytes(header * 200_000 + b"\0" * 1024)
    with open(stream, "rb") as feed:
        out = subprocess.run(
            ["sh", "-c", f"cat | {shlex.quote(sys.executable)} -c {shlex.quote(code)}"],
            stdin=feed,
            capture_output=True,
            text=True,
            cwd=os.getcwd(),
        )
    assert out.returncode == 0, out.stderr
    count, rss_kib = map(int, out.stdout.split())
    assert count == 200_000
    assert rss_kib < 64 * 1024


class _StuckTape(SimhTape):
    """A drive that reports a medium error at one block and never moves past it."""

    def __init__(self, path, stuck_at):
        super().__init__(path)
        self.stuck_at = stuck_at
        self.reads = 0

    def read_record(self, bufsize=256 * 1024):
        self.reads += 1
        if self.tell() == self.stuck_at:
            raise MediumError(f"{self.name}: medium error reading block {self.stuck_at}")
        return super().read_record(bufsize)


@pytest.mark.timeout(60)
def test_a_tape_that_does_not_move_past_a_bad_block_ends_the_read(tmp_path):
    need_tool("tar")
    src, archive = make_members(tmp_path)
    tap = str(tmp_path / "a.tap")
    write_tap(archive, tap)
    where = spans(archive)
    with _StuckTape(tap, stuck_at=40) as tape:
        reader, _ = restore(tape, tmp_path / "out")
        assert tape.reads < 50  # the records before it, the error twice, and no more
    restored = set(os.listdir(tmp_path / "out"))
    assert restored == {p for p, (_, end) in where.items() if p and end <= 40 * RECORD}
    assert len(reader.warnings) <= 3, reader.warnings


@pytest.mark.timeout(60)
def test_an_error_flag_on_every_record_past_a_point_is_one_damaged_stretch(tmp_path):
    need_tool("tar")
    src, archive = make_members(tmp_path)
    records = os.path.getsize(archive) // RECORD
    tap = str(tmp_path / "a.tap")
    write_tap(archive, tap, bad=set(range(30, records)))
    where = spans(archive)
    with SimhTape(tap) as tape:
        reader, _ = restore(tape, tmp_path / "out")
    restored = set(os.listdir(tmp_path / "out"))
    assert restored == {p for p, (_, end) in where.items() if p and end <= 30 * RECORD}
    # One warning for the member hit, one for the stretch skipped to the end: not one per record.
    assert len(reader.warnings) <= 3, reader.warnings
    assert len(reader.lost_ranges) == 1
