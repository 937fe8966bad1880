"""The restore journal: `.rescue-restore.journal` in the target root, one line per completed member.

Line 1 is a header object: {"format": "rescue-restore-journal", "version": 2, "backup_id": ..., "archive_file": N,
"device": ..., "catalog": ..., "selection": {"paths": [...], "excludes": [...], "default_excludes": true}}: what the
run read and what it was asked for. A resume must ask for the same selection (`check_selection`): the journal
says which members are done, and only for that selection does "done up to here" mean "the tree is complete".
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

import contextlib
import errno
import json
import json.encoder
import os
import time
from typing import List, Optional, Sequence, Tuple

from rescue.archive.member import DIR, Member
from rescue.errors import RescueError

_json_str = json.encoder.encode_basestring
NAME = ".rescue-restore.journal"
FORMAT = "rescue-restore-journal"
VERSION = 2
BATCH = 256
INTERVAL = 0.5
SYNC_INTERVAL = 2.0


class JournalError(RescueError):
    """The journal cannot be read or written, or belongs to another backup or selection."""

    full = False  # writing failed because the target file system is full (ENOSPC, EDQUOT)


def selection(paths: Sequence[str], excludes: Sequence[str], default_excludes: bool) -> dict:
    """The header's record of what a run restores; order and repeats of PATHs and patterns do not matter."""
    return {
        "paths": sorted(set(paths)),
        "excludes": sorted(set(excludes)),
        "default_excludes": bool(default_excludes),
    }


def _describe(sel: dict) -> str:
    text = " ".join(sel.get("paths") or []) or "everything"
    if sel.get("excludes"):
        text += " excluding " + " ".join(sel["excludes"])
    if not sel.get("default_excludes", True):
        text += " (--no-default-excludes)"
    return text


def check_selection(path: str, header: dict, wanted: dict) -> None:
    """Refuse a resume that asks for another selection than the interrupted run (the journal stays)."""
    had = header.get("selection")
    if had is None or had == wanted:
        return  # a version 1 journal did not record it: nothing to compare with
    raise JournalError(
        f"{path}: the interrupted restore was of {_describe(had)}, this one asks for {_describe(wanted)}; "
        f"resume with the same PATHs and excludes, or remove {NAME} to restore from the start"
    )


class Journal:
    """Appends completed members; `close()` syncs, `remove()` deletes it after a finished restore."""

    def __init__(self, target: str, header: dict, append: bool = False, clock=time.monotonic):
        self.path = os.path.join(target, NAME)
        self.clock = clock
        flags = (
            os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
        )
        try:
            self._fd = os.open(self.path, flags, 0o600)
        except OSError as e:
            raise self._error(e) from None
        self._lines: List[str] = []
        self._unsynced = False
        self._last_write = self._last_sync = clock()
        if not append:
            self._write(json.dumps({"format": FORMAT, "version": VERSION, **header}) + "\n")
            self._fsync()

    def _write(self, text: str) -> None:
        data = text.encode("utf-8", "surrogateescape")
        try:
            while data:
                n = os.write(self._fd, data)
                data = data[n:]
        except OSError as e:
            raise self._error(e) from None

    def _fsync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as e:
            raise self._error(e) from None

    def _error(self, e: OSError) -> JournalError:
        error = JournalError(f"{self.path}: cannot write the restore journal ({e.strerror})")
        error.full = e.errno in (errno.ENOSPC, errno.EDQUOT)
        return error

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
        self._fsync()
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

    def settle_dirs(self, real_root: str) -> None:
        """Give the directories the interrupted run completed their mode and mtime: it died before it set them.
        (A directory's xattrs, e.g. a default ACL, were set then too and are not in the journal: GNU tar's
        delayed_set_stat has the same window.) Called at the end of the resumed run, after their contents."""
        now = time.time_ns()
        for path, mode, mtime_ns in self.dirs:
            full = os.path.join(real_root, path)
            with contextlib.suppress(OSError):
                if os.path.realpath(full) == full and os.path.isdir(full):
                    os.chmod(full, mode)
                    os.utime(full, ns=(now, mtime_ns), follow_symlinks=False)


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
