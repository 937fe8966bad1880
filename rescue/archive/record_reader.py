"""A byte stream over the records of one tape file, with positions as (record, offset).

`RecordReader` reads records with `tape.read_record(bufsize)`; the record size is whatever the device returns (a
short record is fine, and a record need not be a multiple of 512).  It stops at a filemark or at end of data:
reads then come back short, and `at_end` is true.

Positions are relative to the start of the archive: record 0 is the first record of the archive's tape file
(`start_record` says which archive record the tape is at when the reader is created).  `position()` is where the
next byte comes from; a position at the very end of a record is reported as (next record, 0), the form the writer
uses for a header that starts a record.

`seek_record(n, offset)` moves to archive record n: `tape.seek()` when the tape can seek (the tape's block number
of record 0 is taken from `tape.tell()` at the start), else `space_records` forward, else reading through.  Going
back needs a seekable tape.

An unreadable record (MediumError from the tape) raises `BadRecordError`, naming the record; the reader is then
positioned at the start of the next record, so the caller can resync.  A tape that does not move past an
unreadable record (its position is the same after two errors in a row) ends the stream there, so no caller
loops on it.  A record cut short by the end of the data (TruncatedRecordError) is delivered with the bytes that
are there and ends the stream; `cut` then says so, for the caller's "archive truncated" message.
"""

from __future__ import annotations

from typing import Iterator, Optional, Tuple

from rescue.archive import tarformat as tf
from rescue.errors import RescueError
from rescue.tape.base import (
    EndOfDataError,
    FilemarkError,
    MediumError,
    TapeError,
    TruncatedRecordError,
    UnsupportedError,
)

_EMPTY = memoryview(b"")


class BadRecordError(RescueError):
    """A record could not be read (a medium error); `record` is its number relative to the archive."""

    def __init__(self, message: str, record: int):
        super().__init__(message)
        self.record = record


