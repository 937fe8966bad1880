"""The one small interface every tape backend implements, and the errors it raises.

The model is a Linux SCSI tape seen through st(4) in variable-block mode:

- A tape is a sequence of records and filemarks, ended by end of data (EOD).
- `read_record(bufsize)` returns the next record (at most `bufsize` bytes requested; a backend that can see the
  record's true size returns it whole, growing its buffer as st needs).  At a filemark it returns b"" once and is
  then positioned after the filemark, at the start of the next tape file.  At end of data it raises EndOfData.
- An unreadable record raises MediumError and leaves the tape after that record (as a drive reports a bad block
  and moves past it), so reading on never meets the same error twice at one position.  A record cut short by the
  end of the recorded data (an image or file cut in the middle of a record) raises TruncatedRecordError once,
  carrying the bytes that are there; the tape is then at end of data.  A backend that cannot see record
  boundaries (dir, stream) returns those bytes as a short last record instead.  Either way a cut tape yields
  every whole record, then the partial one, then at most one filemark, then EndOfDataError on every read.
- `write_record(data)` writes one record; `write_filemarks(n)` writes n filemarks.  Writing truncates the tape
  there: everything after the write position is gone (tapes cannot be overwritten in the middle).
- Positions are logical block numbers counted from the beginning of tape, where every record and every filemark
  counts as one block (what SCSI READ POSITION and st's MTIOCPOS report).  `seek(tell())` returns to the same place.
- `space_files(n)` is mt fsf (n > 0, ends after the n-th filemark) / bsf (n < 0, ends before the filemark, on its
  BOT side).  `space_records(n)` is fsr/bsr; spacing over a filemark stops there and raises FilemarkError.
- `status()` reports what mt-st's `status` prints.

Backends: `st` (Linux st via ioctl), `simh` (SIMH .tap image), `dir` (a directory, one file per tape file),
`stream` (stdin/stdout or a plain archive file, one tape file, no filemarks).  `open_tape()` in rescue.tape picks
one from a device name.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from rescue.errors import RescueError

# A rescue set's archive record (GNU tar -b 512); dir and stream cut files found on a volume into records of it.
DEFAULT_RECORD_SIZE = 256 * 1024


class TapeError(RescueError):
    """A tape operation failed; the message names the device and what to do."""


class NoMediumError(TapeError):
    """No tape is loaded (or the drive is offline)."""


class DriveBusyError(TapeError):
    """Another process holds the drive."""


class WriteProtectedError(TapeError):
    """The medium is write protected."""


class EndOfMediumError(TapeError):
    """Physical end of the medium was reached while writing (the tape is full)."""


class EndOfDataError(TapeError):
    """Blank tape or end of recorded data reached while reading or spacing."""


class FilemarkError(TapeError):
    """A filemark stopped a record space operation; `residual` counts the records not spaced."""

    def __init__(self, message: str, residual: int = 0):
        super().__init__(message)
        self.residual = residual


class BeginningOfTapeError(TapeError):
    """Backward spacing hit the beginning of the tape."""


class MediumError(TapeError):
    """An unrecoverable read or write error (bad record, I/O error)."""


class TruncatedRecordError(MediumError):
    """The recorded data ends inside a record (the image was cut there); `data` holds the bytes that are there.
    Raised once: the tape is then at end of data."""

    def __init__(self, message: str, data: bytes = b""):
        super().__init__(message)
        self.data = data


class UnsupportedError(TapeError):
    """The backend or drive cannot do this operation."""


@dataclasses.dataclass
class TapeStatus:
    """What `mt status` reports. Unknown numbers are -1, as st reports them."""

    device: str
    kind: str  # "st", "simh", "dir", "stream"
    file_number: int = -1
    block_number: int = -1  # block within the current tape file
    block_size: int = 0  # 0 = variable block mode
    density: int = 0
    drive_type: str = ""
    bot: bool = False
    eof: bool = False  # just after a filemark
    eot: bool = False  # end of medium (early warning or physical)
    eod: bool = False
    write_protected: bool = False
    online: bool = True
    door_open: bool = False
    position: Optional[int] = None  # logical block (MTIOCPOS) when known
    partition: int = 0
    soft_errors: int = 0
    gstat: Optional[int] = None  # the raw MTIOCGET mt_gstat when a drive reported it


def records_in(size: int, record_size: int) -> int:
    """How many fixed-size records `size` bytes fill, the last one possibly short (dir and stream backends)."""
    return -(-size // record_size)


class Tape:
    """Base class of the backends. Subclasses implement the methods; those they cannot honour raise
    UnsupportedError (the contract tests skip on it)."""

    name: str = "?"
    kind: str = "?"
    can_seek: bool = True  # seek()/tell() are real, cheap positioning
    # Counters for tests and benchmarks (a restore that seeks reads fewer records): records returned by
    # read_record, and positioning operations (seek, space_files, space_records).
    records_read: int = 0
    seeks: int = 0

    # reading and writing
    def read_record(self, bufsize: int = 256 * 1024) -> bytes:
        raise UnsupportedError(f"{self.name}: reading is not supported")

    def write_record(self, data) -> None:
        raise UnsupportedError(f"{self.name}: writing is not supported")

    def write_filemarks(self, count: int = 1) -> None:
        raise UnsupportedError(f"{self.name}: filemarks are not supported")

    # positioning
    def space_files(self, count: int) -> None:
        raise UnsupportedError(f"{self.name}: spacing files is not supported")

    def space_records(self, count: int) -> None:
        raise UnsupportedError(f"{self.name}: spacing records is not supported")

    def seek(self, block: int) -> None:
        raise UnsupportedError(f"{self.name}: seek is not supported")

    def tell(self) -> int:
        raise UnsupportedError(f"{self.name}: tell is not supported")

    def rewind(self) -> None:
        raise UnsupportedError(f"{self.name}: rewind is not supported")

    def seek_eod(self) -> None:
        raise UnsupportedError(f"{self.name}: eod is not supported")

    # drive
    def status(self) -> TapeStatus:
        raise UnsupportedError(f"{self.name}: status is not supported")

    def offline(self) -> None:
        """Rewind and unload (mt offline/eject)."""
        raise UnsupportedError(f"{self.name}: eject is not supported")

    def load(self) -> None:
        raise UnsupportedError(f"{self.name}: load is not supported")

    def erase(self) -> None:
        raise UnsupportedError(f"{self.name}: erase is not supported")

    def set_block_size(self, size: int) -> None:
        """mt setblk: 0 = variable block mode (st and simh), else fixed records of `size` bytes."""
        raise UnsupportedError(f"{self.name}: setting the block size is not supported")

    def set_density(self, code: int) -> None:
        raise UnsupportedError(f"{self.name}: setting the density is not supported")

    def set_compression(self, on: bool) -> None:
        raise UnsupportedError(f"{self.name}: compression control is not supported")

    def retension(self) -> None:
        raise UnsupportedError(f"{self.name}: retension is not supported")

    def lock(self) -> None:
        """Lock the drive door (mt lock)."""
        raise UnsupportedError(f"{self.name}: door lock is not supported")

    def unlock(self) -> None:
        raise UnsupportedError(f"{self.name}: door lock is not supported")

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
