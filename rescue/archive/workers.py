"""Worker processes that write small regular files for the parallel extractor, fed through a shared ring.

How data moves: one anonymous shared mapping (mmap, MAP_SHARED) is made before the workers are forked, one
region of `RING_PER_WORKER` bytes per worker.  The parent copies a file's data from the tape record into its
worker's region (a ring: space is taken at the head and given back, in order, as the worker reports files done)
and sends only a description over a pipe: a batch of tuples (sequence number, directory, name, ring offset,
size, permission bits, mode for fchmod or -1, uid, gid or -1, mtime in ns, hash or not), marshal-encoded behind
a 4-byte length.  File contents are never pickled or sent through a pipe.  A worker writes each file of a batch
the way this process would (rescue.archive.install: an unnamed inode linked into place when complete, else a
temporary name renamed), hashing the buffer it writes, and answers with one message per batch:
(sequence number, error or None, its errno or 0, SHA-256 hex or None, whether a directory in the way was
removed): the errno lets the parent tell a full target (ENOSPC), which ends a restore, from a per-file error.

Safety: a worker opens the file's directory itself, from its own fd of the target root, component by
component without following symlinks (rescue.archive.dirs, create=False: the parent made the directory and
checked the name before sending it).  A batch carries a generation number: when the parent replaced a
directory it bumps it, and workers then drop their cached directory fds.

Failure: a worker that dies (killed, out of memory) closes its answer pipe; the parent sees it at the next
read or write and raises `WorkerDied`, naming the member that worker was writing, never waiting for it.
Workers ignore SIGINT (Ctrl-C reaches the whole process group: the parent decides, and stops them); a worker
exits when its command pipe ends, so a parent killed by any signal leaves no worker behind for longer than the
batch it was writing.  `close(kill=True)` kills them at once (after an interrupt or a failure).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import marshal
import mmap
import os
import select
import signal
import struct
import time
from typing import Callable, Deque, List, Optional, Tuple

from rescue.archive import install as inst
from rescue.archive.dirs import DirCache, Refused
from rescue.errors import RescueError

RING_PER_WORKER = 8 * 1024 * 1024
MAX_FILE = RING_PER_WORKER // 4  # larger files are written by the parent, straight from the tape records
BATCH_FILES = 128  # a batch is sent at this many files ...
BATCH_MIN = 24  # ... or at a change of directory once it has this many (two workers rarely share a directory)
MAX_QUEUED = 1024  # files sent to one worker and not yet reported: bounds the pipes and the parent's memory
_LEN = struct.Struct("<I")
_SEQ = struct.Struct("<Q")
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Python 3.10+ names it; <linux/fcntl.h>)

# (seq, error message or None, its errno or 0, sha256 hex or None, removed a directory)
Result = Tuple[int, Optional[str], int, Optional[str], bool]


class WorkerDied(RescueError):
    """A worker process ended while it had files to write."""


class _Worker:
    def __init__(self, pid: int, send_fd: int, recv_fd: int, base: int, size: int):
        self.pid = pid
        self.send_fd = send_fd
        self.recv_fd = recv_fd
        self.base = base
        self.end = base + size
        self.head = base
        self.queued: Deque[Tuple[int, int, int]] = (
            collections.deque()
        )  # (seq, ring offset, size) sent, in order
        self.ring_oldest: Deque[int] = collections.deque()  # ring offsets of queued files with data

    def reserve(self, n: int) -> Optional[int]:
        """Ring offset where n bytes fit now, or None (wait for the worker)."""
        if not self.ring_oldest:
            self.head = self.base
            return self.base if n <= self.end - self.base else None
        oldest = self.ring_oldest[0]
        if self.head > oldest:  # used: [oldest, head); free: [head, end) and [base, oldest)
            if self.head + n <= self.end:
                return self.head
            return self.base if self.base + n <= oldest else None
        return self.head if self.head + n <= oldest else None  # wrapped: free is [head, oldest)


class Pool:
    """`jobs` worker processes writing files into the target root open as `root_fd`."""

    def __init__(
        self,
        jobs: int,
        root_fd: int,
        *,
        overwrite: bool,
        unnamed: bool,
        atime_ns: int,
        on_result: Callable[[Result], None],
        describe: Callable[[int], str],
    ):
        self._on_result = on_result
        self._describe = describe  # seq -> the member's path, for the message when a worker dies
        self.gen = 0
        self.broken = False
        self.ring = mmap.mmap(-1, jobs * RING_PER_WORKER)
        # Each worker's current sequence number (it reports per batch): names the member a dead worker had.
        self.status = mmap.mmap(-1, 8 * jobs)
        self._view = memoryview(self.ring)
        self.workers: List[_Worker] = []
        self._batch: list = []
        self._batch_worker: Optional[_Worker] = None
        self._batch_dir: Optional[str] = None
        config = (root_fd, overwrite, unnamed, atime_ns)
        for i in range(jobs):
            self.workers.append(self._fork(i, config))

    def _fork(self, index: int, config: tuple) -> _Worker:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        for fd in (to_child_w, from_child_w):
            with contextlib.suppress(OSError):  # else the default 64 KiB: MAX_QUEUED keeps messages below it
                fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 70
            try:
                for w in self.workers:  # the other workers' pipes: their ends must close when they do
                    os.close(w.send_fd)
                    os.close(w.recv_fd)
                os.close(to_child_w)
                os.close(from_child_r)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _serve(to_child_r, from_child_w, self._view, (self.status, 8 * index), *config)
                code = 0
            except BaseException as e:  # noqa: B036 - a worker must never return into the parent's code
                with contextlib.suppress(OSError):
                    os.write(2, f"rescue: restore worker {os.getpid()}: {e!r}\n".encode())
            finally:
                os._exit(code)
        os.close(to_child_r)
        os.close(from_child_w)
        return _Worker(pid, to_child_w, from_child_r, index * RING_PER_WORKER, RING_PER_WORKER)

    # -- the parent's side

    def reserve(self, size: int, dirkey: str) -> Tuple[_Worker, int, memoryview]:
        """A worker and ring space for a file of `size` bytes in directory `dirkey`; the caller fills the view
        and then calls `commit`.  Waits for workers to report files done when the ring or the queue is full."""
        w = self._batch_worker
        if w is not None and (
            len(self._batch) >= BATCH_FILES or (dirkey != self._batch_dir and len(self._batch) >= BATCH_MIN)
        ):
            self.send()
            w = None
        while True:
            if w is None:
                w = min(self.workers, key=lambda x: len(x.queued))
            if len(w.queued) + len(self._batch) < MAX_QUEUED:
                off = w.reserve(size) if size else 0
                if off is not None:
                    self._batch_worker = w
                    self._batch_dir = dirkey
                    return w, off, self._view[off : off + size]
            if self._batch:
                self.send()
            self._collect(block=True)
            w = None

    def commit(self, w: _Worker, off: int, item: tuple) -> None:
        """Queue the file described by item = (seq, dirkey, name, off, size, ...) for worker w, right after
        `reserve` (nothing between them may wait for the workers)."""
        assert w is self._batch_worker
        size = item[4]
        if size:
            w.ring_oldest.append(off)
            w.head = off + size
        w.queued.append((item[0], off, size))
        self._batch.append(item)

    def send(self) -> None:
        w, batch = self._batch_worker, self._batch
        if w is None or not batch:
            return
        self._batch, self._batch_worker = [], None
        data = marshal.dumps((self.gen, batch))
        try:
            _write_msg(w.send_fd, data)
        except BrokenPipeError:
            self._died(w)
        self._collect(block=False)

    def poll(self) -> None:
        """Send what is batched and take the reports that are there, without waiting."""
        self.send()
        self._collect(block=False)

    def wait_for(self, done: Callable[[], bool]) -> None:
        """Send what is batched, then take reports until done() holds."""
        self.send()
        while not done():
            self._collect(block=True)

    def drain(self) -> None:
        self.wait_for(lambda: not any(w.queued for w in self.workers))

    def _collect(self, block: bool) -> None:
        busy = [w for w in self.workers if w.queued]
        if not busy:
            return
        ready, _, _ = select.select([w.recv_fd for w in busy], [], [], None if block else 0)
        for w in busy:
            if w.recv_fd in ready:
                data = _read_msg(w.recv_fd)
                if data is None:
                    self._died(w)
                for result in marshal.loads(data):
                    seq, off, size = w.queued.popleft()
                    if size:
                        w.ring_oldest.popleft()
                    self._on_result(result)

    def _died(self, w: _Worker) -> None:
        self.broken = True
        status = "ended"
        for _ in range(50):  # its pipe closed: it is gone or going (a few ms)
            pid, code = os.waitpid(w.pid, os.WNOHANG)
            if pid:
                status = (
                    f"was killed by signal {os.WTERMSIG(code)}"
                    if os.WIFSIGNALED(code)
                    else f"exited with status {os.WEXITSTATUS(code)}"
                )
                w.pid = 0
                break
            time.sleep(0.01)
        current = _SEQ.unpack_from(self.status, 8 * self.workers.index(w))[0]
        if not any(seq == current for seq, _, _ in w.queued):
            current = w.queued[0][0] if w.queued else 0
        what = f" while writing '{self._describe(current)}'" if current else ""
        raise WorkerDied(
            f"restore worker process {status}{what}; the members before it are restored: run the same "
            "restore again with --resume to continue"
        )

    def close(self, kill: bool = False) -> None:
        """Stop the workers: at the end of their batch, or at once with kill (interrupt, failure)."""
        for w in self.workers:
            if kill and w.pid:
                with contextlib.suppress(OSError):
                    os.kill(w.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.close(w.send_fd)
        deadline = time.monotonic() + 10.0
        for w in self.workers:
            while w.pid:
                pid, _ = os.waitpid(w.pid, os.WNOHANG)
                if pid:
                    w.pid = 0
                elif time.monotonic() > deadline:
                    os.kill(w.pid, signal.SIGKILL)
                    os.waitpid(w.pid, 0)
                    w.pid = 0
                else:
                    time.sleep(0.002)
            with contextlib.suppress(OSError):
                os.close(w.recv_fd)
        self.workers = []
        with contextlib.suppress(BufferError):  # a view still held elsewhere: the mapping goes with it
            self._view.release()
            self.ring.close()
        self.status.close()


def _write_msg(fd: int, data: bytes) -> None:
    inst.write_all(fd, memoryview(_LEN.pack(len(data)) + data))


def _read_exact(fd: int, n: int) -> Optional[bytes]:
    parts = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _read_msg(fd: int) -> Optional[bytes]:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    return _read_exact(fd, _LEN.unpack(head)[0])


# -- the worker's side


def _serve(recv_fd: int, send_fd: int, ring: memoryview, status: tuple, root_fd, overwrite, unnamed, atime):
    """Write the files of each batch until the command pipe ends; `status` = (mapping, offset) where the
    sequence number of the file being written is kept."""
    status_map, status_at = status
    dirs = DirCache(root_fd)
    namer = inst.Namer()
    gen = 0
    while True:
        data = _read_msg(recv_fd)
        if data is None:
            return
        batch_gen, batch = marshal.loads(data)
        if batch_gen != gen:
            dirs.forget()
            gen = batch_gen
        results = []
        for item in batch:
            _SEQ.pack_into(status_map, status_at, item[0])
            dirs.between_members()
            results.append(_write_one(item, ring, dirs, namer, overwrite, unnamed, atime))
        _write_msg(send_fd, marshal.dumps(results))


def _write_one(
    item: tuple, ring: memoryview, dirs: DirCache, namer, overwrite: bool, unnamed: bool, atime: int
):
    seq, dirkey, name, off, size, perm, mode, uid, gid, mtime_ns, hashing = item
    view = ring[off : off + size]
    digest = None

    def fill(fd: int) -> None:
        nonlocal digest
        if hashing:
            digest = hashlib.sha256(view).hexdigest()  # the buffer written, as the single process does
        if size:
            inst.write_all(fd, view)
        if gid >= 0:
            os.fchown(fd, uid, gid)
        if mode >= 0:
            os.fchmod(fd, mode)  # after chown, which clears setuid/setgid
        os.utime(fd, ns=(atime, mtime_ns))

    try:
        parent = dirs.get(dirkey.split("/") if dirkey else [], create=False)
        removed = inst.place(parent, name, perm, fill, unnamed=unnamed, namer=namer, overwrite=overwrite)
    except Refused as e:
        return seq, str(e), 0, None, False
    except (OSError, ValueError, OverflowError) as e:
        return (
            seq,
            f"not restored: {getattr(e, 'strerror', None) or e}",
            getattr(e, "errno", None) or 0,
            None,
            False,
        )
    finally:
        view.release()
    if removed:
        dirs.stale = True
    return seq, None, 0, digest, removed
