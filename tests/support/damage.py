"""Damaged copies of a backup set on every backend, for the damaged-tape corpus (tests/restore/test_damaged_tapes.py).

A `Medium` is the bytes of one written set as they lie on a backend, seen as one address space: a SIMH `.tap` image
(record framing and filemarks included), a directory volume (its files `0-label.tar`, `1-archive.tar`,
`2-catalog.tar` one after the other), or a stream (the archive file alone). `segments()` says where label, archive
and catalog lie in it; `damaged_copy()` writes a copy cut at a byte, with bytes flipped, or with records zeroed;
`damaged_records()` says which archive records such damage touches (a whole record counts as damaged when any of its
bytes or its framing is), so a test can tell which members lie in an undamaged region.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Dict, List, Optional, Sequence, Set, Tuple

from tests.support.tapes import tap_records

DIR_FILES = ("0-label.tar", "1-archive.tar", "2-catalog.tar")


@dataclasses.dataclass
class Span:
    """Bytes [start, end) of the medium: tape file `file`, record `record` (None: a filemark), whose data are
    `length` bytes from `local` in the file that holds them."""

    start: int
    end: int
    file: int
    record: Optional[int]
    local: int = 0
    length: int = 0


@dataclasses.dataclass
class Damage:
    cut: Optional[int] = None  # the copy ends before this byte
    flips: Sequence[int] = ()  # bytes inverted
    zeroed: Sequence[Tuple[int, int]] = ()  # (tape file, record) whose data is all zeros

    def describe(self) -> str:
        if self.cut is not None:
            return f"cut at byte {self.cut}"
        if self.flips:
            return f"{len(self.flips)} flipped byte(s) at {sorted(self.flips)[:12]}"
        return f"zeroed records {list(self.zeroed)}"


class Medium:
    """One written set on one backend (see the module docstring)."""

    def __init__(self, backend: str, path: str, record_size: int):
        self.backend, self.path, self.record_size = backend, path, record_size
        self.spans: List[Span] = []
        if backend == "simh":
            pos = 0
            for number, records in enumerate(tap_records(path)):
                for index, (data, length) in enumerate(records):
                    end = data + length + (length & 1) + 4
                    self.spans.append(Span(data - 4, end, number, index, data, length))
                    pos = end
                if pos + 4 <= os.path.getsize(path):
                    self.spans.append(Span(pos, pos + 4, number, None))
                    pos += 4
        else:
            names = DIR_FILES if backend == "dir" else (None,)
            base = 0
            for number, name in enumerate(names):
                size = os.path.getsize(self._file(number) if name else path)
                for index in range(-(-size // record_size)):
                    start = base + index * record_size
                    end = min(start + record_size, base + size)
                    self.spans.append(Span(start, end, number, index, index * record_size, end - start))
                base += size
        self.size = self.spans[-1].end
        self.archive_file = 0 if backend == "stream" else 1

    def _file(self, number: int) -> str:
        return os.path.join(self.path, DIR_FILES[number])

    def segments(self) -> Dict[str, Tuple[int, int]]:
        """Where each tape file of the set lies: {"label": (start, end), "archive": ..., "catalog": ...}."""
        out = {}
        for number, name in ((0, "label"), (1, "archive"), (2, "catalog")):
            if self.backend == "stream":
                number, name = (0, "archive") if number == 0 else (None, None)
            inside = [s for s in self.spans if s.file == number and s.record is not None]
            if name and inside:
                out[name] = (inside[0].start, inside[-1].end)
        return out

    def records(self, file: int) -> List[Span]:
        return [s for s in self.spans if s.file == file and s.record is not None]

    def damaged_records(self, damage: Damage) -> Set[int]:
        """Archive records the damage touches; a cut or a damaged filemark next to the archive takes all
        records from there on (after the cut nothing is left, after a filemark the tape files run together)."""
        archive = self.records(self.archive_file)
        out: Set[int] = set()
        hits = list(damage.flips)
        if damage.cut is not None and damage.cut < self.size:
            hits.append(damage.cut)
        for pos in hits:
            span = next(s for s in self.spans if s.start <= pos < s.end)
            # A cut ends everything; so does a damaged length word or filemark of a .tap image (the format has
            # no sync marks: the records after it are found only if the backend's resync finds them).
            framing = span.record is None or not span.local <= pos < span.local + span.length
            ends = damage.cut == pos or (self.backend == "simh" and framing)
            if span.file > self.archive_file or (span.file == self.archive_file and span.record is None):
                continue  # the catalog (or the filemark after the archive): the archive is whole
            first = span.record if span.file == self.archive_file else (0 if ends else None)
            if first is not None:
                out.update(range(first, len(archive) if ends else first + 1))
        for file, record in damage.zeroed:
            if file == self.archive_file:
                out.add(record)
        return out

    def damaged_copy(self, damage: Damage, where: str) -> str:
        """Write the damaged copy under directory `where`; returns the name to give -f."""
        if self.backend == "dir":
            dest = os.path.join(where, "vol")
            shutil.copytree(self.path, dest)
            pieces = [self._file(n) for n in range(len(DIR_FILES))]
            offsets, base = [], 0
            for piece in pieces:
                offsets.append(base)
                base += os.path.getsize(piece)

            def locate(pos: int) -> Tuple[str, int]:
                number = max(n for n, off in enumerate(offsets) if off <= pos)
                return os.path.join(dest, DIR_FILES[number]), pos - offsets[number]

            if damage.cut is not None:
                name, at = locate(damage.cut)
                with open(name, "r+b") as f:
                    f.truncate(at)
                for later in DIR_FILES[DIR_FILES.index(os.path.basename(name)) + 1 :]:
                    os.unlink(os.path.join(dest, later))
            edits = [(locate(p), None) for p in damage.flips]
        else:
            dest = os.path.join(where, os.path.basename(self.path))
            shutil.copyfile(self.path, dest)
            if damage.cut is not None:
                with open(dest, "r+b") as f:
                    f.truncate(damage.cut)
            edits = [((dest, p), None) for p in damage.flips]
        for (name, at), _ in edits:
            with open(name, "r+b") as f:
                f.seek(at)
                byte = f.read(1)
                f.seek(at)
                f.write(bytes([byte[0] ^ 0xFF]))
        for file, record in damage.zeroed:
            span = self.records(file)[record]
            name = os.path.join(dest, DIR_FILES[file]) if self.backend == "dir" else dest
            with open(name, "r+b") as f:
                f.seek(span.local)
                f.write(bytes(span.length))
        return dest
