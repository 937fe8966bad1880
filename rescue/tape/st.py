"""A Linux SCSI tape (st(4): /dev/nstN, /dev/stN) through read/write and fcntl.ioctl.

- Opening uses O_NONBLOCK and then clears it: a blocking open waits for a medium (minutes after MTOFFL), and
  `mt status`/`mt load` must work on an empty drive.  Operations then fail with a typed error instead.
- Writing sets variable block mode first (MTSETBLK 0), so every write() is one record of its own size.
- read_record(bufsize) reads one record.  A record larger than the buffer makes st return ENOMEM after moving
  past it (st(4), "the block is larger than the buffer"); we space back one record (MTBSR) and read again with a
  larger buffer, doubling up to MAX_RECORD, so records of any size written by any tool read back whole.
- A read of 0 bytes is a filemark, unless MTIOCGET reports EOD; that is EndOfDataError.  Blank check (reading
  blank tape at BOT, or MTSEEK past the end of data) reaches us as a bare EIO with no EOD bit on some targets;
  `_blank_or()` tells it from a medium error by spacing one file forward, which fails with EOD set at end of
  data, and returns to where the tape was.
- errno becomes a typed error from rescue.tape.base with a message naming the device and what to do; EIO is
  told apart with MTIOCGET's status bits (EOD, EOT, BOT, EOF) as mt-st does.

This is the real drive, nothing is emulated.  Operations outside the Tape interface (setmarks, partitions,
unload, fsfm/bsfm) go through `mtop()`; st driver options (stoptions, drvbuffer) are not offered.
"""

from __future__ import annotations

import errno
import fcntl
import os
from typing import Optional

from rescue.tape import mtio
from rescue.tape.base import (
    DEFAULT_RECORD_SIZE,
    BeginningOfTapeError,
    DriveBusyError,
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
)

MAX_RECORD = 16 * 1024 * 1024
# The first read of a large request: st refuses a read() larger than the buffer it can set up (EINVAL on a
# guest's st with 16 MiB), so a caller asking for "any record up to N" starts at the default record size, which
# st has always taken, and grows on ENOMEM.
FIRST_READ = DEFAULT_RECORD_SIZE

_NO_MEDIUM = (errno.ENOMEDIUM, errno.ENXIO)
_FULL = (errno.ENOSPC,)


