"""rescue.tape.operations: mt-st's operations on any backend, COUNT as mt-st reads it, the offline check."""

from __future__ import annotations

import pytest

from rescue.errors import UsageError
from rescue.tape import mtio
from rescue.tape.base import NoMediumError, UnsupportedError
from rescue.tape.operations import apply, open_drive, parse_count, run_operation


def test_drive_only_operations_go_to_st_and_are_refused_on_images(tmp_path, mocker):
    drive = mocker.Mock(kind="st")
    apply(drive, "wset", 2)
    apply(drive, "fsfm", 3)
    assert drive.mtop.call_args_list == [mocker.call(mtio.MTWSM, 2), mocker.call(mtio.MTFSFM, 3)]
    with pytest.raises(UnsupportedError, match="needs a tape drive"):
        run_operation(str(tmp_path / "w.tap"), "wset", 1)


def test_counts_read_as_mt_st_reads_them():
    assert [parse_count(t) for t in ("10", "0x10", "010", "2k", "1M")] == [10, 16, 8, 2048, 1 << 20]
    with pytest.raises(ValueError, match="bad count"):
        parse_count("ten")


def test_results_in_mt_st_words_and_json(tmp_path):
    tap = str(tmp_path / "r.tap")
    run_operation(tap, "weof", 2)
    tell = run_operation(tap, "tell")
    assert tell.text() == "At block 2.\n" and tell.to_json() == {
        "device": tap,
        "operation": "tell",
        "block": 2,
    }
    status = run_operation(tap, "status")
    assert status.text().startswith("SIMH tape image:\nFile number=2,") and status.to_json()["status"]["eof"]
    with pytest.raises(UsageError, match="mt rewind: takes no count"):
        run_operation(tap, "rewind", 3)


def test_an_image_taken_offline_opens_only_for_mt(tmp_path):
    tap = str(tmp_path / "o.tap")
    run_operation(tap, "weof", 1)
    run_operation(tap, "offline")
    with pytest.raises(NoMediumError, match="drive offline"):
        open_drive(tap, online=True)
    assert run_operation(tap, "status").value.online is False
    run_operation(tap, "load")
    with open_drive(tap, online=True) as tape:
        assert tape.status().bot
