"""The tape contract (rescue/tape/base.py) checked on every backend that can honour each part of it.

Each test is a plain function over a fresh, writable Tape positioned at the beginning of the tape; writing
starts there, so a real device given with `pytest --tape=/dev/nst0` is overwritten (and only that device).
A test first names the features it needs (`requires(tape, ...)`); backends without them skip it.

Without pytest (inside a rescue guest), run `python3 -m tests.tape.test_contract DEVICE`: the small runner at
the bottom runs every test against DEVICE and prints one line per test.
"""

from __future__ import annotations

import os
import sys

try:
    import pytest
except ImportError:  # the runner at the bottom works without it
    pytest = None

from rescue.tape import open_tape
from rescue.tape.base import (
    BeginningOfTapeError,
    EndOfDataError,
    FilemarkError,
    Tape,
    TruncatedRecordError,
)

RECORD = 1024


class Skip(Exception):
    pass


_STANDALONE = []  # non-empty while main() runs the tests without pytest


def features(tape: Tape) -> set:
    if tape.kind == "st":
        return {"filemarks", "variable", "backward", "seek"}
    if tape.kind == "simh":
        return {"filemarks", "variable", "backward", "seek", "cut"}
    if tape.kind == "dir":
        return {"filemarks", "backward", "seek", "cut"}
    if tape.kind == "stream" and tape.can_seek:
        return {"backward", "seek", "cut"}
    return set()


def requires(tape: Tape, *needed: str) -> None:
    missing = set(needed) - features(tape)
    if missing:
        message = f"{tape.kind} backend cannot {', '.join(sorted(missing))}"
        if pytest is None or _STANDALONE:
            raise Skip(message)
        pytest.skip(message)


