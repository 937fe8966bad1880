"""The catalog pass of a restore: follow the plan along the tape (steps 5 and 6 of rescue.restore.job).

The wanted catalog members are taken in tape order. Where the plan starts a run by seeking (and after a loss,
and on `--resume`), `ArchiveReader.seek_record()` positions the tape at the member's first header; inside a run
the members in between are read through. The member found at a planned position must be the one the catalog
names there, else the catalog does not describe this tape (`CatalogMismatchError`, exit 2, nothing guessed). A
member in an unreadable record or a damaged stretch is named as lost and the pass goes on with the next wanted
member, seeking to it: the catalog knows where it starts. Where the archive seems to end (zero blocks) before a
member the catalog names, the pass seeks to that member once: a zeroed record loses only the members in it.

Extraction, journal and the sorting of failures are the job's (`take`): this module only decides where to read.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Optional

from rescue.archive.member import Member
from rescue.archive.reader import ArchiveReader, TruncatedArchiveError
from rescue.archive.record_reader import BadRecordError
from rescue.restore.plan import Plan, Selection
from rescue.tape.base import TapeError
from rescue.tapeset.opener import CatalogMismatchError


class CatalogPass:
    """One walk over the wanted catalog members. `job` gives `take(entry, member) -> lost`, `lose(member, why)`
    and `state` (the journal of an interrupted run, or None)."""

    def __init__(self, job, reader: ArchiveReader, tape_name: str):
        self.job = job
        self.reader = reader
        self.tape_name = tape_name
        self._entries: Optional[Iterator] = None
        self._pending = None  # an entry read past a lost member, still to be matched
        self._reread_at = None  # the member sought to after the archive ended early

    def run(self, members: Iterable[Member], selection: Selection, plan: Plan) -> None:
        reader, state, job = self.reader, self.job.state, self.job
        seek_at = {(r.first_record, r.first_offset) for r in plan.runs if r.seek}
        must_seek = state is not None and state.last is not None  # resume: straight to the next member
        for m in members:
            if not selection.wants(m):
                continue
            pos = (m.record, m.offset)
            if state is not None and state.done(*pos):
                continue
            if must_seek or pos in seek_at:
                self._pending = None
                try:
                    reader.seek_record(m.record, m.offset)
                except BadRecordError as e:
                    job.lose(m, str(e))
                    must_seek = True
                    continue
                self._entries = iter(reader)
                must_seek = False
            elif self._entries is None:
                self._entries = iter(reader)
            entry = self.find(m)
            if entry is not None and job.take(entry, m):
                must_seek = True  # its data was unreadable: seek to the next wanted member, not guess past it

    def find(self, m: Member):
        """Read on to the catalog member `m`, skipping what lies before it; None if it was lost (in a damaged
        stretch: the reader has resynchronised after it)."""
        want = (m.record, m.offset)
        while True:
            if self._pending is not None:
                entry, self._pending = self._pending, None
            else:
                entry = next(self._entries, None)
            if entry is None:
                if self.read_on_at(m):
                    continue
                sought = self._reread_at == want
                self.job.lose(
                    m,
                    "nothing readable where the catalog places it"
                    if sought
                    else "the archive ended before it",
                )
                return None
            em = entry.member
            here = (em.record, em.offset)
            if here < want:
                entry.skip()
                continue
            if here == want and em.path == m.path:
                return entry
            if here > want and any(a <= want < b for a, b in self.reader.lost_ranges):
                # The reader skipped a damaged stretch that held m; `entry` may be the next one wanted.
                self._pending = entry
                self.job.lose(m, "in a damaged stretch of the tape")
                return None
            raise CatalogMismatchError(
                f"{self.tape_name}: the catalog does not match this tape: it places {m.path!r} at record "
                f"{m.record} offset {m.offset}, the tape has {em.path!r} at record {em.record} offset "
                f"{em.offset}; restore with --no-catalog (one streaming pass) or write a catalog with "
                "'rescue catalog rebuild'"
            )

    def read_on_at(self, m: Member) -> bool:
        """The archive ended (zero blocks) before a member the catalog places further on: a zeroed stretch of a
        damaged tape, or its real end. Seek to the member, once per member, to tell; a zeroed record then loses
        only the members in it."""
        if self._reread_at == (m.record, m.offset):
            return False
        self._reread_at = (m.record, m.offset)
        reader = self.reader
        try:
            reader.seek_record(m.record, m.offset)
        except (BadRecordError, TapeError):
            return False

        def entries():
            try:
                yield from reader
            except TruncatedArchiveError:  # nothing where the catalog places m: lost, try the next one
                return

        self._entries = entries()
        return True
