"""Putting a restored inode under its name so that a name never shows a half-made file.

`place(parent, name, perm, fill, ...)` makes a regular file: an unnamed inode in the directory (O_TMPFILE),
`fill(fd)` writes its data and metadata on the open fd, and only then is it linked under its name (linkat(2),
which never follows or replaces what is there); when the name is taken, or the file system has no O_TMPFILE, it
is linked/written under a temporary name (O_CREAT|O_EXCL|O_NOFOLLOW, rescue.archive.tempname) and renamed over the
real name.  An interrupted restore never leaves a half file under the real name (an unnamed inode leaves nothing
at all), and a rename never writes through whatever was there (a symlink is replaced, not followed).  O_TMPFILE
plus linkat costs one directory update instead of three (create, rename), most of what a small file costs.

`install(tmp, parent, name, overwrite)` renames a finished temporary name over the real one; an empty directory
in the way is removed, a non-empty one refused (`Refused`), and with overwrite off nothing existing is replaced.
It returns True when it removed a directory: cached directory fds may then name a removed directory.
Used by rescue.archive.extract (this process) and rescue.archive.workers (worker processes) alike.
"""

from __future__ import annotations

import errno
import os
from typing import Callable, Optional, Tuple

from rescue.archive.dirs import Refused
from rescue.archive.tempname import Namer

NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
UNNAMED_FILE = os.O_WRONLY | getattr(os, "O_TMPFILE", 0) | os.O_CLOEXEC  # open(2): an inode without a name


def unnamed_supported() -> bool:
    """O_TMPFILE exists and /proc can name the open fd for linkat."""
    return hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


def open_new(parent: int, perm: int, unnamed: bool, namer: Namer) -> Tuple[int, Optional[str]]:
    """(fd, temporary name or None for an unnamed inode) of a new regular file in `parent`."""
    if unnamed:
        try:
            return os.open(".", UNNAMED_FILE, perm, dir_fd=parent), None
        except OSError:
            pass  # no O_TMPFILE on this file system (vfat, some network file systems)
    tmp = namer()
    return os.open(tmp, NEW_FILE, perm, dir_fd=parent), tmp


def place(
    parent: int,
    name: str,
    perm: int,
    fill: Callable[[int], None],
    *,
    unnamed: bool,
    namer: Namer,
    overwrite: bool,
    before_rmdir: Optional[Callable[[], None]] = None,
) -> bool:
    """Make the regular file parent/name, filled by `fill(fd)`; True when a directory in the way was removed."""
    fd, tmp = open_new(parent, perm, unnamed, namer)
    try:
        fill(fd)
        if tmp is None:
            tmp = link_unnamed(fd, parent, name, namer)
    except BaseException:
        os.close(fd)
        if tmp is not None:
            unlink_quietly(tmp, parent)
        raise
    os.close(fd)
    if tmp is not None:
        return install(tmp, parent, name, overwrite, before_rmdir)
    return False


def link_unnamed(fd: int, parent: int, name: str, namer: Namer) -> Optional[str]:
    """Give the finished O_TMPFILE file its name with linkat(2) (open(2): "/proc/self/fd/N" with
    AT_SYMLINK_FOLLOW).  linkat never replaces what is there: then link it under a temporary name, which
    `install` renames over the real one; returns that name, or None when the file is in place."""
    src = f"/proc/self/fd/{fd}"
    try:
        os.link(src, name, dst_dir_fd=parent, follow_symlinks=True)
        return None
    except FileExistsError:
        pass
    tmp = namer()
    os.link(src, tmp, dst_dir_fd=parent, follow_symlinks=True)
    return tmp


def install(
    tmp: str, parent: int, name: str, overwrite: bool, before_rmdir: Optional[Callable[[], None]] = None
) -> bool:
    """Rename tmp over name; a directory in the way is removed if empty (True is returned), else refused.
    `before_rmdir()` runs first (the parallel extractor lets its workers finish what they write there)."""
    if not overwrite:
        try:
            os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            unlink_quietly(tmp, parent)
            raise Refused("exists; not replaced (overwrite is off)")
    try:
        os.rename(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
        return False
    except OSError as e:
        if e.errno not in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
            unlink_quietly(tmp, parent)
            raise
    if before_rmdir is not None:
        before_rmdir()
    try:
        os.rmdir(name, dir_fd=parent)
    except OSError:
        unlink_quietly(tmp, parent)
        raise Refused("a non-empty directory is in the way; not replaced") from None
    os.rename(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
    return True


def write_all(fd: int, view) -> None:
    write = os.write
    while view:
        view = view[write(fd, view) :]


def unlink_quietly(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass
