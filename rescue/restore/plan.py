"""Restore planning: which catalog members a selection needs, and the one forward pass over the tape that reads them.

Pure functions, no I/O; the catalog arrives as an iterable of Members in tape order (rescue.tapeset.catalog.open_catalog).

1. Selection (`select`): a member is wanted when the PathMatcher selects its path, plus two kinds of members
   that make the restored tree whole:
   - the directories above a selected path, so they are created with their archived owner, mode and mtime
     rather than defaults;
   - the first member of a hard link set when a later link was selected but that first member was not: tar
     stores the data once, under the first name, and later names are links to it (GNU tar manual, "Hard
     Links"), so the link cannot be restored without it.
   Only these extra paths are kept in memory; the rest of the selection is a predicate, so a catalog of a
   million members can stream through both passes.
2. Runs (`plan_runs`): every member's extent on tape runs from its first header (catalog record and offset) to
   the next member's first header. Wanted members are taken in tape order; a wanted member joins the current
   run when the records between the run's last record and its first record (the gap) are at most
   `seek_threshold`, and the gap is then read through. A larger gap ends the run, and the next run is reached
   by seeking (MTSEEK, or spacing records where the drive has no seek). Runs only move forward: no rewind in
   the middle. The first run starts at record 0 (the tape is positioned at the start of the archive) unless
   its first member lies more than `seek_threshold` records in, when it is reached by a seek as well.
3. Totals: records read (each run's span, gaps included), seeks, files and data bytes, and an estimated time
   from a read rate and a cost per seek; members and bytes per asked PATH (`PathTally`), so a PATH that
   matches nothing is named ("not found on tape", as GNU tar names it) while the others are restored.

The restore job (rescue.restore.job) follows the same runs: it seeks exactly where a run has `seek=True`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, List, Optional, Set

from rescue.archive.member import DIR, FILE, HARDLINK, Member
from rescue.archive.tarformat import BLOCKSIZE, check_record_size, padded
from rescue.errors import RescueError
from rescue.pathmatch import PathMatcher
from rescue.progress import human_bytes, human_duration

# Gaps up to this many bytes are read through rather than sought over. A locate on LTO takes seconds while
# streaming 64 MiB takes about half a second at LTO-4 speed, so shorter gaps are cheaper to read.
DEFAULT_SEEK_THRESHOLD_BYTES = 64 * 1024 * 1024

# Figures for the time estimate: a streaming LTO drive (LTO-4 native 120 MB/s) and a short locate.
TAPE_READ_RATE = 120e6
TAPE_SEEK_SECONDS = 8.0
# A .tap image, a directory or a stream lives on a disk.
DISK_READ_RATE = 400e6
DISK_SEEK_SECONDS = 0.01


class PlanError(RescueError):
    """The catalog cannot drive a seeking restore (no record positions, members out of order)."""


def default_seek_threshold(record_size: int) -> int:
    """DEFAULT_SEEK_THRESHOLD_BYTES in records of this size (at least 1)."""
    return max(1, DEFAULT_SEEK_THRESHOLD_BYTES // max(record_size, BLOCKSIZE))


def ancestors(path: str) -> Iterable[str]:
    """`a/b/c` -> `a/b`, `a` (nearest first)."""
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


class Selection:
    """What a restore wants: the matcher's choice plus the extra directories and hard link targets."""

    def __init__(self, matcher: PathMatcher):
        self.matcher = matcher
        self.extra_dirs: Set[str] = set()
        self.extra_links: Set[str] = set()
        self.grew = False  # the run pass found a hard link whose data holder was not wanted

    def _add_ancestors(self, path: str) -> None:
        for parent in ancestors(path):
            # Stop at the first parent already known: everything above it was handled when it was added.
            if parent in self.extra_dirs or self.matcher.selected(parent):
                break
            self.extra_dirs.add(parent)

    def note(self, member: Member) -> None:
        """First pass: record what a selected member needs besides itself."""
        if not self.matcher.selected(member.path):
            return
        self._add_ancestors(member.path)
        link = member.linkname
        if (
            member.type == HARDLINK
            and link
            and link not in self.extra_links
            and not self.matcher.selected(link)
        ):
            self.extra_links.add(link)
            self._add_ancestors(link)

    def check_link(self, member: Member) -> None:
        """Run pass: a wanted hard link whose target is not wanted adds the target (and asks for a new pass)."""
        link = member.linkname
        if link and link not in self.extra_links and not self.matcher.selected(link):
            self.extra_links.add(link)
            self._add_ancestors(link)
            self.grew = True

    def wants(self, member: Member) -> bool:
        return (
            self.matcher.selected(member.path)
            or (member.type == DIR and member.path in self.extra_dirs)
            or member.path in self.extra_links
        )


