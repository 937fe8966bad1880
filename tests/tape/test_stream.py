"""The stream backend: archive files and pipes hold one tape file; stdin/stdout through `-`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

import pytest

from rescue.tape import open_tape
from rescue.tape.base import EndOfDataError, TapeError, UnsupportedError
from tests.support import need_tool


def read_all(tape) -> bytes:
    parts = []
    while True:
        record = tape.read_record()
        if not record:
            return b"".join(parts)
        parts.append(record)


def test_a_gnu_tar_archive_file_reads_through_in_records(tmp_path):
    need_tool("tar")
    (tmp_path / "f.txt").write_text("content\n")
    archive = tmp_path / "a.tar"
    subprocess.run(["tar", "-C", str(tmp_path), "-cf", str(archive), "f.txt"], check=True)
    with open_tape(str(archive), record_size=10240) as tape:
        assert tape.kind == "stream"
        assert read_all(tape) == archive.read_bytes()
        assert tape.records_read == archive.stat().st_size // 10240
        with pytest.raises(EndOfDataError):
            tape.read_record()


def test_a_stream_holds_one_tape_file(tmp_path):
    with open_tape(str(tmp_path / "one.tar"), write=True) as tape:
        tape.write_record(b"a" * 512)
        tape.write_filemarks(1)
        with pytest.raises(UnsupportedError, match="one tape file"):
            tape.write_record(b"b" * 512)
        with pytest.raises(UnsupportedError):
            tape.write_filemarks(1)


def _pipe_as_stdin(monkeypatch, payload: bytes) -> None:
    r, w = os.pipe()

    def feed():
        with os.fdopen(w, "wb") as f:
            f.write(payload)

    threading.Thread(target=feed, daemon=True).start()
    monkeypatch.setattr(sys, "stdin", os.fdopen(r, "rb"))


def test_stdin_pipe_reads_full_records_and_spaces_forward_only(monkeypatch):
    payload = bytes(range(256)) * 400  # 102400 bytes, arriving in pipe-sized pieces
    _pipe_as_stdin(monkeypatch, payload)
    tape = open_tape("-", record_size=10240)
    assert not tape.can_seek
    assert tape.read_record() == payload[:10240]
    tape.space_records(3)
    assert tape.tell() == 4
    assert tape.read_record() == payload[40960:51200]
    with pytest.raises(UnsupportedError, match="pipe"):
        tape.seek(0)
    rest = read_all(tape)
    assert len(rest) == len(payload) - 51200
    assert tape.status().file_number == 1


def test_stdout_gets_the_records_written(monkeypatch):
    r, w = os.pipe()
    out = os.fdopen(w, "wb")
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out))
    tape = open_tape("-", write=True)
    tape.write_record(b"x" * 1024)
    tape.write_record(b"y" * 1024)
    tape.write_filemarks(1)
    tape.close()
    out.close()
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"x" * 1024 + b"y" * 1024


def test_writing_to_a_terminal_is_refused(monkeypatch):
    import pty

    master, slave = pty.openpty()
    try:
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(os.fdopen(slave, "wb", closefd=False)))
        with pytest.raises(TapeError, match="terminal"):
            open_tape("-", write=True)
    finally:
        os.close(master)
        os.close(slave)


def test_regular_file_positions_and_truncation(tmp_path):
    path = tmp_path / "s.tar"
    with open_tape(str(path), write=True) as tape:
        for i in range(6):
            tape.write_record(bytes([i]) * 100)
        tape.seek(2)
        tape.write_record(b"N" * 100)
    assert path.read_bytes() == b"\0" * 100 + b"\1" * 100 + b"N" * 100


def test_a_pipe_rewinds_after_only_its_first_record_was_read():
    """A reader may peek at the first record (is it a rescue label?) and rewind, even on stdin."""
    r, w = os.pipe()
    payload = b"a" * 1024 + b"b" * 1024
    os.write(w, payload)
    os.close(w)
    tape = open_tape(f"/dev/fd/{r}", record_size=1024)
    assert not tape.can_seek
    first = tape.read_record()
    tape.rewind()
    assert tape.tell() == 0
    assert tape.read_record() == first
    assert tape.read_record() == b"b" * 1024
    assert tape.read_record() == b""
    with pytest.raises(UnsupportedError):
        tape.rewind()  # two records went by: gone for good
    tape.close()
    os.close(r)
