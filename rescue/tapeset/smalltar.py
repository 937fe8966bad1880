"""Tape files 0 and 2 as small tar archives: written with the standard library's tarfile into a temporary file,
cut into records of GNU tar's default size, 10240 bytes (the last one zero-padded), and ended by one filemark,
so plain GNU tar reads them with no option (`tar -xf /dev/nst0`; `mt fsf 2; tar -xf /dev/nst0`).

Used by rescue.tapeset.label (tape file 0) and rescue.tapeset.catalog_tape (tape file 2).
"""

from __future__ import annotations

import io
import tarfile
from typing import IO, Optional

from rescue.archive.tarformat import BLOCKSIZE
from rescue.errors import RescueError
from rescue.tape.base import EndOfDataError, Tape

COPY_CHUNK = 1024 * 1024


class VolumeError(RescueError):
    """A label or catalog tape file is damaged or not what the label promises."""


def tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


# Label and catalog are small archives written in GNU tar's default record size (-b 20), so that plain
# `tar -xf /dev/nst0` reads them with no option: the record size of the archive is written inside the label,
# and whoever reads the label does not know it yet. st(4) fails a read into a buffer smaller than the record.
SMALL_RECORD_SIZE = 20 * BLOCKSIZE


def write_records(tape: Tape, src: IO[bytes], record_size: int = SMALL_RECORD_SIZE) -> int:
    """Cut a file into whole records (the last one zero-padded), then a filemark; return the records written."""
    src.seek(0)
    count = 0
    while True:
        chunk = src.read(record_size)
        if not chunk:
            break
        if len(chunk) < record_size:
            chunk += bytes(record_size - len(chunk))
        tape.write_record(chunk)
        count += 1
    tape.write_filemarks(1)
    return count


def first_member_name(record: bytes) -> Optional[str]:
    """Name of the first member of a tar stream that starts with this record, or None if it is not tar."""
    try:
        with tarfile.open(fileobj=io.BytesIO(record), mode="r|") as tar:
            info = tar.next()
            return info.name if info is not None else None
    except (tarfile.TarError, EOFError, OSError, ValueError):
        return None


def read_file_into(
    tape: Tape, out: IO[bytes], bufsize: int, first: bytes = b"", limit: Optional[int] = None
) -> int:
    """Copy the rest of the current tape file (up to its filemark) to out; return the bytes copied."""
    total = len(first)
    out.write(first)
    while True:
        try:
            record = tape.read_record(bufsize)
        except EndOfDataError:
            # A set cut short (the job died before its filemark): what is there is all there is.
            break
        if not record:
            break
        total += len(record)
        if limit is not None and total > limit:
            raise VolumeError(f"{tape.name}: tape file 0 is larger than a rescue label can be")
        out.write(record)
    return total