class StTape(Tape):
    kind = "st"

    def __init__(
        self,
        path: str,
        *,
        write: bool = False,
        record_size: Optional[int] = None,  # records keep their own size (variable block mode)
        capacity: Optional[int] = None,
        write_protected: bool = False,
        max_record: int = MAX_RECORD,
        keep_position: bool = True,  # a non-rewinding device keeps it by itself; /dev/stN rewinds on close
    ):
        self.name = path
        self.records_read = 0
        self.bytes_read = 0
        self.seeks = 0
        self.max_record = max_record
        if capacity is not None:
            raise UnsupportedError(
                f"{path}: a real drive has its own capacity; the capacity option is for images"
            )
        self.writable = write and not write_protected
        flags = (os.O_RDWR if self.writable else os.O_RDONLY) | os.O_NONBLOCK | os.O_CLOEXEC
        self._fd = -1
        try:
            self._fd = os.open(path, flags)
        except OSError as e:
            raise self._error(e, "opening") from None
        try:
            # Back to blocking I/O: with O_NONBLOCK st does not wait for rewinds and loads to finish.
            fl = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, fl & ~os.O_NONBLOCK)
            if self.writable:
                self._op(mtio.MTSETBLK, 0, "setting variable block mode")
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise

    # -- ioctl plumbing -------------------------------------------------------------------------------------

    def _raw_status(self) -> Optional[dict]:
        try:
            raw = fcntl.ioctl(self._fd, mtio.MTIOCGET, bytes(mtio.MTGET.size))
        except OSError:
            return None
        return mtio.unpack_mtget(raw)

    def _error(self, e: OSError, what: str, backward: bool = False) -> TapeError:
        """The typed error for errno `e` of operation `what`, using the drive status to tell EIO apart."""
        n = self.name
        code = e.errno
        if code == errno.ENOENT:
            return NoMediumError(f"{n}: no such device; give -f DEVICE or set $TAPE")
        if code in _NO_MEDIUM:
            return NoMediumError(
                f"{n}: no tape in the drive (or the drive is offline) while {what}; load a tape"
            )
        if code == errno.EBUSY:
            return DriveBusyError(f"{n}: drive busy: another process has it open; wait for it or stop it")
        # st(4): opening a write-protected tape for writing gives EROFS, writing to it EACCES.
        if code == errno.EROFS or (code == errno.EACCES and what != "opening"):
            return WriteProtectedError(f"{n}: tape is write protected; slide the tab or use another tape")
        if code == errno.EACCES:
            return TapeError(f"{n}: permission denied; run as root or join the group that owns the device")
        if code in _FULL:
            return EndOfMediumError(f"{n}: end of medium while {what}: the tape is full; use another tape")
        if code in (errno.ENOTTY, errno.ENOSYS):
            return UnsupportedError(f"{n}: not a tape device, or the driver cannot do this ({what})")
        if code == errno.EINVAL:
            return UnsupportedError(f"{n}: the drive refused {what} (invalid or unsupported)")
        if code == errno.EIO and self._fd >= 0:
            s = self._raw_status()
            if s is not None:
                g = s["mt_gstat"]
                if not g & mtio.GMT_ONLINE:
                    return NoMediumError(f"{n}: drive offline or no tape while {what}; load a tape")
                if g & mtio.GMT_EOD:
                    return EndOfDataError(f"{n}: end of data (blank tape) while {what}")
                if g & mtio.GMT_EOT:
                    return EndOfMediumError(f"{n}: end of medium while {what}: the tape is full")
                if backward and g & mtio.GMT_BOT:  # st: GMT_BOT = file 0, block 0
                    return BeginningOfTapeError(f"{n}: beginning of tape reached while {what}")
        return MediumError(
            f"{n}: I/O error while {what}: {e.strerror}; check the kernel log (dmesg), clean the drive, retry"
        )

    def _blank_or(self, error: TapeError, what: str) -> TapeError:
        """EndOfDataError if the tape stands at end of data, else `error` (with the tape where it was)."""
        if not isinstance(error, MediumError):
            return error
        try:
            here = self.tell()
        except TapeError:
            return error
        result = error
        try:
            fcntl.ioctl(self._fd, mtio.MTIOCTOP, mtio.pack_mtop(mtio.MTFSF, 1))
        except OSError:
            s = self._raw_status()
            if s is not None and s["mt_gstat"] & mtio.GMT_EOD:
                result = EndOfDataError(f"{self.name}: end of data (blank tape) while {what}")
        try:
            fcntl.ioctl(self._fd, mtio.MTIOCTOP, mtio.pack_mtop(mtio.MTSEEK, here))
        except OSError:
            pass  # where the tape is now is for the caller to find out
        return result

    def _op(self, op: int, count: int, what: str, backward: bool = False) -> None:
        self._check_open()
        try:
            fcntl.ioctl(self._fd, mtio.MTIOCTOP, mtio.pack_mtop(op, count))
        except OSError as e:
            raise self._error(e, what, backward) from None

    def _check_open(self) -> None:
        if self._fd < 0:
            raise TapeError(f"{self.name}: tape is closed")

    # -- reading and writing --------------------------------------------------------------------------------

    def read_record(self, bufsize: int = 256 * 1024) -> bytes:
        self._check_open()
        size = min(max(1, bufsize), FIRST_READ)
        while True:
            try:
                data = os.read(self._fd, size)
                break
            except OSError as e:
                if e.errno != errno.ENOMEM:
                    raise self._blank_or(self._error(e, "reading"), "reading") from None
                if size >= self.max_record:
                    raise MediumError(
                        f"{self.name}: a record is larger than {self.max_record} bytes; not a tape this tool can read"
                    ) from None
                # st moved past the record it could not hand over: back up and read it with a larger buffer.
                self._op(mtio.MTBSR, 1, "spacing back over an oversized record", backward=True)
                size = min(size * 2, self.max_record)
        if not data:
            s = self._raw_status()
            if s is not None and s["mt_gstat"] & mtio.GMT_EOD:
                raise EndOfDataError(f"{self.name}: end of data (blank tape) while reading")
            return b""
        self.records_read += 1
        self.bytes_read += len(data)
        return data

    def write_record(self, data) -> None:
        self._check_open()
        view = memoryview(data)
        n = view.nbytes
        try:
            done = os.write(self._fd, view)
        except OSError as e:
            raise self._error(e, "writing") from None
        if done != n:
            # st(4): a short write means the early-warning end of medium was reached.
            raise EndOfMediumError(
                f"{self.name}: end of medium: the tape is full ({done} of {n} bytes written)"
            )

    def write_filemarks(self, count: int = 1) -> None:
        self._op(mtio.MTWEOF, count, "writing filemarks")

    # -- positioning ----------------------------------------------------------------------------------------

    def space_files(self, count: int) -> None:
        self.seeks += 1
        if count > 0:
            self._op(mtio.MTFSF, count, f"spacing forward {count} files")
        elif count < 0:
            self._op(mtio.MTBSF, -count, f"spacing backward {-count} files", backward=True)

    def space_records(self, count: int) -> None:
        self.seeks += 1
        if count == 0:
            return
        op, what = (mtio.MTFSR, "forward") if count > 0 else (mtio.MTBSR, "backward")
        try:
            before = self.tell()
        except TapeError:
            before = None
        try:
            self._op(op, abs(count), f"spacing {what} {abs(count)} records", backward=count < 0)
        except MediumError:
            # EIO that is neither EOD nor BOT: a filemark stopped the space.  st leaves the tape after it going
            # forward (block 0 of the next file: GMT_EOF) and before it going backward.  st's mt_resid holds the
            # partition, not the residual, so the residual comes from the logical positions (MTIOCPOS).
            s = self._raw_status()
            if s is None or (count > 0 and not s["mt_gstat"] & mtio.GMT_EOF):
                raise
            try:
                after = self.tell()
            except TapeError:
                after = None
            residual = 0
            if before is not None and after is not None:
                residual = abs(count) - (abs(after - before) - 1)
            raise FilemarkError(f"{self.name}: filemark reached while spacing records", residual) from None

    def tell(self) -> int:
        self._check_open()
        try:
            raw = fcntl.ioctl(self._fd, mtio.MTIOCPOS, bytes(mtio.MTPOS.size))
        except OSError as e:
            raise self._error(e, "reading the position") from None
        return mtio.MTPOS.unpack(raw)[0]

    def seek(self, block: int) -> None:
        self.seeks += 1
        what = f"seeking to block {block}"
        try:
            self._op(mtio.MTSEEK, block, what)
        except MediumError as e:
            raise self._blank_or(e, what) from None

    def rewind(self) -> None:
        self._op(mtio.MTREW, 1, "rewinding")

    def seek_eod(self) -> None:
        self._op(mtio.MTEOM, 1, "spacing to end of data")

    # -- drive ----------------------------------------------------------------------------------------------

    def status(self) -> TapeStatus:
        self._check_open()
        try:
            raw = fcntl.ioctl(self._fd, mtio.MTIOCGET, bytes(mtio.MTGET.size))
        except OSError as e:
            raise self._error(e, "reading the status") from None
        s = mtio.unpack_mtget(raw)
        g = s["mt_gstat"] & 0xFFFFFFFF
        dsreg = s["mt_dsreg"]
        if s["mt_type"] == mtio.MT_ISSCSI2:
            drive = "SCSI 2 tape drive"
        elif s["mt_type"] == mtio.MT_ISSCSI1:
            drive = "SCSI 1 tape drive"
        else:
            drive = f"tape drive type {s['mt_type']}"
        position = None
        if g & mtio.GMT_ONLINE:
            try:
                position = self.tell()
            except TapeError:
                position = None
        return TapeStatus(
            device=self.name,
            kind=self.kind,
            file_number=s["mt_fileno"],
            block_number=s["mt_blkno"],
            block_size=(dsreg & mtio.MT_ST_BLKSIZE_MASK) >> mtio.MT_ST_BLKSIZE_SHIFT,
            density=(dsreg & mtio.MT_ST_DENSITY_MASK) >> mtio.MT_ST_DENSITY_SHIFT,
            drive_type=drive,
            bot=bool(g & mtio.GMT_BOT),
            eof=bool(g & mtio.GMT_EOF),
            eot=bool(g & mtio.GMT_EOT),
            eod=bool(g & mtio.GMT_EOD),
            write_protected=bool(g & mtio.GMT_WR_PROT),
            online=bool(g & mtio.GMT_ONLINE),
            door_open=bool(g & mtio.GMT_DR_OPEN),
            position=position,
            partition=s["mt_resid"] & 0xFF if s["mt_type"] == mtio.MT_ISSCSI2 else 0,
            soft_errors=(s["mt_erreg"] & mtio.MT_ST_SOFTERR_MASK) >> mtio.MT_ST_SOFTERR_SHIFT,
            gstat=g,
        )

    def offline(self) -> None:
        self._op(mtio.MTOFFL, 1, "ejecting")

    def load(self) -> None:
        self._op(mtio.MTLOAD, 1, "loading")

    def erase(self) -> None:
        self._op(mtio.MTERASE, 1, "erasing")  # count 1: long erase, as mt-st's `erase` sends

    def set_block_size(self, size: int) -> None:
        self._op(mtio.MTSETBLK, size, f"setting block size {size}")

    def set_density(self, code: int) -> None:
        self._op(mtio.MTSETDENSITY, code, f"setting density 0x{code:x}")

    def set_compression(self, on: bool) -> None:
        self._op(mtio.MTCOMPRESSION, 1 if on else 0, "setting compression")

    def retension(self) -> None:
        self._op(mtio.MTRETEN, 1, "retensioning")

    def lock(self) -> None:
        self._op(mtio.MTLOCK, 1, "locking the door")

    def unlock(self) -> None:
        self._op(mtio.MTUNLOCK, 1, "unlocking the door")

    def mtop(self, op: int, count: int = 1) -> None:
        """Any other MTIOCTOP operation (setmarks, partitions, unload ...), as mt-st sends it."""
        name = mtio.OP_NAMES.get(op, f"op {op}")
        self._op(
            op, count, f"{name} {count}", backward=op in (mtio.MTBSF, mtio.MTBSFM, mtio.MTBSR, mtio.MTBSS)
        )

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.close(fd)  # st writes a filemark here if the last operation was a write
            except OSError as e:
                raise self._error(e, "closing") from None
