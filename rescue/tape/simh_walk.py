"""Walking over the objects of a SIMH image (rescue.tape.simh_format): what lies at a byte offset, stepping over
records and filemarks forward and back, the logical block and file numbers this gives, the sparse checkpoint
index, and how damage moves the walk on.

`ImageWalk` is the part of rescue.tape.simh.SimhTape that knows where it is on the image; SimhTape adds the Tape
interface (reading, writing, spacing, status) on top.  It uses the SimhTape attributes `name`, `_fd`, `_size`
(bytes in the image) and `bytes_read`.

What is found at a position: a record, a filemark, end of data, the image's end inside an object (a cut image),
or a marker no drive writes (damage).  A damaged object counts as one block and the walk goes on at the next
intact record (`simh_format.find_record`); a cut object puts the walk at end of data.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Set, Tuple

from rescue.tape.base import BeginningOfTapeError, EndOfDataError, MediumError, TruncatedRecordError
from rescue.tape.simh_format import (
    END_OF_MEDIUM,
    ERASE_GAP,
    LEN,
    LENGTH_MASK,
    TAPE_MARK,
    find_record,
    is_record_word,
    record_span,
)

INDEX_STRIDE = 64

# What the walk finds at a position.
RECORD, MARK, EOD, CUT, DAMAGED = 0, 1, 2, 3, 4


class ImageWalk:
    name: str
    bytes_read: int
    _fd: int
    _size: int

    def _rewind_state(self) -> None:
        self._pos = 0  # byte offset in the image
        self._block = 0  # logical block (records + filemarks since BOT)
        self._file = 0
        self._index: List[Tuple[int, int]] = [(0, 0)]  # block k*STRIDE -> (byte offset, file number)
        self._file_start: Dict[int, int] = {0: 0}  # file number -> logical block of its first block
        self._peek: Optional[Tuple[int, int]] = None  # (offset, word) of a header already read
        self._lengths: Set[int] = set()  # record lengths met so far (what find_record looks for after damage)

    def _moved_forward(self) -> None:
        """Record a checkpoint when the new position extends the known prefix of the tape."""
        b = self._block
        if b % INDEX_STRIDE == 0 and b // INDEX_STRIDE == len(self._index):
            self._index.append((self._pos, self._file))

    def _word(self, pos: int) -> Optional[int]:
        """The 4-byte word at pos, END_OF_MEDIUM past the end of the data, None when the image ends inside it."""
        peek = self._peek
        if peek is not None and peek[0] == pos:
            return peek[1]
        if pos + 4 > self._size:
            return END_OF_MEDIUM if pos >= self._size else None
        raw = os.pread(self._fd, 4, pos)
        if len(raw) < 4:
            return None if raw else END_OF_MEDIUM
        return LEN.unpack(raw)[0]

    def _next(self) -> Tuple[int, int]:
        """Classify the object at the current position, skipping erase gaps: (RECORD, word) / (MARK, 0) /
        (EOD, 0) / (CUT, word) / (DAMAGED, word)."""
        while True:
            word = self._word(self._pos)
            if word is None:
                return CUT, 0
            if word == TAPE_MARK:
                return MARK, 0
            if word == END_OF_MEDIUM:
                return EOD, 0
            if word == ERASE_GAP:
                self._pos += 4
                continue
            if not is_record_word(word):
                return DAMAGED, word
            if self._pos + record_span(word) > self._size:
                # The image ends inside the record (it was cut there), unless an intact record follows: then its
                # length word is damaged.
                n = word & LENGTH_MASK
                if (
                    n in self._lengths
                    or find_record(self._fd, self._pos + 4, self._size, self._lengths) is None
                ):
                    return CUT, word
                return DAMAGED, word
            return RECORD, word

    def _skip_record(self, word: int) -> None:
        n = word & LENGTH_MASK
        self._lengths.add(n)
        self._pos += 8 + n + (n & 1)
        self._block += 1
        self._moved_forward()

    def _where(self) -> str:
        return f"byte {self._pos} (file {self._file}, block {self._block_in_file()})"

    def _damaged(self, what: str) -> MediumError:
        """The object here is damaged: count it as one unreadable block and go on at the next intact record."""
        where = self._where()
        nxt = find_record(self._fd, self._pos + 4, self._size, self._lengths)
        self._pos = self._size if nxt is None else nxt
        self._block += 1
        self._peek = None
        self._moved_forward()
        then = "no intact record follows (end of data)" if nxt is None else f"reading goes on at byte {nxt}"
        return MediumError(f"{self.name}: damaged tape image at {where}: {what}; {then}")

    def _cut(self, word: int) -> TruncatedRecordError:
        """The image ends inside the record here: its bytes, and the tape at end of data."""
        where = self._where()
        n = word & LENGTH_MASK
        have = max(0, min(n, self._size - self._pos - 4)) if word else 0
        data = os.pread(self._fd, have, self._pos + 4) if have else b""
        self._pos = self._size
        self._block += 1
        self._peek = None
        self.bytes_read += len(data)
        inside = (
            f"the record at {where}, {len(data)} of {n} bytes are there"
            if word
            else f"a length word at {where}"
        )
        return TruncatedRecordError(
            f"{self.name}: truncated image: it ends inside {inside} (an incomplete copy or download)", data
        )

    def _pass(self, what: int, word: int, doing: str) -> None:
        """Move forward over a record, a damaged object (one block) or a cut record (then at end of data)."""
        if what == RECORD:
            self._skip_record(word)
        elif what == DAMAGED:
            self._damaged(f"marker 0x{word:08x}")
        else:
            self._cut(word)
            raise self._eod_error(doing)

    def _skip_mark(self) -> None:
        self._pos += 4
        self._block += 1
        self._file += 1
        self._file_start[self._file] = self._block
        self._moved_forward()

    def _eod_error(self, what: str) -> EndOfDataError:
        return EndOfDataError(
            f"{self.name}: end of data (blank tape) at file {self._file}, block {self._block_in_file()} "
            f"while {what}"
        )

    def _block_in_file(self) -> int:
        start = self._file_start.get(self._file)
        return -1 if start is None else self._block - start

    def _back_word(self) -> int:
        """The word that ends just before the current position (a trailing length or a tape mark)."""
        raw = os.pread(self._fd, 4, self._pos - 4)
        if len(raw) < 4:
            raise MediumError(f"{self.name}: damaged image before byte {self._pos}")
        return LEN.unpack(raw)[0]

    def _step_back(self) -> int:
        """Move back over one object; returns RECORD or MARK.  Raises at BOT."""
        while True:
            if self._pos == 0:
                raise BeginningOfTapeError(f"{self.name}: beginning of tape reached while spacing backward")
            word = self._back_word()
            if word == ERASE_GAP:
                self._pos -= 4
                continue
            self._peek = None
            if word == TAPE_MARK:
                self._pos -= 4
                self._block -= 1
                self._file -= 1
                return MARK
            if not is_record_word(word):
                raise MediumError(
                    f"{self.name}: unsupported SIMH marker 0x{word:08x} before byte {self._pos}"
                )
            n = word & LENGTH_MASK
            start = self._pos - 8 - n - (n & 1)
            if start < 0:
                raise MediumError(f"{self.name}: damaged image before byte {self._pos}")
            self._pos = start
            self._block -= 1
            return RECORD
