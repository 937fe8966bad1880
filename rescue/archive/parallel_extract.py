"""Extraction across processes: `open_extractor(root, jobs=N)` gives an Extractor whose regular files are
written by worker processes (rescue.archive.workers) while this process goes on reading the archive.

Why: restoring many small files costs mostly kernel time (create, write, chown, utime, link: GNU tar spends
90% of its time there) and one process runs it on one core; worker processes use the others, where threads
in one process would mostly wait for the GIL and for each other's directory locks.

What stays here: reading, name checks, directory resolution and creation, directories and their delayed
metadata, symlinks, hard links, devices, fifos, files with xattrs or ACLs, sparse files and files over
workers.MAX_FILE (written straight from the tape records), and the order of completions.  Every member the
parallel extractor accepts gets `on_done(member, ok)` in the order of the extract() calls, once it is complete:
a file only when its worker has written it under its name and its SHA-256 (computed by the worker on the
buffer it wrote) matched; a journal fed from on_done never names an incomplete member, so `--resume` stays
exact.  The files counter, `member.sha256` and checksum warnings follow at completion too.

Ordering rules that keep the result the same as one process's: a member whose name (or a directory on its
path) is a file still being written by a worker waits for it, and so does a hard link to it; a file whose name
is a directory this process holds open or still has to settle is written here; owner names are looked up only
once the target's etc/passwd and etc/group being written are complete; an empty directory is removed
(to put something in its place) only when the workers have finished; directory metadata is set only when
they have all finished.  Workers start at the START_AFTER-th regular file, so a tiny restore never forks; with
one usable CPU or jobs=1, `open_extractor` returns the single-process Extractor.

A worker that dies raises WorkerDied (a RescueError naming the member it was writing); an interrupt or any
error inside the extractor kills the workers at close() without waiting for them.
"""

from __future__ import annotations

import collections
import os
from typing import Deque, Dict, List, Optional

from rescue.archive import background_hash, workers
from rescue.archive import member as m
from rescue.archive.dirs import Refused, split
from rescue.archive.extract import Extractor
from rescue.archive.reader import Entry

START_AFTER = 128  # regular files restored in this process before the workers start


def default_jobs() -> int:
    """Processes for a restore: the CPUs this process may use."""
    return background_hash.usable_cpus()


def open_extractor(target_root, *, jobs: Optional[int] = None, **options) -> Extractor:
    """An Extractor for `jobs` processes (default: the usable CPUs); 1 is the single-process one."""
    jobs = default_jobs() if jobs is None else jobs
    if jobs <= 1:
        return Extractor(target_root, **options)
    return ParallelExtractor(target_root, jobs=jobs, **options)


