"""A directory as a tape volume (for USB disks): one file per tape file.

Tape file N is the file `N-<name>.tar` in the directory: `0-label.tar`, `1-archive.tar`, `2-catalog.tar`, then
`N-file.tar` (reading accepts any `N-*` name).  Files are numbered from 0 without gaps; the first missing number
is end of data.  Every file counts as ended by a filemark (st writes one when a written tape is closed), so
`write_filemarks()` just closes the current file and an empty file is a tape file with no records.

Records are fixed-size chunks of `record_size` bytes (the option; else 256 KiB, the set's default), the last chunk
of a file may be shorter.  Without the option, a tape file written since the volume was opened takes the size of
its first record (a rescue set writes its label and catalog in 10 KiB records, its archive in 256 KiB ones);
files found on the volume count in `record_size`.  `read_record()` returns the next chunk whatever `bufsize`
asks (as st returns a whole record).  Logical blocks follow the st
contract: each record and each filemark is one block, so tape file N starts at block sum(records(j) + 1, j < N),
and tell/seek map to (file, byte offset) by that rule.  A write must be `record_size` bytes, except the last
record of a file; writing truncates the current file at the write position and deletes all later files.

Options: `record_size`, `capacity` (total bytes of all files), `write_protected`, `keep_position` (as for
simh: the position survives close in a hidden file `.position` in the directory, for `rescue mt`).
Not emulated: variable-size records (a short record must end its file), density, compression, setmarks,
partitions, bad blocks (use rescue.tape.faults).
"""

from __future__ import annotations

import errno
import json
import os
import re
from typing import List, Optional

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

FILE_NAMES = {0: "label", 1: "archive", 2: "catalog"}
_NUMBERED = re.compile(r"^(\d+)-.+")


def tape_file_name(number: int) -> str:
    return f"{number}-{FILE_NAMES.get(number, 'file')}.tar"


