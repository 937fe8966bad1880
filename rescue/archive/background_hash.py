"""SHA-256 of a large file's data in a second thread, while the calling thread writes that data.

    hasher = BackgroundHasher()          # one thread, reused for every file of at least MIN_SIZE bytes
    h = hashlib.sha256()
    for chunk in chunks:                 # immutable buffers (views of the bytes a tape read returned)
        hasher.update(h, chunk)
        os.write(fd, chunk)
    digest = hasher.hexdigest(h)         # waits until every chunk given for h is hashed
    hasher.close()

hashlib and os.write both release the GIL on large buffers, so on a second core hashing overlaps writing:
restoring 4 KiB-1 MiB files into tmpfs with checksums took 0.47 s instead of 0.61 s.  When the second core is
busy (a loop device's worker, say) the wall time stays the same and the hand-offs and cache traffic cost
15-25% more CPU, and on one CPU they would only cost: callers use it only when a second CPU is there.  Verify
and catalog rebuild only read, and reading a record costs too little next to hashing it for the overlap to
help them (measured: no gain).

At most `window` chunks are in flight, so memory stays bounded when writing outruns hashing.  Chunks must not
change until they are hashed: the tape backends return a new bytes object for every record, and data views
point into those.
"""

from __future__ import annotations

import os
import queue
import threading

# Smaller files are hashed in line: below about a record's worth the hand-off costs more than the overlap gains.
MIN_SIZE = 256 * 1024


def usable_cpus() -> int:
    """CPUs this process may run on (taskset, cgroups' cpusets), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class BackgroundHasher:
    def __init__(self, window: int = 16):
        self._todo: queue.SimpleQueue = queue.SimpleQueue()
        # Free slots as tokens in a C queue: cheaper per chunk than threading.Semaphore (Python code).
        self._slots: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(window):
            self._slots.put(None)
        self._thread = threading.Thread(target=self._run, name="restore-hasher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._todo.get()
            if item is None:
                return
            target, chunk = item
            if chunk is None:
                target.set()  # a hexdigest() call waits for this: everything before it is hashed
                continue
            target.update(chunk)
            self._slots.put(None)

    def update(self, h, chunk) -> None:
        self._slots.get()
        self._todo.put((h, chunk))

    def hexdigest(self, h) -> str:
        done = threading.Event()
        self._todo.put((done, None))
        done.wait()
        return h.hexdigest()

    def close(self) -> None:
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join()
            self._thread = None
