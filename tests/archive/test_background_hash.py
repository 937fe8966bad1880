"""The second-thread hasher gives the same digests as hashing in line, in any interleaving of files, and
bounds the chunks in flight."""

from __future__ import annotations

import hashlib
import os
import threading

from rescue.archive.background_hash import BackgroundHasher


def test_digests_match_hashlib_for_interleaved_files():
    hasher = BackgroundHasher(window=3)
    try:
        chunks = [os.urandom(n) for n in (1, 4096, 300_000, 0, 70_000)]
        a, b = hashlib.sha256(), hashlib.sha256()
        for chunk in chunks:
            hasher.update(a, memoryview(chunk))
            hasher.update(b, chunk[::-1])
        assert hasher.hexdigest(a) == hashlib.sha256(b"".join(chunks)).hexdigest()
        assert hasher.hexdigest(b) == hashlib.sha256(b"".join(c[::-1] for c in chunks)).hexdigest()
        empty = hashlib.sha256()
        assert hasher.hexdigest(empty) == hashlib.sha256().hexdigest()
    finally:
        hasher.close()
    hasher.close()  # twice is harmless


class _SlowHash:
    """A hash whose update() waits for the test to let it go, to hold chunks in flight."""

    def __init__(self):
        self.go = threading.Event()
        self.seen = 0

    def update(self, chunk):
        self.go.wait()
        self.seen += 1

    def hexdigest(self):
        return str(self.seen)


def test_no_more_than_window_chunks_wait_while_hashing_lags():
    hasher = BackgroundHasher(window=2)
    slow = _SlowHash()
    queued = []

    def feed():
        for i in range(5):
            hasher.update(slow, b"x")
            queued.append(i)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    t.join(0.5)
    assert len(queued) == 2  # the third update() waits for a free slot
    slow.go.set()
    t.join(5)
    assert queued == [0, 1, 2, 3, 4]
    assert hasher.hexdigest(slow) == "5"
    hasher.close()