class DirectoryTape(Tape):
    kind = "dir"

    def __init__(
        self,
        path: str,
        *,
        write: bool = False,
        record_size: Optional[int] = None,
        capacity: Optional[int] = None,
        write_protected: bool = False,
        keep_position: bool = False,
    ):
        self.name = path
        self.path = path.rstrip("/") or "/"
        self.records_read = 0
        self.bytes_read = 0
        self.seeks = 0
        self.capacity = capacity
        if record_size is not None and record_size <= 0:
            raise TapeError(f"{path}: record size must be positive, not {record_size}")
        self._explicit_size = record_size is not None
        self.record_size = record_size or DEFAULT_RECORD_SIZE
        if write and not write_protected:
            try:
                os.makedirs(self.path, exist_ok=True)
            except OSError as e:
                raise TapeError(f"{path}: cannot create the directory: {e.strerror}") from None
        elif not os.path.isdir(self.path):
            raise NoMediumError(f"{path}: no such directory; give -f DEVICE or set $TAPE")
        self.write_protected = write_protected or not os.access(self.path, os.W_OK)
        self.writable = write and not self.write_protected
        self._names: List[str] = []
        self._sizes: List[int] = []
        self._rsizes: List[Optional[int]] = []  # record size of each file written since opening, else None
        self._scan()
        self._fd = -1
        self._fd_file = -1
        self._online = True
        self._eom_hit = False
        self._short = False  # the last record written in the current file was short
        self._file = 0
        self._off = 0
        self._position_file = os.path.join(self.path, ".position") if keep_position else None
        if self._position_file:
            self._restore_position()

    # -- the remembered position (keep_position) ------------------------------------------------------------

    def _stamp(self) -> list:
        out = []
        for name in self._names:
            st = os.stat(os.path.join(self.path, name))
            out.append([name, st.st_size, st.st_mtime_ns])
        return out

    def _restore_position(self) -> None:
        try:
            with open(self._position_file) as f:
                saved = json.load(f)
            size = int(saved.get("record_size", 0))
            if saved.get("files") != self._stamp() or size <= 0:
                return
            if self._explicit_size and size != self.record_size:
                return  # positions counted in other records
            self.record_size = size
            self._online = bool(saved.get("online", True))
            self._file, self._off = int(saved["file"]), int(saved["offset"])
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            self._file, self._off = 0, 0

    def _save_position(self) -> None:
        if self._position_file is None:
            return
        try:
            if self._online and self._file == 0 and self._off == 0:
                if os.path.exists(self._position_file):
                    os.unlink(self._position_file)
                return
            state = {
                "file": self._file,
                "offset": self._off,
                "online": self._online,
                "record_size": self.record_size,
                "files": self._stamp(),
            }
            tmp = self._position_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump(state, f)
            os.replace(tmp, self._position_file)
        except OSError:
            pass  # a read-only volume: the position is not remembered

    def _scan(self) -> None:
        found = {}
        for entry in os.listdir(self.path):
            m = _NUMBERED.match(entry)
            if m and os.path.isfile(os.path.join(self.path, entry)):
                n = int(m.group(1))
                if n in found:
                    raise TapeError(
                        f"{self.name}: two files for tape file {n} ({found[n]}, {entry}); remove one of them"
                    )
                found[n] = entry
        self._names, self._sizes = [], []
        while len(self._names) in found:
            entry = found[len(self._names)]
            self._names.append(entry)
            self._sizes.append(os.path.getsize(os.path.join(self.path, entry)))
        self._rsizes = [None] * len(self._names)

    def _rs(self, number: int) -> int:
        """Record size of tape file `number`."""
        if number < len(self._rsizes) and self._rsizes[number]:
            return self._rsizes[number]
        return self.record_size

    # -- helpers --------------------------------------------------------------------------------------------

    def _check_online(self) -> None:
        if not self._online:
            raise NoMediumError(f"{self.name}: no medium (unloaded); run `rescue mt load`")

    def _close_fd(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._fd_file = -1, -1

    def _open_file(self, number: int) -> int:
        if self._fd_file != number:
            self._close_fd()
            flags = (os.O_RDWR if self.writable else os.O_RDONLY) | os.O_CLOEXEC
            path = os.path.join(self.path, self._names[number])
            try:
                self._fd = os.open(path, flags)
            except OSError as e:
                raise TapeError(f"{path}: {e.strerror}") from None
            self._fd_file = number
        return self._fd

    def _start_block(self, number: int) -> int:
        return sum(records_in(s, self._rs(j)) + 1 for j, s in enumerate(self._sizes[:number]))

    def _eod(self, what: str) -> EndOfDataError:
        return EndOfDataError(f"{self.name}: end of data after tape file {len(self._names) - 1} while {what}")

    # -- reading --------------------------------------------------------------------------------------------

    def read_record(self, bufsize: int = 256 * 1024) -> bytes:
        self._check_online()
        if self._file >= len(self._names):
            raise self._eod("reading")
        size = self._sizes[self._file]
        if self._off >= size:
            self._file += 1
            self._off = 0
            return b""
        n = min(self._rs(self._file), size - self._off)
        fd = self._open_file(self._file)
        try:
            data = os.pread(fd, n, self._off)
        except OSError as e:
            raise MediumError(f"{self.name}: read error in {self._names[self._file]}: {e.strerror}") from None
        if len(data) < n:
            raise MediumError(
                f"{self.name}: {self._names[self._file]} shrank while reading; the volume changed"
            )
        self._off += n
        self.records_read += 1
        self.bytes_read += n
        return data

    # -- writing --------------------------------------------------------------------------------------------

    def _prepare_write(self) -> None:
        """Make the current file the last one, cut at the write position, creating it when at EOD."""
        self._check_online()
        if not self.writable:
            if self.write_protected:
                raise WriteProtectedError(f"{self.name}: volume is write protected (no write permission)")
            raise TapeError(f"{self.name}: opened for reading; cannot write")
        while len(self._names) > self._file + 1:
            if self._fd_file == len(self._names) - 1:
                self._close_fd()
            os.unlink(os.path.join(self.path, self._names.pop()))
            self._sizes.pop()
            self._rsizes.pop()
        if self._file == len(self._names):
            name = tape_file_name(self._file)
            fd = os.open(
                os.path.join(self.path, name), os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666
            )
            os.close(fd)
            self._names.append(name)
            self._sizes.append(0)
            self._rsizes.append(None)
            self._short = False
        elif self._sizes[self._file] > self._off:
            os.truncate(os.path.join(self.path, self._names[self._file]), self._off)
            self._sizes[self._file] = self._off
            self._short = self._off % self._rs(self._file) != 0

    def write_record(self, data) -> None:
        view = memoryview(data)
        n = view.nbytes
        if n == 0:
            raise TapeError(f"{self.name}: a tape record cannot be empty")
        starts_file = not self._explicit_size and self._off == 0  # a tape file takes its first record's size
        size = n if starts_file else self._rs(self._file)
        if n > size or (self._short and not starts_file):
            raise TapeError(
                f"{self.name}: records here are {size} bytes and only the last record of a tape file may be "
                f"shorter; got {n} bytes"
            )
        self._prepare_write()
        if starts_file:
            self._rsizes[self._file] = n
        if self.capacity is not None and sum(self._sizes) + n > self.capacity:
            self._eom_hit = True
            raise EndOfMediumError(
                f"{self.name}: end of medium: the volume is full ({self.capacity} bytes); continue on another one"
            )
        fd = self._open_file(self._file)
        done = 0
        try:
            while done < n:
                done += os.pwrite(fd, view[done:], self._off + done)
        except OSError as e:
            os.ftruncate(fd, self._off)
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                self._eom_hit = True
                raise EndOfMediumError(
                    f"{self.name}: end of medium: {e.strerror}; free space or use another disk"
                ) from None
            raise MediumError(
                f"{self.name}: write error in {self._names[self._file]}: {e.strerror}"
            ) from None
        self._off += n
        self._sizes[self._file] = self._off
        self._short = n < self._rs(self._file)

    def write_filemarks(self, count: int = 1) -> None:
        if count < 0:
            raise TapeError(f"{self.name}: cannot write {count} filemarks")
        for _ in range(count):
            self._prepare_write()
            self._file += 1
            self._off = 0
            self._short = False

    # -- positioning ----------------------------------------------------------------------------------------

    def space_records(self, count: int) -> None:
        self._check_online()
        self.seeks += 1
        if count >= 0:
            if count and self._file >= len(self._names):
                raise self._eod("spacing forward records")
            if count == 0:
                return
            r = self._rs(self._file)
            size = self._sizes[self._file]
            left = records_in(size, r) - records_in(self._off, r)
            if count <= left:
                self._off = min(size, (records_in(self._off, r) + count) * r)
                return
            self._file += 1
            self._off = 0
            raise FilemarkError(f"{self.name}: filemark reached while spacing records", count - left)
        back = -count
        r = self._rs(min(self._file, len(self._names) - 1)) if self._names else self.record_size
        have = records_in(self._off, r)
        if back <= have:
            self._off = (have - back) * r
            return
        if self._file == 0:
            self._off = 0
            raise BeginningOfTapeError(f"{self.name}: beginning of tape reached while spacing backward")
        self._file -= 1
        self._off = self._sizes[self._file]
        raise FilemarkError(f"{self.name}: filemark reached while spacing records backward", back - have)

    def space_files(self, count: int) -> None:
        self._check_online()
        self.seeks += 1
        if count >= 0:
            for _ in range(count):
                if self._file >= len(self._names):
                    self._off = 0
                    raise self._eod(f"spacing forward {count} files")
                self._file += 1
                self._off = 0
            return
        for _ in range(-count):
            if self._file == 0:
                self._off = 0
                raise BeginningOfTapeError(f"{self.name}: beginning of tape reached while spacing backward")
            self._file -= 1
            self._off = self._sizes[self._file]

    def tell(self) -> int:
        self._check_online()
        return self._start_block(self._file) + records_in(self._off, self._rs(self._file))

    def seek(self, block: int) -> None:
        self._check_online()
        self.seeks += 1
        if block < 0:
            raise TapeError(f"{self.name}: cannot seek to block {block}")
        start = 0
        for number, size in enumerate(self._sizes):
            r = self._rs(number)
            blocks = records_in(size, r) + 1
            if block < start + blocks:
                self._file = number
                self._off = min(size, (block - start) * r)
                return
            start += blocks
        self._file, self._off = len(self._names), 0
        if block > start:
            raise self._eod(f"seeking to block {block}")

    def rewind(self) -> None:
        self._check_online()
        self._file, self._off = 0, 0

    def seek_eod(self) -> None:
        self._check_online()
        self._file, self._off = len(self._names), 0

    # -- drive ----------------------------------------------------------------------------------------------

    def status(self) -> TapeStatus:
        if not self._online:
            return TapeStatus(
                device=self.name, kind=self.kind, online=False, write_protected=self.write_protected
            )
        size = self._rs(self._file)
        return TapeStatus(
            device=self.name,
            kind=self.kind,
            file_number=self._file,
            block_number=records_in(self._off, size),
            block_size=size,
            drive_type="directory volume",
            bot=self._file == 0 and self._off == 0,
            eof=self._file > 0 and self._off == 0,
            eot=self._eom_hit,
            eod=self._file >= len(self._names),
            write_protected=self.write_protected,
            position=self.tell(),
        )

    def set_block_size(self, size: int) -> None:
        self._check_online()
        if size <= 0:
            raise UnsupportedError(
                f"{self.name}: a directory volume holds fixed-size records; give setblk N > 0"
            )
        self.record_size = size
        self._explicit_size = True

    def erase(self) -> None:
        """Everything from the current position on is erased."""
        self._prepare_write()
        if self._file == len(self._names) - 1 and self._sizes[self._file] == 0 and self._off == 0:
            # the empty file created for the erase position is not a tape file
            self._close_fd()
            os.unlink(os.path.join(self.path, self._names.pop()))
            self._sizes.pop()
            self._rsizes.pop()
        self._eom_hit = False

    def offline(self) -> None:
        self.rewind()
        self._online = False

    def load(self) -> None:
        self._online = True
        self._scan()
        self._file, self._off = 0, 0

    def retension(self) -> None:
        self.rewind()

    def close(self) -> None:
        self._close_fd()
        self._save_position()