def rec(i: int, size: int = RECORD) -> bytes:
    """A record whose bytes say which record it is."""
    word = (i & 0xFFFFFFFF).to_bytes(4, "big")
    return (word * (size // 4 + 1))[:size]


def write_files(tape: Tape, *records_per_file: int) -> None:
    """Tape files of fixed-size records, record numbers counting across the whole tape, each file ended by a
    filemark."""
    n = 0
    for count in records_per_file:
        for _ in range(count):
            tape.write_record(rec(n))
            n += 1
        tape.write_filemarks(1)


def cut_and_reopen(tape: Tape, lose: int) -> Tape:
    """Close the tape, cut `lose` bytes off the end of the file holding its last tape file (what an interrupted
    copy of an image leaves), and open it again for reading."""
    tape.close()
    if tape.kind == "dir":
        path = os.path.join(tape.path, sorted(os.listdir(tape.path))[-1])
    else:
        path = tape.name
    os.truncate(path, os.path.getsize(path) - lose)
    return open_tape(tape.name, record_size=RECORD)


# -- the contract ----------------------------------------------------------------------------------------------


def test_records_read_back_in_order_with_their_content(tape):
    for i in range(5):
        tape.write_record(rec(i))
    tape.write_filemarks(1)
    tape.rewind()
    assert [tape.read_record(RECORD) for _ in range(5)] == [rec(i) for i in range(5)]


def test_end_of_file_reads_empty_once_then_end_of_data(tape):
    tape.write_record(rec(0))
    tape.write_filemarks(1)
    tape.rewind()
    assert tape.read_record(RECORD) == rec(0)
    assert tape.read_record(RECORD) == b""
    try:
        tape.read_record(RECORD)
    except EndOfDataError:
        return
    raise AssertionError("reading past the last filemark did not raise EndOfDataError")


def test_filemark_reads_empty_once_then_the_next_file(tape):
    requires(tape, "filemarks")
    write_files(tape, 2, 1)
    tape.rewind()
    assert tape.read_record(RECORD) == rec(0)
    assert tape.read_record(RECORD) == rec(1)
    assert tape.read_record(RECORD) == b""
    assert tape.read_record(RECORD) == rec(2)
    assert tape.read_record(RECORD) == b""


def test_tell_counts_every_record_and_filemark(tape):
    requires(tape, "filemarks")
    assert tape.tell() == 0
    write_files(tape, 3, 2)
    assert tape.tell() == 3 + 1 + 2 + 1
    tape.rewind()
    tape.space_files(1)
    assert tape.tell() == 4


def test_seek_returns_to_the_told_position(tape):
    requires(tape, "seek")
    for i in range(10):
        tape.write_record(rec(i))
    tape.write_filemarks(1)
    tape.rewind()
    for _ in range(3):
        tape.read_record(RECORD)
    here = tape.tell()
    tape.read_record(RECORD)
    tape.rewind()
    tape.seek(here)
    assert tape.tell() == here
    assert tape.read_record(RECORD) == rec(3)
    tape.seek(7)
    assert tape.read_record(RECORD) == rec(7)
    tape.seek(2)  # backward
    assert tape.read_record(RECORD) == rec(2)


def test_seek_into_a_later_file_reads_its_records(tape):
    requires(tape, "filemarks", "seek")
    write_files(tape, 3, 4)
    tape.rewind()
    tape.seek(3 + 1 + 2)  # file 1, block 2
    assert tape.read_record(RECORD) == rec(5)
    status = tape.status()
    if tape.kind == "st":
        # st(4) loses file and block numbers after MTSEEK and reports -1 (real drives too); the position stays.
        assert (status.file_number, status.block_number) in ((1, 3), (-1, -1))
        assert tape.tell() == 3 + 1 + 3
    else:
        assert (status.file_number, status.block_number) == (1, 3)


def test_seek_past_end_of_data_raises(tape):
    requires(tape, "seek")
    tape.write_record(rec(0))
    tape.write_filemarks(1)
    tape.rewind()
    try:
        tape.seek(50)
    except EndOfDataError:
        return
    raise AssertionError("seek past the end of data did not raise EndOfDataError")


def test_space_files_forward_lands_at_the_start_of_the_next_file(tape):
    requires(tape, "filemarks")
    write_files(tape, 2, 3, 1)
    tape.rewind()
    tape.space_files(2)
    assert tape.read_record(RECORD) == rec(5)
    status = tape.status()
    assert (status.file_number, status.block_number) == (2, 1)


def test_space_files_backward_stops_before_the_filemark(tape):
    requires(tape, "filemarks", "backward")
    write_files(tape, 2, 3)
    tape.space_files(-1)  # back over the last filemark: at the end of file 1
    assert tape.read_record(RECORD) == b""
    tape.space_files(-2)  # back over file 1's and file 0's filemarks: at the end of file 0
    assert tape.status().file_number == 0
    assert tape.read_record(RECORD) == b""
    assert tape.read_record(RECORD) == rec(2)


def test_space_files_past_end_of_data_raises(tape):
    requires(tape, "filemarks")
    write_files(tape, 1, 1)
    tape.rewind()
    try:
        tape.space_files(5)
    except EndOfDataError:
        return
    raise AssertionError("spacing past the last file did not raise EndOfDataError")


def test_space_files_backward_at_the_beginning_raises(tape):
    requires(tape, "filemarks", "backward")
    write_files(tape, 2)
    tape.rewind()
    tape.read_record(RECORD)
    try:
        tape.space_files(-1)
    except BeginningOfTapeError:
        return
    raise AssertionError("bsf before the first filemark did not raise BeginningOfTapeError")


def test_space_records_forward_and_backward(tape):
    requires(tape, "backward")
    for i in range(6):
        tape.write_record(rec(i))
    tape.write_filemarks(1)
    tape.rewind()
    tape.space_records(4)
    assert tape.read_record(RECORD) == rec(4)
    tape.space_records(-3)
    assert tape.read_record(RECORD) == rec(2)


def test_space_records_forward_stops_after_a_filemark_with_residual(tape):
    requires(tape, "filemarks")
    write_files(tape, 2, 2)
    tape.rewind()
    try:
        tape.space_records(5)
    except FilemarkError as e:
        assert e.residual == 3
    else:
        raise AssertionError("spacing records over a filemark did not raise FilemarkError")
    assert tape.read_record(RECORD) == rec(2)  # after the filemark: the next file


def test_space_records_backward_stops_before_a_filemark(tape):
    requires(tape, "filemarks", "backward")
    write_files(tape, 2, 2)
    tape.rewind()
    tape.space_files(1)
    tape.read_record(RECORD)
    try:
        tape.space_records(-3)
    except FilemarkError as e:
        assert e.residual == 2
    else:
        raise AssertionError("spacing records backward over a filemark did not raise FilemarkError")
    assert tape.status().file_number == 0
    assert tape.read_record(RECORD) == b""  # on the BOT side of the filemark


def test_space_records_backward_at_the_beginning_raises(tape):
    requires(tape, "backward")
    tape.write_record(rec(0))
    tape.write_filemarks(1)
    tape.rewind()
    try:
        tape.space_records(-1)
    except BeginningOfTapeError:
        return
    raise AssertionError("bsr at BOT did not raise BeginningOfTapeError")


def test_writing_in_the_middle_cuts_off_the_rest(tape):
    requires(tape, "filemarks")
    write_files(tape, 2, 2, 2)
    tape.rewind()
    tape.space_files(1)
    tape.write_record(rec(100))
    tape.write_filemarks(1)
    tape.rewind()
    tape.space_files(1)
    assert tape.read_record(RECORD) == rec(100)
    assert tape.read_record(RECORD) == b""
    try:
        tape.read_record(RECORD)
    except EndOfDataError:
        return
    raise AssertionError("the old files after the write position are still readable")


def test_status_reports_file_block_and_beginning_of_tape(tape):
    requires(tape, "filemarks")
    write_files(tape, 3, 2)
    tape.rewind()
    status = tape.status()
    assert (status.file_number, status.block_number, status.bot) == (0, 0, True)
    tape.space_files(1)
    tape.read_record(RECORD)
    status = tape.status()
    assert (status.file_number, status.block_number, status.bot) == (1, 1, False)


def test_end_of_data_then_append_adds_a_file(tape):
    requires(tape, "filemarks")
    write_files(tape, 1, 1)
    tape.rewind()
    tape.seek_eod()
    assert tape.status().file_number == 2
    tape.write_record(rec(7))
    tape.write_filemarks(1)
    tape.rewind()
    tape.space_files(2)
    assert tape.read_record(RECORD) == rec(7)


def test_records_of_any_size_read_back_whole(tape):
    requires(tape, "variable")
    sizes = [1, 511, 512, 10240, 65537, 1024 * 1024 + 3]
    for i, size in enumerate(sizes):
        tape.write_record(rec(i, size))
    tape.write_filemarks(1)
    tape.rewind()
    for i, size in enumerate(sizes):
        assert tape.read_record(512) == rec(i, size)  # a buffer smaller than the record still gets all of it


def test_read_position_is_the_block_after_what_was_read(tape):
    for i in range(4):
        tape.write_record(rec(i))
    tape.write_filemarks(1)
    tape.rewind()
    tape.read_record(RECORD)
    tape.read_record(RECORD)
    assert tape.tell() == 2


def test_a_tape_cut_inside_a_record_gives_its_bytes_once_then_end_of_data(tape):
    requires(tape, "cut")
    for i in range(3):
        tape.write_record(rec(i))
    tape.write_filemarks(1)
    # The last record loses its second half (and, in a .tap image, its trailing length and the filemark).
    framing = 8 if tape.kind == "simh" else 0
    cut = cut_and_reopen(tape, framing + RECORD // 2)
    try:
        assert [cut.read_record(RECORD) for _ in range(2)] == [rec(0), rec(1)]
        try:
            partial = cut.read_record(RECORD)  # a backend that cannot see records: a short last record
        except TruncatedRecordError as e:  # one that can: once, with the bytes that are there
            partial = e.data
        assert partial == rec(2)[: RECORD // 2]
        ends = []
        for _ in range(4):  # then at most one filemark, and end of data however often one reads on
            try:
                ends.append(cut.read_record(RECORD))
            except EndOfDataError:
                ends.append(None)
        assert ends in ([None] * 4, [b""] + [None] * 3), ends
    finally:
        cut.close()


# -- parametrisation --------------------------------------------------------------------------------------------

BACKENDS = ["simh", "dir", "stream"]


def open_fresh(kind: str, where: str) -> Tape:
    """A writable, empty tape of this kind (or the real device `where`, rewound)."""
    if kind == "simh":
        return open_tape(os.path.join(where, "t.tap"), write=True)
    if kind == "dir":
        return open_tape(os.path.join(where, "vol") + "/", write=True)
    if kind == "stream":
        return open_tape(os.path.join(where, "s.tar"), write=True)
    tape = open_tape(where, write=True)
    tape.rewind()
    return tape


if pytest is not None:

    def pytest_generate_tests(metafunc):
        if "tape" in metafunc.fixturenames:
            params = list(BACKENDS)
            if metafunc.config.getoption("tape"):
                params.append("device")
            metafunc.parametrize("tape", params, indirect=True)

    @pytest.fixture
    def tape(request, tmp_path):
        if request.param == "device":
            t = open_fresh("device", request.config.getoption("tape"))
        else:
            t = open_fresh(request.param, str(tmp_path))
        try:
            yield t
        finally:
            t.close()


def main(argv=None) -> int:
    """Run the contract against one real device without pytest: `python3 -m tests.tape.test_contract DEV`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python3 -m tests.tape.test_contract DEVICE", file=sys.stderr)
        return 2
    _STANDALONE.append(True)
    failed = 0
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    for name, test in tests:
        tape = open_fresh("device", args[0])
        try:
            test(tape)
            print(f"PASS {name}")
        except Skip as e:
            print(f"SKIP {name}: {e}")
        except Exception as e:  # report every failure, then go on with the next test
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
        finally:
            tape.close()
    print(f"{len(tests) - failed} of {len(tests)} passed or skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
