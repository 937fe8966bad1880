"""The SIMH .tap backend beyond the shared contract: the exact bytes of the format, errors, capacity, counters."""

from __future__ import annotations

import json
import os
import struct

import pytest

from rescue.tape import open_tape
from rescue.tape.base import (
    DriveBusyError,
    EndOfDataError,
    EndOfMediumError,
    MediumError,
    NoMediumError,
    TruncatedRecordError,
    WriteProtectedError,
)
from rescue.tape.simh import INDEX_STRIDE, SimhTape
from rescue.tape.simh_format import looks_like_simh, record_bytes


def le(n: int) -> bytes:
    return struct.pack("<I", n)


def test_image_bytes_follow_the_simh_layout_exactly(tmp_path):
    path = tmp_path / "t.tap"
    with open_tape(str(path), write=True) as tape:
        tape.write_record(b"abc")  # odd: one pad byte
        tape.write_record(b"wxyz")
        tape.write_filemarks(1)
        tape.write_record(bytearray(b"\x01\x02"))
        tape.write_filemarks(2)
    expected = (
        le(3)
        + b"abc\0"
        + le(3)
        + le(4)
        + b"wxyz"
        + le(4)
        + le(0)
        + le(2)
        + b"\x01\x02"
        + le(2)
        + le(0)
        + le(0)
    )
    assert path.read_bytes() == expected


def test_reads_an_image_with_erase_gaps_and_an_end_of_medium_marker(tmp_path):
    path = tmp_path / "hand.tap"
    path.write_bytes(
        le(0xFFFFFFFE) + record_bytes(b"one") + le(0) + record_bytes(b"two!") + le(0xFFFFFFFF) + b"junk"
    )
    with open_tape(str(path)) as tape:
        assert tape.read_record() == b"one"
        assert tape.read_record() == b""
        assert tape.read_record() == b"two!"
        with pytest.raises(EndOfDataError, match="hand.tap"):
            tape.read_record()


def test_record_with_the_error_flag_raises_medium_error_and_reading_goes_on_after_it(tmp_path):
    path = tmp_path / "bad.tap"
    path.write_bytes(record_bytes(b"good") + record_bytes(b"damaged", bad=True) + record_bytes(b"after"))
    assert le(7 | 0x80000000) in path.read_bytes()
    with open_tape(str(path)) as tape:
        assert tape.read_record() == b"good"
        with pytest.raises(MediumError, match="bad.tap: medium error reading block 1"):
            tape.read_record()
        assert tape.read_record() == b"after"
        assert tape.records_read == 2


def test_damaged_trailer_and_truncated_image_raise_medium_error(tmp_path):
    bad_trailer = tmp_path / "a.tap"
    bad_trailer.write_bytes(le(4) + b"data" + le(5))
    with open_tape(str(bad_trailer)) as tape, pytest.raises(MediumError, match="trailing length"):
        tape.read_record()
    truncated = tmp_path / "b.tap"
    truncated.write_bytes(le(100) + b"short")
    with open_tape(str(truncated)) as tape, pytest.raises(MediumError, match="truncated"):
        tape.read_record()


def test_a_damaged_record_is_reported_once_and_reading_goes_on_at_the_next_intact_one(tmp_path):
    a, b, c = (bytes([i]) * 600 for i in (1, 2, 3))
    garbage = le(0x12345678)  # a marker no drive writes
    bad_trailer = le(600) + b + le(601)
    huge_length = le(0x0FFFFFF0) + b  # a length no record here has, running past the end of the image
    for i, damage in enumerate((garbage, bad_trailer, huge_length)):
        path = tmp_path / f"d{i}.tap"
        path.write_bytes(record_bytes(a) + damage + record_bytes(c) + le(0) + record_bytes(a))
        with open_tape(str(path)) as tape:
            assert tape.read_record() == a
            with pytest.raises(MediumError, match="damaged tape image at byte 608"):
                tape.read_record()
            assert tape.read_record() == c  # one unreadable block, then the next intact record
            assert tape.read_record() == b""  # the filemark after it is still there
            assert tape.read_record() == a
            assert tape.tell() == 5