class ParallelExtractor(Extractor):
    def __init__(self, target_root, *, jobs: int = 2, **options):
        super().__init__(target_root, **options)
        self.jobs = jobs
        self._pool: Optional[workers.Pool] = None
        self._files_seen = 0
        self._seq = 0
        # [member, ok (None while a worker writes it), expected sha256] in extract() order, from the oldest
        # member whose completion is not yet reported.
        self._tickets: Deque[list] = collections.deque()
        self._by_seq: Dict[int, tuple] = {}  # seq -> (ticket, name key)
        self._writing: Dict[str, int] = {}  # name key -> seq of the last file sent for it

    # -- ordering against files still being written

    def _extract(self, entry: Entry, parts: List[str], expected: Optional[str]) -> Optional[bool]:
        if self._writing:
            self._wait_name("/".join(parts))
            member = entry.member
            if member.type == m.HARDLINK:
                try:
                    self._wait_name("/".join(split(member.linkname)))
                except Refused:
                    pass  # refused the same way below
        return super()._extract(entry, parts, expected)

    def _wait_name(self, key: str) -> None:
        seq = self._writing.get(key)
        if seq is not None:
            self._guarded(self._pool.wait_for, lambda: seq not in self._by_seq)

    def _dir_miss(self, key: str) -> None:
        if self._writing:
            self._wait_name(key)

    def _owner(self, member: m.Member):
        if not self.numeric_owner and self._writing:
            # Names map through the target's own etc/passwd and etc/group: written before the members after them.
            self._wait_name("etc/passwd")
            self._wait_name("etc/group")
        return super()._owner(member)

    def _before_rmdir(self) -> None:
        self._drain()
        if self._pool is not None:
            self._pool.gen += 1  # workers drop their cached directory fds

    def _settle_dirs(self, parts: List[str]) -> None:
        self._drain()
        super()._settle_dirs(parts)

    # -- regular files

    def _file(self, entry: Entry, parts: List[str], expected: Optional[str]) -> Optional[bool]:
        member = entry.member
        self._files_seen += 1
        key = "/".join(parts)
        if (
            self._files_seen <= START_AFTER
            or member.sparse is not None
            or member.size > workers.MAX_FILE
            or member.xattrs
            or entry.acls
            or key in self._pending
            or key in self._dirs.fds
            or (self._pool is not None and self._pool.broken)
        ):
            return super()._file(entry, parts, expected)
        self._dir(parts[:-1])  # made and checked here: the worker only opens it, without following links
        if self._pool is None:
            self._start()
        return self._send_file(entry, parts, key, expected)

    def _send_file(self, entry: Entry, parts: List[str], key: str, expected: Optional[str]) -> None:
        member = entry.member
        size = member.size
        pool = self._pool
        dirkey = "/".join(parts[:-1])
        # Before the ring space is taken: the owner lookup may wait for files being written.
        uid, gid = self._owner(member) if self.same_owner else (-1, -1)
        w, off, slot = self._guarded(pool.reserve, size, dirkey)
        try:  # a damaged record here leaves the pool as it was: the space taken is not committed
            if size:
                view = entry.take_all()
                if view is not None:
                    slot[:] = view
                else:
                    done = 0
                    for chunk in entry.chunks():
                        slot[done : done + len(chunk)] = chunk
                        done += len(chunk)
        finally:
            slot.release()
        self.bytes += size
        perm = member.mode & 0o777
        chmod = member.mode != perm or perm & self._umask != 0
        hashing = expected is not None or self.checksums
        self._seq += 1
        seq = self._seq
        ticket = [member, None, expected]
        self._tickets.append(ticket)
        self._by_seq[seq] = (ticket, key)
        self._writing[key] = seq
        item = (seq, dirkey, parts[-1], off, size, perm, member.mode if chmod else -1, uid, gid)
        self._guarded(pool.commit, w, off, (*item, member.mtime_ns, hashing))

    def _start(self) -> None:
        if self._hasher is not None:
            self._hasher.close()  # no thread of ours runs while forking; it restarts when needed
            self._hasher = None
        self._pool = workers.Pool(
            self.jobs,
            self._root_fd,
            overwrite=self.overwrite,
            unnamed=self._unnamed,
            atime_ns=self._atime,
            on_result=self._on_result,
            describe=lambda seq: self._by_seq[seq][0][0].path,
        )

    def _guarded(self, call, *args):
        """Run a pool operation; an interrupt or error in the middle leaves the pipes in an unknown state, so
        the pool is marked broken and its workers are killed at close()."""
        try:
            return call(*args)
        except BaseException:
            if self._pool is not None:
                self._pool.broken = True
            raise

    # -- completions

    def _on_result(self, result: workers.Result) -> None:
        seq, error, errno, digest, removed = result
        ticket, key = self._by_seq.pop(seq)
        if self._writing.get(key) == seq:
            del self._writing[key]
        member = ticket[0]
        if removed:
            self._dirs.stale = True
        if error is not None:
            if errno:
                self._warn_errno(member.path, error, errno)
            else:
                self._warn(member.path, error)
            ticket[1] = False
        else:
            ticket[1] = self._verified(member, digest, ticket[2])
        tickets = self._tickets
        while tickets and tickets[0][1] is not None:
            member, ok, _ = tickets.popleft()
            if self.on_done is not None:
                self.on_done(member, ok)

    def _warn_errno(self, path: str, message: str, errno: int) -> None:
        """Warn from inside an except clause, as for a file written in this process: the warning callback may
        read the error at hand (a restore ends at ENOSPC or EDQUOT, rescue.restore.job)."""
        try:
            raise OSError(errno, os.strerror(errno))
        except OSError:
            self._warn(path, message)

    def _completed(self, member: m.Member, ok: bool) -> None:
        if self._tickets:
            self._tickets.append([member, ok, None])  # reported after the files before it
            if len(self._tickets) % 64 == 0 and self._pool is not None and not self._pool.broken:
                # A long run of members without files: send the last batch and take the reports, so the
                # completions (and the journal) keep up.
                self._guarded(self._pool.poll)
        elif self.on_done is not None:
            self.on_done(member, ok)

    def _drain(self) -> None:
        if self._pool is not None and not self._pool.broken:
            self._guarded(self._pool.drain)

    def finish(self) -> None:
        """Wait for the workers, report the last completions, then set the directories' metadata."""
        if self._pool is not None:
            if self._pool.broken:
                self._stop(kill=True)
            else:
                self._drain()
        super().finish()

    def _stop(self, kill: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(kill=kill)

    def close(self) -> None:
        """Stop the workers: after the files they were given (members already accepted are completed, as one
        process would have done), or at once when the pool is broken (interrupt, a worker died)."""
        try:
            self._drain()
        finally:
            if self._pool is not None:
                self._stop(kill=self._pool.broken)
            super().close()
