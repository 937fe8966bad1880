"""A SIMH magtape image (`.tap`, format in rescue.tape.simh_format) that behaves like a drive seen through st(4)
in variable-block mode.  Where the tape is on the image, and moving over its objects, is rescue.tape.simh_walk.

What is written here is exactly that format: record = length, data, pad byte when odd, length; filemark = 4
zero bytes; nothing else (no end-of-medium marker; the file ends where the data ends).  Writing truncates the
image at the write position, as writing a tape makes everything after it unreadable.  A record of class 8 (read
error) raises MediumError when read, and the tape moves past it.

Damage (the Tape contract in rescue.tape.base): an image cut inside a record raises TruncatedRecordError once,
with the bytes that are there, and is then at end of data.  A record whose two length words disagree, or an
unknown marker, is one unreadable block: MediumError, and the tape goes on at the next intact record
(`simh_format.find_record`), or at end of data when none follows.  No read meets the same error twice.

Positions: every record and every filemark is one logical block (what st's MTIOCPOS/READ POSITION count).  A
sparse index of byte offsets (one entry per INDEX_STRIDE blocks, learned while moving forward from the beginning)
makes seek() cost at most INDEX_STRIDE header reads past the nearest known point.  Backward spacing reads the
trailing length of the previous record, which is what the format's trailing length is for.

Options: `capacity` (bytes of image; a record write that would end past it raises EndOfMediumError and writes
nothing, filemarks may still be written, as drives keep a reserve after early warning), `write_protected`,
`keep_position`: like the non-rewinding /dev/nst0, the position (and an `mt offline`) survives close and the next
open with keep_position (`rescue mt` uses it; it is kept in a hidden file `.NAME.position` beside the image,
ignored once the image changes).  Without it an open starts at the beginning of the tape, like /dev/st0.
Counters: `records_read` (data records returned), `seeks` (seek and space operations), `bytes_read`.

Not emulated: fixed-block mode (setblk > 0), density and compression, partitions, setmarks, the early-warning
zone (EOM is all or nothing), and the half-gap markers of SIMH's overwrite emulation.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
from typing import Optional

from rescue.tape.base import (
    DriveBusyError,
    EndOfMediumError,
    FilemarkError,
    MediumError,
    NoMediumError,
    Tape,
    TapeError,
    TapeStatus,
    UnsupportedError,
    WriteProtectedError,
)
from rescue.tape.simh_format import (
    CLASS_BAD,
    END_OF_MEDIUM,
    LEN,
    LENGTH_MASK,
    MARK_BYTES,
    MAX_RECORD,
)
from rescue.tape.simh_walk import CUT, DAMAGED, EOD, INDEX_STRIDE, MARK, ImageWalk


class SimhTape(ImageWalk, Tape):
    kind = "simh"

    def __init__(
        self,
        path: str,
        *,
        write: bool = False,
        capacity: Optional[int] = None,
        write_protected: bool = False,
        record_size: Optional[int] = None,  # accepted for a uniform open_tape(); records keep their size
        keep_position: bool = False,
    ):
        self.name = path
        self.capacity = capacity
        self.records_read = 0
        self.bytes_read = 0
        self.seeks = 0
        self._fd = -1
        protect = write_protected
        if write and not write_protected:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except PermissionError:
                raise WriteProtectedError(
                    f"{path}: write protected (no write permission on the image); use another file"
                ) from None
            except IsADirectoryError:
                raise TapeError(f"{path}: is a directory, not a .tap image") from None
            except FileNotFoundError:
                raise TapeError(f"{path}: no such directory to create the image in") from None
        else:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise NoMediumError(f"{path}: no such tape image; give -f DEVICE or set $TAPE") from None
            except PermissionError:
                raise TapeError(f"{path}: permission denied reading the tape image") from None
            if write:
                protect = True
        self._fd = fd
        self.writable = write and not protect
        self.write_protected = protect or not os.access(path, os.W_OK)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self._fd = -1
            raise TapeError(f"{path}: not a regular file, cannot hold a SIMH tape image")
        try:
            # st(4) lets one process open a drive at a time (EBUSY); an image behaves the same for writers.
            fcntl.flock(fd, (fcntl.LOCK_EX if self.writable else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._fd = -1
            raise DriveBusyError(
                f"{path}: tape image in use by another process; wait for it to finish"
            ) from None
        self._size = st.st_size
        self._online = True
        self._eom_hit = False
        self._rewind_state()
        self._position_file = None
        if keep_position:
            head, tail = os.path.split(path)
            self._position_file = os.path.join(head, f".{tail}.position")
            self._restore_position()

    # -- the remembered position (keep_position) ------------------------------------------------------------

    def _stamp(self) -> list:
        st = os.fstat(self._fd)
        return [st.st_size, st.st_mtime_ns, st.st_ino]

    def _restore_position(self) -> None:
        try:
            with open(self._position_file) as f:
                saved = json.load(f)
            if saved.get("image") != self._stamp():
                return  # the image changed since: start at the beginning
            self._online = bool(saved.get("online", True))
            block = int(saved.get("block", 0))
            # [byte offset, file number, block where that file starts]: saved when all three were known.
            where = saved.get("at")
            if where is not None:
                pos, file, start = (int(x) for x in where)
        except (OSError, ValueError, TypeError, AttributeError):
            return
        if (
            where is not None
            and self._online
            and 0 <= pos <= self._size
            and file >= 0
            and 0 <= start <= block
        ):
            # Straight there: walking the records to block N of a large image takes seconds.
            self._pos, self._block, self._file = pos, block, file
            self._file_start[file] = start
        elif block and self._online:
            try:
                self.seek(block)
                self.seeks -= 1
            except TapeError:
                self._rewind_state()

    def _save_position(self) -> None:
        if self._position_file is None:
            return
        try:
            if self._online and self._block == 0:
                if os.path.exists(self._position_file):
                    os.unlink(self._position_file)
                return
            tmp = self._position_file + ".tmp"
            with open(tmp, "w") as f:
                saved = {"block": self._block, "online": self._online, "image": self._stamp()}
                # Without where its file starts, the next open walks to the block (and learns it on the way).
                start = self._file_start.get(self._file)
                if start is not None:
                    saved["at"] = [self._pos, self._file, start]
                json.dump(saved, f)
            os.replace(tmp, self._position_file)
        except OSError:
            pass  # a read-only directory: the position is simply not remembered, as with /dev/st0

    def _check_online(self) -> None:
        if self._fd < 0:
            raise TapeError(f"{self.name}: tape is closed")
        if not self._online:
            raise NoMediumError(f"{self.name}: no medium (the image was unloaded); run `rescue mt load`")

    # -- reading --------------------------------------------------------------------------------------------

    def read_record(self, bufsize: int = 256 * 1024) -> bytes:
        self._check_online()
        what, word = self._next()
        if what == MARK:
            self._skip_mark()
            return b""
        if what == EOD:
            raise self._eod_error("reading")
        if what == CUT:
            raise self._cut(word)
        if what == DAMAGED:
            raise self._damaged(f"marker 0x{word:08x}, not a record")
        n = word & LENGTH_MASK
        pos = self._pos
        data = os.pread(self._fd, n, pos + 4) if n else b""
        pad = n & 1
        tail = os.pread(self._fd, pad + 8, pos + 4 + n)
        if len(data) < n or len(tail) < pad + 4 or LEN.unpack_from(tail, pad)[0] != word:
            raise self._damaged("the record's trailing length does not match its leading length")
        self._skip_record(word)
        if len(tail) >= pad + 8:
            self._peek = (self._pos, LEN.unpack_from(tail, pad + 4)[0])
        if word >> 28 == CLASS_BAD:
            # A drive reports the bad block and moves past it, so a reader can resynchronise after it.
            raise MediumError(
                f"{self.name}: medium error reading block {self._block - 1} (file {self._file}); the tape may be "
                "damaged: clean the drive, retry, or restore around it"
            )
        self.records_read += 1
        self.bytes_read += n
        return data

    # -- writing --------------------------------------------------------------------------------------------

    def _prepare_write(self, length: int, is_mark: bool) -> None:
        self._check_online()
        if not self.writable:
            if self.write_protected:
                raise WriteProtectedError(f"{self.name}: tape image is write protected")
            raise TapeError(f"{self.name}: opened for reading; cannot write")
        if not is_mark and self.capacity is not None and self._pos + length > self.capacity:
            self._eom_hit = True
            raise EndOfMediumError(
                f"{self.name}: end of medium: the tape is full ({self.capacity} bytes); continue on another tape"
            )
        if self._pos < self._size:
            # Writing in the middle of a tape makes everything after it unreadable: cut it off.
            os.ftruncate(self._fd, self._pos)
            self._size = self._pos
            keep = self._block // INDEX_STRIDE + 1
            del self._index[keep:]
            for f in [f for f in self._file_start if f > self._file]:
                del self._file_start[f]
        self._peek = None

    def _pwrite(self, parts: list, total: int) -> None:
        try:
            done = os.pwritev(self._fd, parts, self._pos)
            if done != total:  # short write on a regular file: only when the filesystem is full
                rest = b"".join(bytes(p) for p in parts)[done:]
                while rest:
                    k = os.pwrite(self._fd, rest, self._pos + done)
                    done += k
                    rest = rest[k:]
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                self._eom_hit = True
                os.ftruncate(self._fd, self._pos)
                raise EndOfMediumError(
                    f"{self.name}: end of medium: no space left for the image ({e.strerror}); free space or use "
                    "another file"
                ) from None
            raise MediumError(f"{self.name}: write error: {e.strerror}") from None
        self._pos += total
        self._size = max(self._size, self._pos)

    def write_record(self, data) -> None:
        view = memoryview(data)
        n = view.nbytes
        if n == 0:
            raise TapeError(f"{self.name}: a tape record cannot be empty")
        if n > MAX_RECORD:
            raise TapeError(f"{self.name}: record of {n} bytes is larger than the SIMH maximum {MAX_RECORD}")
        pad = n & 1
        total = 8 + n + pad
        self._prepare_write(total, False)
        word = LEN.pack(n)
        self._pwrite([word, view, b"\0", word] if pad else [word, view, word], total)
        self._block += 1
        self._moved_forward()

    def write_filemarks(self, count: int = 1) -> None:
        if count < 0:
            raise TapeError(f"{self.name}: cannot write {count} filemarks")
        if count == 0:  # st: MTWEOF 0 only flushes the drive's buffer
            self._check_online()
            return
        self._prepare_write(4 * count, True)
        self._pwrite([MARK_BYTES * count], 4 * count)
        self._pos -= 4 * count
        for _ in range(count):
            self._skip_mark()

    # -- positioning ----------------------------------------------------------------------------------------

    def space_records(self, count: int) -> None:
        self._check_online()
        self.seeks += 1
        if count >= 0:
            for done in range(count):
                what, word = self._next()
                if what == EOD:
                    raise self._eod_error("spacing forward records")
                if what == MARK:
                    # SSC SPACE(blocks): stops after the filemark going forward.
                    self._skip_mark()
                    raise FilemarkError(f"{self.name}: filemark reached while spacing records", count - done)
                self._pass(what, word, "spacing forward records")
            return
        for done in range(-count):
            if self._step_back() == MARK:
                # Backward the tape stops on the BOT side of the filemark, in the previous file.
                raise FilemarkError(
                    f"{self.name}: filemark reached while spacing records backward", -count - done
                )

    def space_files(self, count: int) -> None:
        self._check_online()
        self.seeks += 1
        if count >= 0:
            marks = 0
            while marks < count:
                what, word = self._next()
                if what == EOD:
                    raise self._eod_error(f"spacing forward {count} files")
                if what == MARK:
                    self._skip_mark()
                    marks += 1
                else:
                    self._pass(what, word, f"spacing forward {count} files")
            return
        marks = 0
        while marks < -count:
            if self._step_back() == MARK:
                marks += 1

    def tell(self) -> int:
        self._check_online()
        return self._block

    def seek(self, block: int) -> None:
        self._check_online()
        self.seeks += 1
        if block < 0:
            raise TapeError(f"{self.name}: cannot seek to block {block}")
        # Start from the nearest known point at or before the target: a checkpoint, or where we are.
        k = min(block // INDEX_STRIDE, len(self._index) - 1)
        if not (k * INDEX_STRIDE <= self._block <= block):
            self._pos, self._file = self._index[k]
            self._block = k * INDEX_STRIDE
            self._peek = None
        while self._block < block:
            what, word = self._next()
            if what == EOD:
                raise self._eod_error(f"seeking to block {block}")
            if what == MARK:
                self._skip_mark()
            else:
                self._pass(what, word, f"seeking to block {block}")

    def rewind(self) -> None:
        self._check_online()
        self._pos, self._block, self._file, self._peek = 0, 0, 0, None

    def seek_eod(self) -> None:
        self._check_online()
        k = len(self._index) - 1
        if self._block < k * INDEX_STRIDE:
            self._pos, self._file = self._index[k]
            self._block = k * INDEX_STRIDE
            self._peek = None
        while True:
            what, word = self._next()
            if what == EOD:
                return
            if what == MARK:
                self._skip_mark()
            elif what == CUT:
                self._cut(word)
                return
            else:
                self._pass(what, word, "spacing to end of data")

    # -- drive ----------------------------------------------------------------------------------------------

    def status(self) -> TapeStatus:
        if self._fd < 0:
            raise TapeError(f"{self.name}: tape is closed")
        if not self._online:
            return TapeStatus(
                device=self.name, kind=self.kind, online=False, write_protected=self.write_protected
            )
        at_eod = self._word(self._pos) in (END_OF_MEDIUM, None)
        fblock = self._block_in_file()
        return TapeStatus(
            device=self.name,
            kind=self.kind,
            file_number=self._file,
            block_number=fblock,
            block_size=0,
            density=0,
            drive_type="SIMH tape image",
            bot=self._pos == 0,
            eof=self._file > 0 and fblock == 0,
            eot=self._eom_hit or (self.capacity is not None and self._pos >= self.capacity),
            eod=at_eod,
            write_protected=self.write_protected,
            online=True,
            position=self._block,
        )

    def offline(self) -> None:
        self._check_online()
        self.rewind()
        self._online = False

    def load(self) -> None:
        if self._fd < 0:
            raise TapeError(f"{self.name}: tape is closed")
        self._online = True
        self.rewind()

    def erase(self) -> None:
        """mt erase: everything from the current position on is erased (the image is cut there)."""
        self._prepare_write(0, True)
        self._eom_hit = False

    def set_block_size(self, size: int) -> None:
        self._check_online()
        if size != 0:
            raise UnsupportedError(f"{self.name}: SIMH images hold variable-size records only (setblk 0)")

    def retension(self) -> None:
        # A drive winds to the end and back: observably a rewind.
        self.rewind()

    def lock(self) -> None:
        self._check_online()  # an image has no door; locking succeeds as on a drive without a lock

    def unlock(self) -> None:
        self._check_online()

    def close(self) -> None:
        if self._fd >= 0:
            self._save_position()
            os.close(self._fd)
            self._fd = -1