def test_an_image_cut_inside_a_record_gives_its_bytes_once_then_end_of_data(tmp_path):
    whole = record_bytes(b"x" * 1000) + record_bytes(b"y" * 1000)
    for cut, there in ((len(whole) - 500, b"y" * 504), (1010, b""), (len(whole) - 2, b"y" * 1000)):
        path = tmp_path / f"cut{cut}.tap"
        path.write_bytes(whole[:cut])
        with open_tape(str(path)) as tape:
            assert tape.read_record() == b"x" * 1000
            with pytest.raises(TruncatedRecordError, match="truncated image") as err:
                tape.read_record()
            assert err.value.data == there
            for _ in range(3):
                with pytest.raises(EndOfDataError):
                    tape.read_record()
            assert tape.status().eod


def test_a_cut_record_of_a_size_not_seen_before_is_a_cut_not_damage(tmp_path):
    # A label's small record, a filemark, then the first archive record, cut: its size is new on this image.
    path = tmp_path / "cut.tap"
    path.write_bytes((record_bytes(b"l" * 100) + le(0) + record_bytes(b"a" * 4000))[:-3000])
    with open_tape(str(path)) as tape:
        assert tape.read_record() == b"l" * 100
        assert tape.read_record() == b""
        with pytest.raises(TruncatedRecordError) as err:
            tape.read_record()
        assert err.value.data == b"a" * 1004
        with pytest.raises(EndOfDataError):
            tape.read_record()


def test_spacing_over_a_cut_record_ends_at_end_of_data(tmp_path):
    whole = record_bytes(b"x" * 1000) + record_bytes(b"y" * 1000)
    path = tmp_path / "cut.tap"
    path.write_bytes(whole[:-500])
    with open_tape(str(path)) as tape:
        with pytest.raises(EndOfDataError):
            tape.space_files(1)
        tape.rewind()
        with pytest.raises(EndOfDataError):
            tape.seek(5)
        tape.rewind()
        tape.seek_eod()
        assert tape.status().eod


def test_capacity_stops_a_record_write_but_still_takes_filemarks(tmp_path):
    path = tmp_path / "small.tap"
    with open_tape(str(path), write=True, capacity=3000) as tape:
        tape.write_record(b"x" * 1000)
        tape.write_record(b"y" * 1000)
        with pytest.raises(EndOfMediumError, match="small.tap: end of medium"):
            tape.write_record(b"z" * 1000)
        assert tape.status().eot
        tape.write_filemarks(1)
    assert path.stat().st_size == 2 * 1008 + 4
    with open_tape(str(path)) as tape:
        assert [len(tape.read_record()) for _ in range(3)] == [1000, 1000, 0]


def test_write_protected_image_refuses_writes_and_reports_it(tmp_path):
    path = tmp_path / "ro.tap"
    path.write_bytes(record_bytes(b"keep"))
    with open_tape(str(path), write=True, write_protected=True) as tape:
        assert tape.status().write_protected
        with pytest.raises(WriteProtectedError, match="ro.tap"):
            tape.write_record(b"new")
        with pytest.raises(WriteProtectedError):
            tape.write_filemarks(1)
        assert tape.read_record() == b"keep"
    assert path.read_bytes() == record_bytes(b"keep")


def test_a_second_writer_gets_drive_busy(tmp_path):
    path = str(tmp_path / "busy.tap")
    with open_tape(path, write=True), pytest.raises(DriveBusyError, match="busy.tap"):
        open_tape(path, write=True)


def test_counters_count_records_read_and_positioning(tmp_path):
    path = str(tmp_path / "c.tap")
    with open_tape(path, write=True) as tape:
        for i in range(10):
            tape.write_record(bytes([i]) * 100)
        tape.write_filemarks(1)
    with open_tape(path) as tape:
        tape.read_record()
        tape.seek(5)
        tape.space_records(2)
        tape.read_record()
        assert (tape.records_read, tape.seeks) == (2, 2)
        assert tape.bytes_read == 200


def test_seek_reads_headers_only_and_uses_the_index(tmp_path, mocker):
    path = str(tmp_path / "big.tap")
    n = INDEX_STRIDE * 8
    with open_tape(path, write=True) as tape:
        for i in range(n):
            tape.write_record(i.to_bytes(4, "big") * 64)
        tape.write_filemarks(1)
    with open_tape(path) as tape:
        tape.seek(n - 3)  # first time: a scan of headers
        assert tape.read_record() == (n - 3).to_bytes(4, "big") * 64
        pread = mocker.spy(os, "pread")
        tape.seek(INDEX_STRIDE * 3 + 2)  # backward: from the checkpoint at INDEX_STRIDE * 3
        assert pread.call_count <= 3
        assert all(call.args[1] == 4 for call in pread.call_args_list)  # headers only, no data
        assert tape.read_record() == (INDEX_STRIDE * 3 + 2).to_bytes(4, "big") * 64
        assert tape.records_read == 2


