"""The SIMH magtape image format (`.tap`): its markers, how a record is laid out, and how to find records.

The format (Bob Supnik, "SIMH Magtape Representation and Handling"; the same layout the simulators, the
`file` command's is_simh.c and other tape tools read):

- Location 0 is the beginning of tape; the end of the file is the end of recorded data.
- A data record is a 4-byte little-endian length n, the n data bytes, one pad byte (0) when n is odd, and the
  same 4-byte length again.  Bits 27-0 hold n; bits 31-28 are the record class: 0 = good record, 8 = record
  with a read error (the data follows as usual).  Every object starts at an even byte offset.
- Metadata markers are 4 bytes: 0x00000000 tape mark (a filemark), 0xFFFFFFFF end of medium, 0xFFFFFFFE erase
  gap (skipped).  Other markers and record classes are not produced by tape drives.

`find_record()` is how a reader finds its way again after damage: the next place where a record of a length the
image already used starts and ends with the same length word (a filemark just before it is kept).
"""

from __future__ import annotations

import os
import struct
from typing import Iterable, Optional

TAPE_MARK = 0x00000000
END_OF_MEDIUM = 0xFFFFFFFF
ERASE_GAP = 0xFFFFFFFE
LENGTH_MASK = 0x0FFFFFFF
CLASS_GOOD = 0x0
CLASS_BAD = 0x8
ERROR_FLAG = 0x80000000  # class 8: "bad data record", the error flag of older SIMH versions
MAX_RECORD = LENGTH_MASK

LEN = struct.Struct("<I")
MARK_BYTES = LEN.pack(TAPE_MARK)
_SCAN_CHUNK = 1 << 20


def record_bytes(data: bytes, bad: bool = False) -> bytes:
    """One record in SIMH layout (for tests and tools that build images)."""
    n = len(data)
    word = LEN.pack(n | (ERROR_FLAG if bad else 0))
    return word + bytes(data) + (b"\0" if n & 1 else b"") + word


def record_span(word: int) -> int:
    """Bytes a record with this length word takes in the image: both length words, the data, the pad byte."""
    n = word & LENGTH_MASK
    return 8 + n + (n & 1)


def is_record_word(word: int) -> bool:
    return word >> 28 in (CLASS_GOOD, CLASS_BAD)


def looks_like_simh(path: str) -> bool:
    """True when the file starts with well-formed SIMH objects and at least one data record (an all-zero or
    tar file does not: a tar header's first bytes are a file name, never a small length with a matching
    trailer)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
            size = os.fstat(f.fileno()).st_size
            pos = 0
            for _ in range(64):
                if pos + 4 > size:
                    return False
                if pos + 4 > len(head):
                    f.seek(pos)
                    head = head[:pos] + f.read(8)
                (word,) = LEN.unpack_from(head, pos)
                if word == TAPE_MARK:
                    pos += 4
                    continue
                if not is_record_word(word):
                    return False
                n = word & LENGTH_MASK
                end = pos + 4 + n + (n & 1)
                if n == 0 or end + 4 > size:
                    return False
                f.seek(end)
                return f.read(4) == LEN.pack(word)
    except OSError:
        return False
    return False


def find_record(fd: int, start: int, size: int, lengths: Iterable[int]) -> Optional[int]:
    """Offset of the first intact record at or after `start` whose length is one of `lengths`, or of the
    filemarks just before it; None when there is none before `size` (the end of the image).

    Intact: both length words agree and the record fits in the image.  Only lengths the image already used are
    looked for, so a search costs a few bytes.find() per MiB, and a false match needs the same 4 bytes again
    exactly one record length later.
    """
    words = set()
    for n in lengths:
        if 0 < n <= MAX_RECORD:
            words.add(LEN.pack(n))
            words.add(LEN.pack(n | ERROR_FLAG))
    pos = start + (start & 1)
    while words and pos + 8 <= size:
        buf = os.pread(fd, _SCAN_CHUNK + 4, pos)
        best = None
        for packed in words:
            i = buf.find(packed)
            while i >= 0 and (best is None or i < best):
                at = pos + i
                word = LEN.unpack(packed)[0]
                end = at + record_span(word)
                if at % 2 == 0 and end <= size and os.pread(fd, 4, end - 4) == packed:
                    best = i
                    break
                i = buf.find(packed, i + 1)
        if best is not None:
            at = pos + best
            while at - 4 >= start and os.pread(fd, 4, at - 4) == MARK_BYTES:
                at -= 4
            return at
        if len(buf) <= _SCAN_CHUNK:
            return None
        pos += _SCAN_CHUNK
    return None
