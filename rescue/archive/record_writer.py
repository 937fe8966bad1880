"""Collects archive bytes into fixed-size records and writes each whole record to a Tape.

Contract:
- Every `tape.write_record()` call gets exactly `record_size` bytes (a multiple of 512); `close()` pads the last
  record with zeros.  The tape must be done with the buffer when write_record returns (the buffer is reused).
- `position()` is (record number, offset) of the next byte, record numbers counted from 0 at the start.
- `write(data)` copies bytes in; `read_from(fd, n)` reads file data straight into the record buffer with
  os.readv (no intermediate copy).
- Checksums on the written buffers: between `start_hash(hasher)` and `stop_hash()` every byte that goes into
  the records is also fed to the hasher, but only when its record is handed on (in the writer thread when
  there is one).  `done` counts records fully hashed and written: a digest is final once `done` exceeds the
  record number `stop_hash()` returned.
- Fast paths for the per-member work, which dominates a tree of small files: `header_into()` lets the header
  encoder write straight into the record, and `file_into()` does a whole small file (header, one read(2)
  into the record, hash segment, padding) in one call.  Both decline, writing nothing, when the member does
  not fit in the current record; the general calls above then do the job.
- With `threaded=True` (the default) a writer thread drains a bounded ring of record buffers, so reading files
  and writing records overlap (star's FIFO idea): hashing the record and writing it happen there, and both
  release the GIL, as do the reads in the main thread.  An error from the tape is raised in the calling thread
  at its next record hand-off or at close.

Buffers are never memset as a whole: every byte of a record is written explicitly (headers are whole blocks,
data tails and the final record are zero-filled here).
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Optional

from rescue.archive import tarformat as tf

_ZEROS = bytes(1 << 16)
# hashlib holds the GIL for updates shorter than this (HASHLIB_GIL_MINSIZE in Modules/hashlib.h): such a small
# file is hashed at once, while its bytes are in the cache, instead of costing the writer thread a loop turn.
_GIL_MINSIZE = 2048


class RecordWriter:
    def __init__(
        self, tape, record_size: int = tf.DEFAULT_RECORD_SIZE, *, threaded: bool = True, ring: int = 8
    ):
        tf.check_record_size(record_size)
        self.tape = tape
        self.record_size = record_size
        self.records = 0  # records handed to the tape (or its writer thread)
        self.last_read = 0  # bytes the last read_from() got, also when it raised
        self.done = 0  # records hashed and written
        self._segments: list = []  # (hasher, start, end) to hash in the current buffer before writing it
        self._hasher = None
        self._hash_from = 0
        self._buf = bytearray(record_size)
        self._mv = memoryview(self._buf)
        self._pos = 0
        self._error: Optional[BaseException] = None
        self._closed = False
        self._thread = None
        if threaded:
            # SimpleQueue (C, no Condition objects): the ring of free buffers bounds both queues already
            self._free: queue.SimpleQueue = queue.SimpleQueue()
            for _ in range(ring - 1):
                self._free.put(bytearray(record_size))
            self._full: queue.SimpleQueue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._drain, name="record-writer", daemon=True)
            self._thread.start()

    # -- writer thread ------------------------------------------------------------------------------------------

    def _drain(self) -> None:
        while True:
            item = self._full.get()
            if item is None:
                return
            buf, segments = item
            if self._error is None:
                try:
                    self._emit(buf, segments)
                except BaseException as e:  # handed to the main thread, which raises it
                    self._error = e
            self._free.put(buf)

    def _emit(self, buf, segments) -> None:
        if segments:
            mv = memoryview(buf)
            for hasher, start, end in segments:
                hasher.update(mv[start:end])
        self.tape.write_record(buf)
        self.done += 1

    def _check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._shutdown()
            raise error

    def _flush(self) -> None:
        """Hand the full current record to the tape and start the next one."""
        segments = self._segments
        if self._hasher is not None:
            if self._hash_from < self.record_size:
                segments.append((self._hasher, self._hash_from, self.record_size))
            self._hash_from = 0
        self._segments = []
        if self._thread is None:
            self._emit(self._buf, segments)
        else:
            self._check()
            self._full.put((self._buf, segments))
            self._buf = self._free.get()
            self._mv = memoryview(self._buf)
            self._check()
        self.records += 1
        self._pos = 0

    # -- filling ------------------------------------------------------------------------------------------------

    def position(self):
        """(record, offset) where the next byte will land."""
        if self._pos == self.record_size:
            return self.records + 1, 0
        return self.records, self._pos

    def write(self, data) -> None:
        """Append bytes (any bytes-like object), spanning records as needed."""
        mv = memoryview(data).cast("B")
        n = len(mv)
        done = 0
        size = self.record_size
        while done < n:
            if self._pos == size:
                self._flush()
            take = min(n - done, size - self._pos)
            self._buf[self._pos : self._pos + take] = mv[done : done + take]
            self._pos += take
            done += take

    def zeros(self, n: int) -> None:
        """Append n zero bytes."""
        size = self.record_size
        while n > 0:
            if self._pos == size:
                self._flush()
            take = min(n, size - self._pos, len(_ZEROS))
            self._buf[self._pos : self._pos + take] = _ZEROS[:take]
            self._pos += take
            n -= take

    def header_into(self, encode_into, m) -> bool:
        """Fast path for a member's header: `encode_into(buf, pos, m)` (rescue.archive.headers) writes it straight
        into the record when its largest form (1536 bytes) fits; sets `m.record`/`m.offset`.  False, having
        written nothing, when it does not fit or the member needs the general encoder: then use write()."""
        pos = self._pos
        if pos + 3 * tf.BLOCKSIZE > self.record_size:
            return False
        k = encode_into(self._buf, pos, m)
        if not k:
            return False
        m.record = self.records
        m.offset = pos
        self._pos = pos + k
        return True

    def file_into(self, encode_into, m, fd: int, size: int, hasher) -> int:
        """Fast path for a whole small file: its header (as header_into()), then its `size` bytes read with one
        read(2) (the file is at offset 0) straight into the current record, to be hashed with `hasher`, then
        the block padding.  Returns the record number whose completion makes the digest final (as stop_hash()).

        Returns -1 having written nothing (the record position is unchanged) when header and data do not fit in
        the current record, the member needs the general encoder, or the read is short or fails: the caller
        then takes the general path, which reads the file again from its start and reports what it finds."""
        pos = self._pos
        if pos + 3 * tf.BLOCKSIZE + size + (-size % tf.BLOCKSIZE) > self.record_size:
            return -1
        k = encode_into(self._buf, pos, m)
        if not k:
            return -1
        start = pos + k
        end = start + size
        if size:
            try:
                got = os.readv(fd, [self._mv[start:end]])
            except OSError:
                return -1
            if got != size:
                os.lseek(fd, 0, os.SEEK_SET)
                return -1
            if size < _GIL_MINSIZE:
                hasher.update(self._mv[start:end])
            else:
                self._segments.append((hasher, start, end))
            pad = -size % tf.BLOCKSIZE
            if pad:
                self._buf[end : end + pad] = _ZEROS[:pad]
                end += pad
        m.record = self.records
        m.offset = pos
        self._pos = end
        return self.records

    def start_hash(self, hasher) -> None:
        """Feed every byte written from now on to `hasher` (see the module docstring)."""
        self._hasher = hasher
        self._hash_from = self._pos

    def stop_hash(self, pad: bool = False) -> int:
        """Stop feeding the hasher (then, with `pad`, zero-fill to the next 512-byte boundary, always inside the
        current record, as its size is whole blocks);
        returns the record number whose completion makes its digest final."""
        pos = self._pos
        if pos > self._hash_from:
            self._segments.append((self._hasher, self._hash_from, pos))
        self._hasher = None
        if pad:
            rest = pos % tf.BLOCKSIZE
            if rest:
                n = tf.BLOCKSIZE - rest
                self._buf[pos : pos + n] = _ZEROS[:n]
                self._pos = pos + n
        return self.records

    def read_from(self, fd: int, n: int, offset: Optional[int] = None) -> int:
        """Read up to n bytes from fd (at `offset` with preadv, else at the file position) straight into the
        records; returns the bytes read (fewer at end of file).  An OSError propagates with `last_read` telling
        how much was read before it: the caller pads the rest."""
        size = self.record_size
        got = self.last_read = 0
        readv = os.readv
        preadv = os.preadv
        while got < n:
            if self._pos == size:
                self._flush()
            want = min(n - got, size - self._pos)
            view = self._mv[self._pos : self._pos + want]
            if offset is None:
                k = readv(fd, [view])
            else:
                k = preadv(fd, [view], offset + got)
            if k <= 0:
                break
            self._pos += k
            got += k
            self.last_read = got
        return got

    # -- finishing ----------------------------------------------------------------------------------------------

    def close(self) -> int:
        """Pad and write the last record, wait for the writer thread; returns the number of records."""
        if self._closed:
            return self.records
        if self._pos:
            self.zeros(self.record_size - self._pos)
            self._flush()
        self._closed = True
        self._shutdown()
        self._check()
        return self.records

    def _shutdown(self) -> None:
        if self._thread is not None:
            self._full.put(None)
            self._thread.join()
            self._thread = None

    def abort(self) -> None:
        """Stop the writer thread without writing the partial record (after a fatal error)."""
        self._closed = True
        self._shutdown()