def test_write_in_the_middle_truncates_the_image_and_forgets_later_positions(tmp_path):
    path = tmp_path / "w.tap"
    with open_tape(str(path), write=True) as tape:
        for i in range(200):
            tape.write_record(b"%03d" % i)
        tape.write_filemarks(1)
        tape.seek(10)
        tape.write_record(b"new")
        tape.write_filemarks(1)
        assert tape.tell() == 12
        with pytest.raises(EndOfDataError):
            tape.seek(150)
        assert tape.tell() == 12
    assert path.stat().st_size == 10 * 12 + 12 + 4


def test_keep_position_survives_close_like_a_non_rewinding_drive(tmp_path):
    path = str(tmp_path / "p.tap")
    with open_tape(path, write=True) as tape:
        for _ in range(3):
            tape.write_record(b"r" * 10)
            tape.write_filemarks(1)
    with open_tape(path, keep_position=True) as tape:
        tape.space_files(2)
    with open_tape(path, keep_position=True) as tape:
        status = tape.status()
        assert (status.file_number, status.block_number, tape.tell()) == (2, 0, 4)
    with open_tape(path) as tape:  # without the option an open starts at BOT (like /dev/st0)
        assert tape.tell() == 0
    with open_tape(path, write=True) as tape:  # the image changes: the remembered position is void
        tape.write_record(b"other")
    with open_tape(path, keep_position=True) as tape:
        assert tape.tell() == 0


def test_a_remembered_position_is_reached_without_walking_the_image(tmp_path, mocker):
    path = str(tmp_path / "w.tap")
    with open_tape(path, write=True) as tape:
        for i in range(200):
            tape.write_record(b"a%03d" % i)
        tape.write_filemarks(1)
        for i in range(5):
            tape.write_record(b"b%03d" % i)
        tape.write_filemarks(1)
    with open_tape(path, keep_position=True) as tape:
        tape.space_files(1)
        assert tape.read_record() == b"b000"
        tape.read_record()
    walked = mocker.spy(SimhTape, "_next")
    with open_tape(path, keep_position=True) as tape:
        status = tape.status()
        assert (status.file_number, status.block_number, tape.tell()) == (1, 2, 203)
        assert walked.call_count == 0
        assert tape.read_record() == b"b002"
    saved = json.loads((tmp_path / ".w.tap.position").read_text())
    del saved["at"]  # as an older rescue wrote it: the block number only, reached by walking
    (tmp_path / ".w.tap.position").write_text(json.dumps(saved))
    with open_tape(path, keep_position=True) as tape:
        assert tape.tell() == 204 and tape.read_record() == b"b003"


def test_offline_unloads_until_load(tmp_path):
    path = str(tmp_path / "o.tap")
    with open_tape(path, write=True) as tape:
        tape.write_record(b"data")
        tape.offline()
        assert not tape.status().online
        with pytest.raises(NoMediumError, match="o.tap: no medium"):
            tape.read_record()
        tape.load()
        assert tape.status().bot
        assert tape.read_record() == b"data"


def test_erase_cuts_the_image_at_the_position(tmp_path):
    path = tmp_path / "e.tap"
    with open_tape(str(path), write=True) as tape:
        for _ in range(4):
            tape.write_record(b"abcd")
        tape.seek(1)
        tape.erase()
        tape.rewind()
        assert tape.read_record() == b"abcd"
        with pytest.raises(EndOfDataError):
            tape.read_record()
    assert path.stat().st_size == 12


def test_missing_image_names_the_file(tmp_path):
    with pytest.raises(NoMediumError, match="none.tap: no such tape image"):
        SimhTape(str(tmp_path / "none.tap"))


def test_sniffing_tells_images_from_tar_and_zero_files(tmp_path):
    tap = tmp_path / "image.bin"
    tap.write_bytes(le(0) + record_bytes(b"x" * 513) + le(0))
    tar = tmp_path / "a.tar"
    tar.write_bytes(b"etc/passwd".ljust(512, b"\0") + bytes(1024))
    zeros = tmp_path / "zeros"
    zeros.write_bytes(bytes(10240))
    assert looks_like_simh(str(tap))
    assert not looks_like_simh(str(tar))
    assert not looks_like_simh(str(zeros))
