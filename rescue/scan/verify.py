"""`rescue verify`: read the whole archive and check it against its catalog, or against a live tree.

The set is opened by rescue.tapeset.opener, with the policy restore uses: the same catalog is chosen, the same
disagreement between label and catalog is fatal (exit 2), and a damaged or missing catalog on the tape (or a
damaged label) is reported as a difference of "(tape)" while the archive is still read through.

Against the catalog (the tape's tape file 2, or `--catalog FILE`): the tape's members and the catalog's are
walked together in tape order, matched by position (record, offset). Reported: a member the catalog names but
the tape does not have (missing), one on the tape the catalog does not name (extra), a different path, type or
size at the same position, and a regular file whose SHA-256 differs; the counts are compared at the end. A tape
without a catalog is still read from end to end (every header and record readable).

Against a live tree (`--against ROOT`), like `tar --compare` (GNU tar manual, "Comparing Archive Members with the
File System"): for each member, the file under ROOT must exist with the same type, content (SHA-256 of both),
mode, owner (numeric), a regular file's mtime (whole seconds, as tar compares), symlink target, and a hard link
must be a link to its target. Files under ROOT that the archive lacks are not looked for (tar --compare does not
either). Each regular file is hashed twice, the tape's data and the live file: with a second usable CPU the live
file of MIN_SIZE bytes or more is hashed in a second thread while this one hashes the tape's data (hashlib and
os.read release the GIL), so the two streams take the time of one.

Differences go to stdout, one line each (`path: what differs`); messages to stderr. Exit 0 when nothing
differs, 1 when something does, 2 when the tape cannot be read at all.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import os
import stat
import sys
from typing import IO, Iterable, Iterator, List, Optional

from rescue.archive.background_hash import MIN_SIZE, usable_cpus
from rescue.archive.member import BLOCKDEV, CHARDEV, DIR, FIFO, FILE, HARDLINK, SYMLINK, Member
from rescue.archive.reader import ArchiveReader, DamagedMemberError, TruncatedArchiveError
from rescue.archive.record_reader import BadRecordError
from rescue.errors import EXIT_OK, EXIT_PARTIAL
from rescue.progress import Progress
from rescue.scan.rebuild import hash_entry
from rescue.tape.base import Tape
from rescue.tapeset.opener import TapeSet, open_set

_KIND = {
    stat.S_IFREG: FILE,
    stat.S_IFDIR: DIR,
    stat.S_IFLNK: SYMLINK,
    stat.S_IFCHR: CHARDEV,
    stat.S_IFBLK: BLOCKDEV,
    stat.S_IFIFO: FIFO,
}
CHUNK = 1024 * 1024


@dataclasses.dataclass
class VerifyOptions:
    catalog: Optional[str] = None
    archive_file: Optional[int] = None  # where the archive is when the label cannot say (--archive-file)
    against: Optional[str] = None
    no_catalog: bool = False
    messages: Optional[IO[str]] = None
    results: Optional[IO[str]] = None  # where difference lines go (stdout)


@dataclasses.dataclass
class VerifyResult:
    members: int = 0
    bytes: int = 0
    catalog_members: Optional[int] = None
    checked_against: Optional[str] = None
    differences: List[str] = dataclasses.field(default_factory=list)
    records_read: int = 0
    exit_code: int = EXIT_OK

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while True:
            data = os.read(fd, CHUNK)
            if not data:
                break
            h.update(data)
    finally:
        os.close(fd)
    return h.hexdigest()


def _sparse_sha256(path: str, regions) -> str:
    """The digest the catalog keeps for a sparse file: its data regions in map order."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for offset, length in regions:
            f.seek(offset)
            left = length
            while left > 0:
                data = f.read(min(left, CHUNK))
                if not data:
                    break
                h.update(data)
                left -= len(data)
    return h.hexdigest()


def _live_digest(path: str, member: Member) -> str:
    """The digest of the live file as the catalog keeps it (a sparse file's data regions in map order)."""
    return _file_sha256(path) if member.sparse is None else _sparse_sha256(path, member.sparse)


