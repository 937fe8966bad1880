"""The restore journal: `.rescue-restore.journal` in the target root, one line per completed member.

Line 1 is a header object: {"format": "rescue-restore-journal", "version": 1, "backup_id": ..., "archive_file": N}.
Every further line is a JSON array `[record, offset, path, type, mode, mtime_ns]`: the tape position of a member
that was extracted completely, in tape order. Lines are written in batches (every `BATCH` members or
`INTERVAL` seconds) and fsync'ed every `SYNC_INTERVAL` seconds and at close: a kill or a power loss costs at most
the members since the last write or sync, which are extracted again on resume (overwriting them). The journal
never names a member that was not complete, which is all resuming needs.

`--resume` reads the journal back: the last complete line is where the tape continues (a torn last line from a
crash is ignored). The directories listed are given their mode and mtime again at the end of the resumed run,
because the run that extracted them died before it could set them (extraction sets a directory's mtime last,
after its children are in place).
"""

from __future__ import annotations

import json
import json.encoder
import os
import time
from typing import List, Optional, Tuple

from rescue.archive.member import DIR, Member
from rescue.errors import RescueError

_json_str = json.encoder.encode_basestring
NAME = ".rescue-restore.journal"
FORMAT = "rescue-restore-journal"
BATCH = 256
INTERVAL = 0.5
SYNC_INTERVAL = 2.0


class JournalError(RescueError):
    """The journal cannot be read or belongs to another backup."""


class Journal:
    """Appends completed members; `close()` syncs, `remove()` deletes it after a finished restore."""

    def __init__(self, target: str, header: dict, append: bool = False, clock=time.monotonic):
        self.path = os.path.join(target, NAME)
        self.clock = clock
        flags = (
            os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
        )
        self._fd = os.open(self.path, flags, 0o600)
        self._lines: List[str] = []
        self._unsynced = False
        self._last_write = self._last_sync = clock()
        if not append:
            self._write(json.dumps({"format": FORMAT, "version": 1, **header}) + "\n")
            os.fsync(self._fd)

    def _write(self, text: str) -> None:
        data = text.encode("utf-8", "surrogateescape")
        while data:
            n = os.write(self._fd, data)
            data = data[n:]

    def add(self, member: Member) -> None:
        # The JSON array formatted directly: json.dumps costs several times more, once per restored member.
        # encode_basestring is the json module's own string encoder (quotes and escapes, non-ASCII kept as-is,
        # as with ensure_ascii=False).
        head = f"[{member.record:d},{member.offset:d},{_json_str(member.path)},{_json_str(member.type)}"
        if member.type == DIR:
            line = f"{head},{member.mode:d},{member.mtime_ns:d}]"
        else:
            line = head + "]"
        lines = self._lines
        lines.append(line)
        if len(lines) >= BATCH or self.clock() - self._last_write >= INTERVAL:
            self.flush()

    def flush(self) -> None:
        """Hand the pending lines to the kernel (they survive a kill), and fsync when it is time."""
        now = self.clock()
        if self._lines:
            self._write("\n".join(self._lines) + "\n")
            self._lines.clear()
            self._unsynced = True
        self._last_write = now
        if self._unsynced and now - self._last_sync >= SYNC_INTERVAL:
            self.sync()

    def sync(self) -> None:
        if self._lines:
            self._write("\n".join(self._lines) + "\n")
            self._lines.clear()
        os.fsync(self._fd)
        self._unsynced = False
        self._last_sync = self.clock()

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    def remove(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class JournalState:
    """What a previous run left: its header, the position after which to continue, and its directories."""

    def __init__(self, header: dict, last: Optional[Tuple[int, int]], count: int, dirs: List[tuple]):
        self.header = header
        self.last = last  # (record, offset) of the last completed member, None if none completed
        self.count = count
        self.dirs = dirs  # (path, mode, mtime_ns)

    def done(self, record: int, offset: int) -> bool:
        """True for a member at or before the last completed position."""
        return self.last is not None and (record, offset) <= self.last


def read_journal(target: str) -> Optional[JournalState]:
    """The journal in `target`, or None when there is none."""
    path = os.path.join(target, NAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise JournalError(f"{path}: cannot read the restore journal ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        lines = f.read().split(b"\n")
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise JournalError(f"{path}: not a rescue restore journal; remove it to restore from the start")
    last, count, dirs = None, 0, []
    for raw in lines[1:]:
        try:
            entry = json.loads(raw.decode("utf-8", "surrogateescape"))
            record, offset, name, kind = entry[:4]
        except (ValueError, TypeError, IndexError):
            continue  # a torn line from a crash (or the empty string after the last newline)
        last = (record, offset)
        count += 1
        if kind == DIR and len(entry) >= 6:
            dirs.append((name, entry[4], entry[5]))
    return JournalState(header, last, count, dirs)