class RecordReader:
    def __init__(self, tape, *, start_record: int = 0, bufsize: int = tf.DEFAULT_RECORD_SIZE):
        self.tape = tape
        self.bufsize = bufsize
        self.records_read = 0
        self.at_end = False
        self.last_size: Optional[int] = None  # length of the last record read
        self.consumed = 0  # bytes delivered or skipped so far (unreadable records not counted)
        self.cut: Optional[str] = None  # the tape's words when its data ended inside a record
        self._error_at: Optional[int] = None  # tape position after the last unreadable record
        self._rec = _EMPTY  # the current record
        self._pos = 0  # offset of the next byte in it
        self._recno = (
            start_record - 1
        )  # number of the current record; the next read_record returns _recno + 1
        self._base: Optional[int] = None
        if getattr(tape, "can_seek", False):
            try:
                self._base = tape.tell() - start_record
            except (UnsupportedError, TapeError):
                self._base = None

    # -- positions

    def position(self) -> Tuple[int, int]:
        if self._pos >= len(self._rec):
            return self._recno + 1, 0
        return self._recno, self._pos

    def end_position(self) -> Tuple[int, int]:
        """Where the stream ended: inside the last record when the data was cut there, else `position()`."""
        if self.cut and len(self._rec) and self._pos >= len(self._rec):
            return self._recno, len(self._rec)
        return self.position()

    # -- reading

    def _next_record(self) -> bool:
        """Load the next record; False at a filemark or end of data."""
        if self.at_end:
            return False
        try:
            data = self.tape.read_record(self.bufsize)
        except EndOfDataError:
            self.at_end = True
            return False
        except TruncatedRecordError as e:
            self.at_end = True  # the record is the last one: the data ends inside it
            self.cut = str(e)
            data = e.data
        except MediumError as e:
            self._recno += 1
            self._rec, self._pos = _EMPTY, 0
            if self._stuck():
                self.at_end = True
                raise BadRecordError(
                    f"record {self._recno} unreadable and the tape does not move past it: {e}", self._recno
                ) from None
            raise BadRecordError(f"record {self._recno} unreadable: {e}", self._recno) from None
        if not data:
            self.at_end = True
            return False
        self._recno += 1
        self.records_read += 1
        self.last_size = len(data)
        self._rec = memoryview(data)
        self._pos = 0
        return True

    def _stuck(self) -> bool:
        """True when the tape is where the previous unreadable record left it (it does not move on)."""
        try:
            here = self.tape.tell()
        except (UnsupportedError, TapeError):
            return False
        stuck = here == self._error_at
        self._error_at = here
        return stuck

    def chunks(self, n: int) -> Iterator[memoryview]:
        """Up to n bytes as views into the records (no copy); fewer only at the end of the tape file."""
        while n > 0:
            avail = len(self._rec) - self._pos
            if avail <= 0:
                if not self._next_record():
                    return
                avail = len(self._rec)
            take = avail if avail < n else n
            start = self._pos
            self._pos = start + take
            self.consumed += take
            n -= take
            yield self._rec[start : start + take]

    def take(self, n: int) -> Optional[memoryview]:
        """The next n bytes as one view when the current record holds them all (else None, nothing taken)."""
        pos = self._pos
        if len(self._rec) - pos < n:
            return None
        self._pos = pos + n
        self.consumed += n
        return self._rec[pos : pos + n]

    def read(self, n: int) -> bytes:
        """n bytes (fewer only at the end)."""
        pos, rec = self._pos, self._rec
        if len(rec) - pos >= n:  # the common case: a header inside one record
            self._pos = pos + n
            self.consumed += n
            return rec[pos : pos + n].tobytes()
        return b"".join(c.tobytes() for c in self.chunks(n))

    def readinto(self, buf) -> int:
        """Fill buf as far as the stream allows; returns the count (short only at the end)."""
        view = memoryview(buf).cast("B")
        done = 0
        for chunk in self.chunks(len(view)):
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
        return done

    def skip(self, n: int) -> int:
        """Skip n bytes without copying; returns how many were skipped (short only at the end)."""
        done = 0
        while n > done:
            avail = len(self._rec) - self._pos
            if avail <= 0:
                if not self._next_record():
                    break
                avail = len(self._rec)
            take = min(avail, n - done)
            self._pos += take
            self.consumed += take
            done += take
        return done

    # -- positioning

    def seek_record(self, record: int, offset: int = 0) -> None:
        """Position the stream at byte `offset` of archive record `record`."""
        if record == self._recno and len(self._rec) > 0:
            self._pos = offset
            self.at_end = False
            return
        nxt = self._recno + 1
        if record != nxt:
            if self._base is not None:
                self.tape.seek(self._base + record)
            elif record > nxt:
                self._space_forward(record - nxt)
            else:
                raise RescueError(
                    f"{getattr(self.tape, 'name', 'tape')}: cannot go back to record {record} "
                    f"(at record {nxt}) on a device that cannot seek"
                )
        self._recno = record - 1
        self._rec, self._pos = _EMPTY, 0
        self.at_end = False
        if offset:
            if not self._next_record():
                return
            self._pos = min(offset, len(self._rec))

    def _space_forward(self, count: int) -> None:
        try:
            self.tape.space_records(count)
            return
        except UnsupportedError:
            pass
        except FilemarkError as e:
            raise RescueError(
                f"{getattr(self.tape, 'name', 'tape')}: archive ends before record "
                f"{self._recno + 1 + count} ({e})"
            ) from None
        for _ in range(count):
            try:
                data = self.tape.read_record(self.bufsize)
            except EndOfDataError:
                data = b""
            except MediumError:
                continue  # an unreadable record on the way still counts as one
            if not data:
                raise RescueError(
                    f"{getattr(self.tape, 'name', 'tape')}: archive ends before record "
                    f"{self._recno + 1 + count}"
                )
            self.records_read += 1
