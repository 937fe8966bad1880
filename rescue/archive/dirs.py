"""Directories under a restore root, resolved without following symlinks: `DirCache(root_fd).get(parts)`.

Contract: `split(path)` turns a member name into its components, refusing a NUL byte or a ".." component
(`Refused`); "" and "." components are dropped.  `DirCache.get(parts)` returns an fd of root/parts, opened
component by component with `os.open(name, O_DIRECTORY|O_NOFOLLOW, dir_fd=parent)` (openat(2) style), so no
symlink is followed, whether an archive made it or the target held it before; a missing directory is made
(mode 0755) unless `create=False`.  The fds are cached by path; `forget()` closes them all (after a directory
was removed or replaced, and when the cache is full, between members: never while one is in use).
Extraction in this process and in the worker processes (rescue.archive.workers) both resolve this way.
"""

from __future__ import annotations

import errno
import os
from typing import Callable, Dict, List, Optional

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
CACHE_SIZE = 256  # open directory fds kept (members come in walk order, so few directories are live at once)


class Refused(Exception):
    """A member cannot be extracted safely; the message says why."""


def split(path: str) -> List[str]:
    if "\0" in path:
        raise Refused("name contains a NUL byte; refused")
    parts = path.split("/")
    if "" in parts or "." in parts:
        parts = [p for p in parts if p not in ("", ".")]
    if ".." in parts:
        raise Refused("name contains '..'; refused")
    return parts


class DirCache:
    def __init__(self, root_fd: int, on_miss: Optional[Callable[[str], None]] = None):
        self.root_fd = root_fd
        self.fds: Dict[str, int] = {}
        self.stale = False  # set when a directory was replaced: forget() before the next member
        self._on_miss = on_miss  # called with the path before a directory not cached is opened

    def get(self, parts: List[str], create: bool = True) -> int:
        """fd of the directory root/parts, made with mode 0755 when missing; never through a symlink."""
        if not parts:
            return self.root_fd
        key = "/".join(parts)
        fd = self.fds.get(key)
        if fd is not None:
            return fd
        if self._on_miss is not None:
            self._on_miss(key)
        parent = self.get(parts[:-1], create)
        name = parts[-1]
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(name, 0o755, dir_fd=parent)
            fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise Refused(
                    f"'{key}' is a symlink or not a directory; refusing to write through it"
                ) from None
            raise
        self.fds[key] = fd
        return fd

    def between_members(self) -> None:
        """Drop the cache when it is stale or full; called where no cached fd is in use."""
        if self.stale or len(self.fds) > CACHE_SIZE:
            self.forget()
            self.stale = False

    def forget(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
