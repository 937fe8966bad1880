"""The fault-injecting wrapper: bad records, a full tape, a drive that goes offline."""

from __future__ import annotations

import pytest

from rescue.tape import open_tape
from rescue.tape.base import EndOfMediumError, MediumError, NoMediumError
from rescue.tape.faults import FaultyTape


def written(tmp_path, records=5):
    tape = open_tape(str(tmp_path / "f.tap"), write=True)
    for i in range(records):
        tape.write_record(bytes([i]) * 64)
    tape.write_filemarks(1)
    tape.rewind()
    return tape


def test_bad_record_raises_medium_error_and_reading_continues_after_it(tmp_path):
    tape = FaultyTape(written(tmp_path), bad_blocks={2})
    assert tape.read_record() == b"\0" * 64
    assert tape.read_record() == b"\1" * 64
    with pytest.raises(MediumError, match="block 2"):
        tape.read_record()
    assert tape.read_record() == b"\3" * 64
    tape.close()


def test_end_of_medium_after_a_number_of_bytes(tmp_path):
    tape = FaultyTape(open_tape(str(tmp_path / "e.tap"), write=True), eom_after=200)
    tape.write_record(b"a" * 100)
    tape.write_record(b"b" * 100)
    with pytest.raises(EndOfMediumError):
        tape.write_record(b"c")
    tape.write_filemarks(1)
    tape.rewind()
    assert tape.read_record() == b"a" * 100
    tape.close()


def test_drive_goes_offline_after_some_operations(tmp_path):
    tape = FaultyTape(written(tmp_path), offline_after=2)
    tape.read_record()
    tape.read_record()
    with pytest.raises(NoMediumError, match="offline"):
        tape.read_record()
    with pytest.raises(NoMediumError):
        tape.rewind()
    tape.close()
