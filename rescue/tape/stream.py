"""A byte stream as a tape holding one tape file: `-` (stdin when reading, stdout when writing), a pipe, or a
plain archive file (a GNU tar archive file reads through this).

Records are fixed-size chunks of `record_size` bytes (the option; else the size of the first record written;
else 256 KiB), the last one may be shorter; `read_record()` returns the next chunk whatever `bufsize` asks.  The
end of the stream is the end of the one tape file: reading there returns b"" once (the filemark st would report)
and then raises EndOfDataError.  The first `write_filemarks(1)` ends the tape file; writing anything after it
raises UnsupportedError, since a stream cannot hold a second tape file.

Positions are record numbers (block = byte offset // record_size, the filemark after the last record is one
more block).  On a regular file every positioning operation works; on a pipe only forward ones (by reading and
discarding), and tell() counts the records that went by.

Options: `record_size`, `write_protected`.
Not emulated: filemarks inside the stream (one tape file), end of medium (except ENOSPC), density, compression.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from typing import Optional

from rescue.tape.base import (
    DEFAULT_RECORD_SIZE,
    BeginningOfTapeError,
    EndOfDataError,
    EndOfMediumError,
    FilemarkError,
    MediumError,
    NoMediumError,
    Tape,
    TapeError,
    TapeStatus,
    UnsupportedError,
    WriteProtectedError,
    records_in,
)


class StreamTape(Tape):
    kind = "stream"

    def __init__(
        self,
        path: str,
        *,
        write: bool = False,
        record_size: Optional[int] = None,
        write_protected: bool = False,
        capacity: Optional[int] = None,
        keep_position: bool = False,  # a stream starts where it is opened; nothing to remember
    ):
        self.name = "-" if path == "-" else path
        self.records_read = 0
        self.bytes_read = 0
        self.seeks = 0
        if capacity is not None:
            raise UnsupportedError(f"{path}: a stream has no capacity option")
        if record_size is not None and record_size <= 0:
            raise TapeError(f"{path}: record size must be positive, not {record_size}")
        self._explicit_size = record_size is not None
        self.record_size = record_size or DEFAULT_RECORD_SIZE
        self.write_protected = bool(write_protected)
        self.writable = write and not write_protected
        self._owned = True
        if path == "-":
            stream = sys.stdout if self.writable else sys.stdin
            if self.writable:
                stream.flush()
            self._fd = stream.fileno()
            self._owned = False
            if self.writable and os.isatty(self._fd):
                raise TapeError(
                    "-: refusing to write an archive to a terminal; redirect stdout or give -f FILE"
                )
        else:
            if self.writable:
                flags = os.O_RDWR | os.O_CREAT
            else:
                flags = os.O_RDONLY
            try:
                self._fd = os.open(path, flags | os.O_CLOEXEC, 0o666)
            except FileNotFoundError:
                raise NoMediumError(f"{path}: no such file; give -f DEVICE or set $TAPE") from None
            except PermissionError:
                raise WriteProtectedError(f"{path}: permission denied") from None
            except OSError as e:
                if e.errno == errno.ENXIO:  # a FIFO opened for writing without a reader
                    raise NoMediumError(f"{path}: nobody reads the pipe") from None
                raise TapeError(f"{path}: {e.strerror}") from None
        mode = os.fstat(self._fd).st_mode
        self.can_seek = stat.S_ISREG(mode)
        self._off = 0  # byte offset of the position
        self._marks = 0  # 1 once the end-of-stream filemark went by (read) or was written
        self._size: Optional[int] = os.fstat(self._fd).st_size if self.can_seek else None
        self._short = False
        self._eof_seen = False  # a pipe returned EOF
        # A pipe keeps its first record, so a reader that peeked at it (is this a rescue label?) can rewind.
        self._first: Optional[bytes] = None
        self._replay: Optional[bytes] = None

    # -- helpers --------------------------------------------------------------------------------------------

    def _need_seek(self, what: str) -> None:
        if not self.can_seek:
            raise UnsupportedError(
                f"{self.name}: cannot {what} on a pipe; read the stream from a file instead"
            )

    def _length(self) -> Optional[int]:
        if self.can_seek:
            return os.fstat(self._fd).st_size
        return self._off if self._eof_seen else None

    def _read_exact(self, n: int) -> bytes:
        if self.can_seek:
            return os.pread(self._fd, n, self._off)
        first = os.read(self._fd, n)
        if len(first) == n or not first:
            if not first:
                self._eof_seen = True
            return first
        parts = [first]
        got = len(first)
        while got < n:
            more = os.read(self._fd, n - got)
            if not more:
                self._eof_seen = True
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def _eod(self, what: str) -> EndOfDataError:
        return EndOfDataError(f"{self.name}: end of data (end of the stream) while {what}")

    # -- reading --------------------------------------------------------------------------------------------

    def read_record(self, bufsize: int = 256 * 1024) -> bytes:
        if self._marks:
            raise self._eod("reading")
        if self.writable and self.can_seek is False:
            raise TapeError(f"{self.name}: opened for writing; cannot read")
        if self._replay is not None:
            data, self._replay = self._replay, None
        elif self._eof_seen and not self.can_seek:
            data = b""
        else:
            try:
                data = self._read_exact(self.record_size)
            except OSError as e:
                raise MediumError(f"{self.name}: read error: {e.strerror}") from None
        if not data:
            self._marks = 1
            return b""
        if self._off == 0 and not self.can_seek:
            self._first = data
        self._off += len(data)
        self.records_read += 1
        self.bytes_read += len(data)
        return data

    # -- writing --------------------------------------------------------------------------------------------

    def write_record(self, data) -> None:
        if not self.writable:
            if self.write_protected:
                raise WriteProtectedError(f"{self.name}: write protected")
            raise TapeError(f"{self.name}: opened for reading; cannot write")
        if self._marks:
            raise UnsupportedError(f"{self.name}: a stream holds one tape file; a filemark already ended it")
        view = memoryview(data)
        n = view.nbytes
        if n == 0:
            raise TapeError(f"{self.name}: a tape record cannot be empty")
        if not self._explicit_size and self._off == 0:
            self.record_size = n
            self._explicit_size = True
        if n > self.record_size or self._short:
            raise TapeError(
                f"{self.name}: records here are {self.record_size} bytes and only the last record may be shorter; "
                f"got {n} bytes"
            )
        try:
            if self.can_seek:
                if self._size is not None and self._size > self._off:
                    os.ftruncate(self._fd, self._off)  # writing cuts the tape at the write position
                done = 0
                while done < n:
                    done += os.pwrite(self._fd, view[done:], self._off + done)
            else:
                done = 0
                while done < n:
                    done += os.write(self._fd, view[done:])
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise EndOfMediumError(f"{self.name}: end of medium: {e.strerror}") from None
            if e.errno == errno.EPIPE:
                raise MediumError(f"{self.name}: the reader of the stream went away") from None
            raise MediumError(f"{self.name}: write error: {e.strerror}") from None
        self._off += n
        self._size = self._off if self.can_seek else None
        self._short = n < self.record_size

    def write_filemarks(self, count: int = 1) -> None:
        if not self.writable:
            raise TapeError(f"{self.name}: opened for reading; cannot write")
        if count == 0:
            return
        if count != 1 or self._marks:
            raise UnsupportedError(
                f"{self.name}: a stream holds one tape file; it cannot hold more filemarks"
            )
        if self.can_seek and self._size is not None and self._size > self._off:
            os.ftruncate(self._fd, self._off)
            self._size = self._off
        self._marks = 1

    # -- positioning ----------------------------------------------------------------------------------------

    def _records_total(self) -> Optional[int]:
        length = self._length()
        return None if length is None else records_in(length, self.record_size)

    def space_records(self, count: int) -> None:
        self.seeks += 1
        if count >= 0:
            for done in range(count):
                if self._marks:
                    raise self._eod("spacing forward records")
                if self.can_seek:
                    length = self._length() or 0
                    if self._off >= length:
                        self._marks = 1
                        raise FilemarkError(f"{self.name}: end of the stream reached", count - done)
                    self._off = min(length, self._off + self.record_size)
                elif not self.read_record():
                    raise FilemarkError(f"{self.name}: end of the stream reached", count - done)
                else:
                    self.records_read -= 1  # spaced over, not returned
            return
        self._need_seek("space backward")
        for done in range(-count):
            if self._marks:
                self._marks = 0
                raise FilemarkError(
                    f"{self.name}: filemark reached while spacing records backward", -count - done
                )
            if self._off == 0:
                raise BeginningOfTapeError(f"{self.name}: beginning of tape reached while spacing backward")
            self._off = (records_in(self._off, self.record_size) - 1) * self.record_size

    def space_files(self, count: int) -> None:
        self.seeks += 1
        if count > 0:
            if self._marks or count > 1:
                if not self._marks:
                    self.space_files(1)
                raise self._eod(f"spacing forward {count} files")
            if self.can_seek:
                self._off = self._length() or 0
                self._marks = 1
            else:
                while self.read_record():
                    self.records_read -= 1
            return
        if count < 0:
            self._need_seek("space backward")
            if self._marks and count == -1:
                self._marks = 0
                return
            self._off, self._marks = 0, 0
            raise BeginningOfTapeError(f"{self.name}: beginning of tape reached while spacing backward")

    def tell(self) -> int:
        return records_in(self._off, self.record_size) + self._marks

    def seek(self, block: int) -> None:
        self.seeks += 1
        if block < 0:
            raise TapeError(f"{self.name}: cannot seek to block {block}")
        if block < self.tell():
            self._need_seek("seek backward")
        if not self.can_seek:
            self.space_records(block - self.tell())
            return
        total = self._records_total() or 0
        if block > total + 1:
            self._off, self._marks = self._length() or 0, 1
            raise self._eod(f"seeking to block {block}")
        if block == total + 1:
            self._off, self._marks = self._length() or 0, 1
        else:
            self._off, self._marks = min(self._length() or 0, block * self.record_size), 0

    def rewind(self) -> None:
        if self._off == 0 and not self._marks:
            return
        if not self.can_seek and self._first is not None and self._off == len(self._first):
            self._replay, self._off, self._marks = self._first, 0, 0
            return
        self._need_seek("rewind")
        self._off, self._marks = 0, 0

    def seek_eod(self) -> None:
        if not self._marks:
            self.space_files(1)

    # -- drive ----------------------------------------------------------------------------------------------

    def status(self) -> TapeStatus:
        length = self._length()
        return TapeStatus(
            device=self.name,
            kind=self.kind,
            file_number=self._marks,
            block_number=0 if self._marks else records_in(self._off, self.record_size),
            block_size=self.record_size,
            drive_type="pipe" if not self.can_seek else "archive file",
            bot=self._off == 0 and not self._marks,
            eof=bool(self._marks),
            eod=bool(self._marks) or (self.writable and length is not None and self._off >= length),
            write_protected=self.write_protected,
            position=self.tell(),
        )

    def set_block_size(self, size: int) -> None:
        if size <= 0:
            raise UnsupportedError(f"{self.name}: a stream is cut into fixed-size records; give setblk N > 0")
        self.record_size = size
        self._explicit_size = True

    def close(self) -> None:
        if self._fd >= 0 and self._owned:
            os.close(self._fd)
        self._fd = -1