class PathTally:
    """Members and data bytes per asked PATH (counted once for every PATH that covers a member)."""

    def __init__(self, matcher: PathMatcher):
        self.matcher = matcher
        self.files = [0] * len(matcher.includes)
        self.bytes = [0] * len(matcher.includes)

    def add(self, member: Member) -> None:
        """Count a member the matcher selected (not a directory or link target brought along)."""
        size = member.size if member.type == FILE else 0
        for i in self.matcher.includes_matching(member.path):
            self.files[i] += 1
            self.bytes[i] += size

    def rows(self) -> List[tuple]:
        """(PATH, members, bytes) in the order the PATHs were given."""
        return list(zip(self.matcher.includes, self.files, self.bytes))

    def not_found(self) -> List[str]:
        return unmatched(self.rows())


def unmatched(rows: Iterable[tuple]) -> List[str]:
    """The PATHs of (PATH, members, bytes) rows that matched no member."""
    return [path for path, files, _ in rows if files == 0]


def select(members: Iterable[Member], matcher: PathMatcher) -> Selection:
    """First pass over the catalog."""
    selection = Selection(matcher)
    for member in members:
        selection.note(member)
    return selection


@dataclasses.dataclass
class Run:
    """A stretch of records read in one go."""

    start: int  # first record read (0 for a first run read from the start of the archive)
    end: int  # last record read (inclusive)
    seek: bool  # reached by seeking to `first_record`/`first_offset`
    first_record: int  # position of the run's first wanted member
    first_offset: int
    first_path: str
    members: int = 0
    bytes: int = 0

    @property
    def records(self) -> int:
        return self.end - self.start + 1


@dataclasses.dataclass
class Plan:
    record_size: int
    seek_threshold: int
    runs: List[Run]
    files: int  # wanted members (of every type)
    bytes: int  # their data bytes
    archive_members: int  # the whole catalog
    archive_bytes: int
    archive_records: int  # records the archive spans (from the catalog's last member)
    estimated_seconds: float
    paths: List[tuple] = dataclasses.field(default_factory=list)  # (PATH, members, bytes) per asked PATH

    @property
    def not_found(self) -> List[str]:
        return unmatched(self.paths)

    @property
    def records(self) -> int:
        return sum(r.records for r in self.runs)

    @property
    def seeks(self) -> int:
        return sum(1 for r in self.runs if r.seek)

    def describe(self, archive_file: int = 1, max_runs: int = 8) -> List[str]:
        """Lines for a person: what is selected and how the tape will be read."""
        pct = 100.0 * self.records / self.archive_records if self.archive_records else 0.0
        lines = [
            f"selected: {self.files} of {self.archive_members} members, "
            f"{human_bytes(self.bytes)} of {human_bytes(self.archive_bytes)}",
            f"tape file {archive_file}: {len(self.runs)} run(s), {self.records} of {self.archive_records} records "
            f"of {human_bytes(self.record_size)} ({pct:.1f}%), {self.seeks} seek(s), "
            f"seek threshold {self.seek_threshold} records",
        ]
        for path, files, nbytes in self.paths:
            found = f"{files} members, {human_bytes(nbytes)}" if files else "not found on tape"
            lines.insert(-1, f"  {path}: {found}")
        for run in self.runs[:max_runs]:
            how = "seek to" if run.seek else "read from"
            lines.append(
                f"  {how} record {run.start}, read to record {run.end}: {run.members} members, "
                f"{human_bytes(run.bytes)} (first: {run.first_path})"
            )
        if len(self.runs) > max_runs:
            lines.append(f"  ... and {len(self.runs) - max_runs} more run(s)")
        lines.append(f"estimated time: {human_duration(self.estimated_seconds)}")
        return lines

    def to_json(self) -> dict:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "records": self.records,
            "seeks": self.seeks,
            "archive_records": self.archive_records,
            "record_size": self.record_size,
            "runs": [[r.start, r.end, r.seek] for r in self.runs],
            "paths": [{"path": p, "files": f, "bytes": b} for p, f, b in self.paths],
            "estimated_seconds": round(self.estimated_seconds, 1),
        }


