"""The directory backend beyond the contract: file names, GNU tar interop, fixed-size records, positions."""

from __future__ import annotations

import subprocess

import pytest

from rescue.tape import open_tape
from rescue.tape.base import EndOfDataError, EndOfMediumError, FilemarkError, TapeError
from rescue.tape.directory import DirectoryTape
from tests.support import need_tool


def test_tape_files_are_named_label_archive_catalog_then_numbered(tmp_path):
    vol = tmp_path / "vol"
    with open_tape(f"{vol}/", write=True) as tape:
        for _ in range(5):
            tape.write_record(b"r" * 512)
            tape.write_filemarks(1)
    names = sorted(p.name for p in vol.iterdir())
    assert names == ["0-label.tar", "1-archive.tar", "2-catalog.tar", "3-file.tar", "4-file.tar"]


def test_gnu_tar_reads_an_archive_written_through_the_volume_and_back(tmp_path):
    need_tool("tar")
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.txt").write_text("hello\n")
    (src / "big.bin").write_bytes(bytes(range(256)) * 200)
    made = tmp_path / "made.tar"
    subprocess.run(["tar", "-C", str(src), "-b", "20", "-cf", str(made), "."], check=True)
    data = made.read_bytes()
    assert len(data) % 10240 == 0
    vol = tmp_path / "vol"
    with open_tape(f"{vol}/", write=True) as tape:
        tape.write_record(b"L" * 10240)
        tape.write_filemarks(1)
        for i in range(0, len(data), 10240):
            tape.write_record(data[i : i + 10240])
        tape.write_filemarks(1)
    listing = subprocess.run(
        ["tar", "-tf", str(vol / "1-archive.tar")], check=True, capture_output=True, text=True
    ).stdout.split()
    assert "./hello.txt" in listing and "./big.bin" in listing
    with open_tape(str(vol), record_size=10240) as tape:
        tape.space_files(1)
        got = b""
        while True:
            record = tape.read_record()
            if not record:
                break
            got += record
    assert got == data


def test_first_record_sets_the_record_size_and_only_a_last_record_may_be_short(tmp_path):
    with open_tape(f"{tmp_path}/v/", write=True) as tape:
        tape.write_record(b"a" * 4096)
        assert tape.status().block_size == 4096
        with pytest.raises(TapeError, match="records here are 4096 bytes"):
            tape.write_record(b"b" * 8192)
        tape.write_record(b"c" * 100)  # short: ends the file
        with pytest.raises(TapeError, match="only the last record"):
            tape.write_record(b"d" * 4096)
        tape.write_filemarks(1)
        tape.write_record(b"e" * 4096)  # a new file may have full records again
        tape.write_filemarks(1)
        assert tape.tell() == 2 + 1 + 1 + 1


def test_each_tape_file_keeps_the_record_size_it_was_written_with(tmp_path):
    """A rescue set: label in 10 KiB records, archive in larger ones; positions stay consistent."""
    with open_tape(f"{tmp_path}/v/", write=True) as tape:
        for _ in range(2):
            tape.write_record(b"l" * 10240)
        tape.write_filemarks(1)
        for i in range(3):
            tape.write_record(bytes([i]) * 65536)
        tape.write_filemarks(1)
        assert tape.tell() == 2 + 1 + 3 + 1
        tape.seek(4)
        assert tape.read_record() == b"\x01" * 65536
        tape.rewind()
        assert tape.read_record() == b"l" * 10240


def test_positions_count_a_short_last_record_and_the_filemark(tmp_path):
    vol = tmp_path / "v"
    vol.mkdir()
    (vol / "0-label.tar").write_bytes(b"x" * 2500)  # records of 1000: 3 records (last one short) + filemark
    (vol / "1-archive.tar").write_bytes(b"y" * 2000)
    with DirectoryTape(str(vol), record_size=1000) as tape:
        tape.seek(4)
        assert tape.read_record() == b"y" * 1000
        tape.seek(2)
        assert tape.read_record() == b"x" * 500
        assert tape.read_record() == b""
        assert tape.tell() == 4
        with pytest.raises(FilemarkError) as caught:
            tape.space_records(5)
        assert caught.value.residual == 3
        with pytest.raises(EndOfDataError):
            tape.read_record()


def test_a_gap_in_the_numbers_is_the_end_of_data(tmp_path):
    vol = tmp_path / "v"
    vol.mkdir()
    (vol / "0-label.tar").write_bytes(b"x" * 10)
    (vol / "2-catalog.tar").write_bytes(b"z" * 10)
    with DirectoryTape(str(vol)) as tape:
        tape.space_files(1)
        assert tape.status().eod
        with pytest.raises(EndOfDataError, match="after tape file 0"):
            tape.read_record()


def test_capacity_counts_all_files(tmp_path):
    with open_tape(f"{tmp_path}/v/", write=True, capacity=2500) as tape:
        tape.write_record(b"a" * 1000)
        tape.write_filemarks(1)
        tape.write_record(b"b" * 1000)
        with pytest.raises(EndOfMediumError, match="end of medium"):
            tape.write_record(b"c" * 1000)
        assert tape.status().eot


def test_keep_position_survives_close(tmp_path):
    vol = f"{tmp_path}/v/"
    with open_tape(vol, write=True) as tape:
        for _ in range(3):
            tape.write_record(b"r" * 100)
            tape.write_filemarks(1)
    with open_tape(vol, keep_position=True) as tape:
        tape.space_files(2)
    with open_tape(vol, keep_position=True) as tape:
        assert (tape.status().file_number, tape.tell()) == (2, 4)
    with open_tape(vol) as tape:
        assert tape.tell() == 0
