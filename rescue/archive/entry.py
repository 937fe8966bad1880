"""One member of an archive being read and its data stream (`Entry`), as rescue.archive.reader yields them.

The entry reads its data through the reader's record stream; an unreadable record in the data raises
`DamagedMemberError` (the reader resyncs at the next header), the end of the tape file inside the data
`TruncatedArchiveError` (both rescue.archive.reader).  An entry is valid until the iteration moves on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Optional

from rescue.archive import member as m
from rescue.archive.record_reader import BadRecordError

if TYPE_CHECKING:
    from rescue.archive.reader import ArchiveReader


class Entry:
    """One member and its data stream. Valid until the iteration moves on."""

    __slots__ = ("member", "acls", "data_size", "_reader", "_remaining", "_pad", "_closed", "_data_end")

    def __init__(self, reader: ArchiveReader, member: m.Member, acls: dict, data_size: int, pad: int):
        self.member = member
        self.acls = acls  # {"access": text, "default": text} from SCHILY.acl.* (GNU tar --acls)
        self.data_size = data_size  # bytes of stored data (for a sparse member: the sum of its regions)
        self._reader = reader
        self._remaining = data_size
        self._pad = pad
        self._closed = False
        self._data_end = reader._rr.consumed + data_size  # stream offset where the data ends

    def chunks(self, limit: Optional[int] = None) -> Iterator[memoryview]:
        """The next `limit` bytes of data (default: all that is left) as views into the tape records, no copy;
        each view is valid until the next one is taken."""
        rr = self._reader._rr
        want = self._remaining if limit is None else min(limit, self._remaining)
        while want > 0:
            got = 0
            try:
                for chunk in rr.chunks(want):
                    want -= len(chunk)
                    got += len(chunk)
                    self._remaining -= len(chunk)
                    yield chunk
            except BadRecordError as e:
                raise self._reader._data_lost(self, e) from None
            if got == 0:
                raise self._reader._truncated(self)

    def take_all(self) -> Optional[memoryview]:
        """All the data left as one view when it lies in the current record (small files), else None."""
        view = self._reader._rr.take(self._remaining)
        if view is not None:
            self._remaining = 0
        return view

    def readinto(self, buf) -> int:
        """Fill buf with the next data bytes; returns the count, 0 at the end of the data."""
        view = memoryview(buf).cast("B")
        want = min(len(view), self._remaining)
        if want == 0:
            return 0
        rr = self._reader._rr
        try:
            got = rr.readinto(view[:want])
        except BadRecordError as e:
            raise self._reader._data_lost(self, e) from None
        self._remaining -= got
        if got < want:
            raise self._reader._truncated(self)
        return got

    def read(self, n: int = -1) -> bytes:
        """Up to n bytes of data (all that is left when n < 0)."""
        if n < 0 or n > self._remaining:
            n = self._remaining
        buf = bytearray(n)
        got = self.readinto(buf) if n else 0
        return bytes(buf[:got])

    def skip(self) -> None:
        """Drop the rest of the data (and the padding to the next header)."""
        self._reader._finish(self)

    @property
    def remaining(self) -> int:
        return self._remaining