def _position(member: Member, record_size: int) -> int:
    if member.record is None or member.offset is None:
        raise PlanError(
            f"catalog entry {member.path!r} has no tape position; restore with --no-catalog "
            "or write a new catalog with 'rescue catalog rebuild'"
        )
    return member.record * record_size + member.offset


def extents(members: Iterable[Member], record_size: int) -> Iterable[tuple]:
    """(member, start byte, end byte) in tape order; a member ends where the next one's first header starts.
    The last member ends after one header block and its padded data (its pax headers are not known here)."""
    prev: Optional[Member] = None
    prev_start = 0
    for member in members:
        start = _position(member, record_size)
        if prev is not None:
            if start <= prev_start:
                raise PlanError(
                    f"catalog is not in tape order at {member.path!r}; write a new catalog with "
                    "'rescue catalog rebuild'"
                )
            yield prev, prev_start, start
        prev, prev_start = member, start
    if prev is not None:
        data = padded(prev.size) if prev.type == FILE else 0
        yield prev, prev_start, prev_start + BLOCKSIZE + data


def plan_runs(
    members: Iterable[Member],
    selection: Selection,
    record_size: int,
    seek_threshold: Optional[int] = None,
    read_rate: float = TAPE_READ_RATE,
    seek_seconds: float = TAPE_SEEK_SECONDS,
) -> Plan:
    """Second pass over the catalog: group the wanted members into runs (see the module docstring)."""
    check_record_size(record_size, f"catalog record size {record_size}")
    threshold = default_seek_threshold(record_size) if seek_threshold is None else max(0, seek_threshold)
    runs: List[Run] = []
    tally = PathTally(selection.matcher)
    files = nbytes = total_members = total_bytes = 0
    last_end = 0
    current: Optional[Run] = None
    for member, start, end in extents(members, record_size):
        total_members += 1
        total_bytes += member.size if member.type == FILE else 0
        last_end = end
        if not selection.wants(member):
            continue
        if member.type == HARDLINK:
            selection.check_link(member)
        if tally.files and selection.matcher.selected(member.path):
            tally.add(member)
        first = start // record_size
        last = (end - 1) // record_size
        size = member.size if member.type == FILE else 0
        files += 1
        nbytes += size
        prev_end = current.end if current is not None else -1
        if current is None or first - prev_end - 1 > threshold:
            seek = current is not None or first > threshold
            current = Run(
                start=first if seek else 0,
                end=last,
                seek=seek,
                first_record=member.record,
                first_offset=member.offset,
                first_path=member.path,
            )
            runs.append(current)
        current.end = max(current.end, last)
        current.members += 1
        current.bytes += size
    archive_records = (last_end + record_size - 1) // record_size
    plan = Plan(
        record_size=record_size,
        seek_threshold=threshold,
        runs=runs,
        files=files,
        bytes=nbytes,
        archive_members=total_members,
        archive_bytes=total_bytes,
        archive_records=archive_records,
        estimated_seconds=0.0,
        paths=tally.rows(),
    )
    plan.estimated_seconds = plan.records * record_size / read_rate + plan.seeks * seek_seconds
    return plan


def plan_restore(
    open_members: Callable[[], Iterable[Member]],
    matcher: PathMatcher,
    record_size: int,
    seek_threshold: Optional[int] = None,
    read_rate: float = TAPE_READ_RATE,
    seek_seconds: float = TAPE_SEEK_SECONDS,
) -> tuple:
    """Both passes: `open_members()` is called twice and must give the catalog's members in tape order each
    time. Returns (selection, plan)."""
    if matcher.includes:
        selection = select(open_members(), matcher)
    else:
        # Everything (less excludes): no directory above a selected path can be missing (an exclude covers
        # what is below it), so only a hard link to an excluded member needs more; the run pass notices that,
        # and only then is the catalog read once more. A full restore reads it twice instead of three times.
        selection = Selection(matcher)
    plan = plan_runs(open_members(), selection, record_size, seek_threshold, read_rate, seek_seconds)
    if selection.grew:
        selection.grew = False
        plan = plan_runs(open_members(), selection, record_size, seek_threshold, read_rate, seek_seconds)
    return selection, plan