def live_sha256(path: str, member: Member) -> Optional[str]:
    """_live_digest for the early read in another thread; None when the file cannot be read (compare_live then
    reads again and reports why)."""
    try:
        return _live_digest(path, member)
    except OSError:
        return None


def compare_live(
    member: Member, root: str, digest: Optional[str], live: Optional[concurrent.futures.Future] = None
) -> List[str]:
    """What differs between an archive member and the file under root (tar --compare's checks); `live`, when
    given, is the live file's digest being computed already (live_sha256 in another thread)."""
    path = os.path.join(root, member.path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ["Warning: Cannot stat: No such file or directory"]
    except OSError as e:
        return [f"Cannot stat: {e.strerror}"]
    if member.type == HARDLINK:
        try:
            target = os.lstat(os.path.join(root, member.linkname))
        except OSError:
            return [f"Not linked to {member.linkname} (it is missing)"]
        same = (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino)
        return [] if same else [f"Not linked to {member.linkname}"]
    kind = _KIND.get(stat.S_IFMT(st.st_mode))
    if kind != member.type:
        return ["File type differs"]
    out = []
    if member.type != SYMLINK and stat.S_IMODE(st.st_mode) != member.mode:
        out.append("Mode differs")
    if st.st_uid != member.uid:
        out.append("Uid differs")
    if st.st_gid != member.gid:
        out.append("Gid differs")
    # Only a regular file's mtime: GNU tar's compare.c checks a symlink's target alone, and a directory's mtime
    # changes with its contents.
    if member.type == FILE and st.st_mtime_ns // 10**9 != member.mtime_ns // 10**9:
        out.append("Mod time differs")
    if member.type == SYMLINK:
        if os.readlink(path) != member.linkname:
            out.append("Symlink differs")
    elif member.type in (CHARDEV, BLOCKDEV):
        if (os.major(st.st_rdev), os.minor(st.st_rdev)) != (member.devmajor, member.devminor):
            out.append("Device number differs")
    elif member.type == FILE:
        if st.st_size != member.size:
            out.append("Size differs")
        elif digest is not None:
            # Not started early, or that read failed: read here, where the error surfaces as before.
            found = (live.result() if live is not None else None) or _live_digest(path, member)
            if found != digest:
                out.append("Contents differ")
    return out


def catalog_totals(catalog: Iterable[Member]):
    """(members, file data bytes) the catalog names: the totals of verify's progress line and its ETA."""
    members = data = 0
    for m in catalog:
        members += 1
        data += m.size if m.type == FILE else 0
    return members, data


class _Verify:
    def __init__(self, tape: Tape, options: VerifyOptions):
        self.tape = tape
        self.o = options
        self.out = options.messages if options.messages is not None else sys.stderr
        self.results = options.results if options.results is not None else sys.stdout
        self.result = VerifyResult(checked_against=options.against)
        self.live_hasher: Optional[concurrent.futures.ThreadPoolExecutor] = None
        if options.against and usable_cpus() > 1:
            self.live_hasher = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="verify-live")

    def differ(self, path: str, what: str) -> None:
        line = f"{path}: {what}"
        self.result.differences.append(line)
        print(line, file=self.results, flush=True)

    def on_warning(self, where: str, message: str) -> None:
        text = message if message.startswith(f"{where}: ") else f"{where}: {message}"
        print(f"rescue: warning: {text}", file=self.out, flush=True)

    def run(self) -> VerifyResult:
        o = self.o
        with open_set(
            self.tape, catalog=o.catalog, no_catalog=o.no_catalog, archive_file=o.archive_file
        ) as ts:
            if ts.label is not None:
                print(
                    f"{self.tape.name}: rescue backup of {ts.label.host}, {ts.label.created}", file=self.out
                )
            for text in ts.warnings:
                if text not in ts.defects:
                    self.on_warning(self.tape.name, text)
            for text in ts.defects:
                self.differ("(tape)", text)  # a damaged label or catalog is a defect of the tape
            if ts.catalog is None and ts.no_catalog_reason and not o.no_catalog:
                print(f"{ts.no_catalog_reason}: checking that the archive reads", file=self.out)
            try:
                self.scan(ts)
            finally:
                if self.live_hasher is not None:
                    self.live_hasher.shutdown(wait=True, cancel_futures=True)
        r = self.result
        if r.catalog_members is not None and r.catalog_members != r.members:
            self.differ("(archive)", f"{r.members} members on tape, {r.catalog_members} in the catalog")
        print(
            f"verified {r.members} members, {r.bytes} bytes, {r.records_read} records"
            + (f" against {r.checked_against}" if r.checked_against else "")
            + f": {len(r.differences)} difference(s)",
            file=self.out,
        )
        r.exit_code = EXIT_PARTIAL if r.differences else EXIT_OK
        return r

    def scan(self, ts: TapeSet) -> None:
        catalog_path = ts.catalog
        ts.space_to_archive()
        reader = ArchiveReader(self.tape, on_warning=self.on_warning)
        expected: Iterator[Member] = iter(())
        if catalog_path is not None:
            expected = ts.members()
            self.result.catalog_members = 0
        pending: Optional[Member] = None

        def next_expected() -> Optional[Member]:
            m = next(expected, None)
            if m is not None:
                self.result.catalog_members += 1
            return m

        if catalog_path is not None:
            pending = next_expected()
        members, data = catalog_totals(ts.members()) if catalog_path is not None else (None, None)
        progress = Progress("verify", data, members, stream=self.out, unit="members")
        truncated: List[TruncatedArchiveError] = []
        for entry in _until_truncated(reader, truncated):
            m = entry.member
            self.result.members += 1
            progress.update(m.size if m.type == FILE else 0, 1)
            here = (m.record, m.offset)
            while pending is not None and (pending.record, pending.offset) < here:
                self.differ(pending.path, "missing on tape (the catalog names it)")
                pending = next_expected()
            cat = None
            if pending is not None and (pending.record, pending.offset) == here:
                cat, pending = pending, next_expected()
            elif catalog_path is not None:
                self.differ(m.path, "on tape but not in the catalog")
            digest = live = None
            if self.live_hasher is not None and m.type == FILE and m.size >= MIN_SIZE:
                live = self.live_hasher.submit(live_sha256, os.path.join(self.o.against, m.path), m)
            try:
                if m.type == FILE:
                    digest = hash_entry(entry)
                    self.result.bytes += m.size
            except (DamagedMemberError, BadRecordError) as e:
                self.differ(m.path, f"unreadable ({e})")
                continue
            except TruncatedArchiveError as e:
                self.result.members -= 1  # cut in its data: not read
                truncated.append(e)
                break
            if cat is not None:
                if cat.path != m.path:
                    self.differ(m.path, f"the catalog names {cat.path!r} at this position")
                elif cat.type != m.type:
                    self.differ(m.path, f"type {m.type} on tape, {cat.type} in the catalog")
                elif m.type == FILE and cat.size != m.size:
                    self.differ(m.path, f"size {m.size} on tape, {cat.size} in the catalog")
                elif m.type == FILE and cat.sha256 and digest != cat.sha256:
                    self.differ(m.path, "SHA-256 differs from the catalog")
            if self.o.against:
                for what in compare_live(m, self.o.against, digest, live):
                    self.differ(m.path, what)
        if truncated:
            if self.result.members == 0:
                raise truncated[0]  # nothing could be read
            self.differ("(archive)", str(truncated[0]))
            after = 0
            while pending is not None:  # one line for all the catalog's members after the cut
                after += 1
                pending = next_expected()
            if after:
                self.differ("(archive)", f"{after} member(s) the catalog names after the cut are missing")
        while pending is not None:
            self.differ(pending.path, "missing on tape (the catalog names it)")
            pending = next_expected()
        progress.done()
        for start, end in reader.lost_ranges:
            self.differ("(archive)", f"damaged from record {start[0]} to record {end[0]}")
        self.result.records_read = reader.records_read


def _until_truncated(reader: ArchiveReader, truncated: list) -> Iterator:
    """The reader's entries; an archive that ends early ends the iteration, the error kept in `truncated`."""
    try:
        yield from reader
    except TruncatedArchiveError as e:
        truncated.append(e)


def run_verify(tape: Tape, options: VerifyOptions) -> VerifyResult:
    return _Verify(tape, options).run()
