"""Walk the trees a backup archives, in archive order, and plan them (count files and bytes) without reading data.

Order: first the `extra` trees (source path -> archive name, e.g. the database dump spool), then the
`priority` paths of the root (e.g. etc, boot, root; their parent directories come first), then the rest of the
root in directory order, depth first, every directory before its contents (what GNU tar `-C ROOT .` does with
`--sort=none`).  The root itself is not a member: names are relative ("etc/passwd"), so `tar -C TARGET -xpf`
restores into TARGET and leaves TARGET's own owner and mode alone (a freshly made file system's root).

Each entry is a tuple `(path, name, dir_fd, st, fd, parent)`:
- `path`: archive name; `name`: the name in its directory; `dir_fd`: an open fd of that directory (use it with
  `dir_fd=` while the entry is being handled); `st`: its lstat, the only stat the walk makes (os.scandir on
  directory fds, so every lookup is one fstatat without path resolution from the root);
- `fd`: for a directory, an open fd of the directory itself (closed by the walk afterwards), else -1;
- `parent`: the directory's path in the file system (for the few calls that need a path, e.g. symlink xattrs).

Selection (rescue.pathmatch.PathMatcher): a path matching `excludes` is left out with everything below it.  A
directory matching `default_excludes` (proc, sys, dev, run, tmp ... anchored at the root) is archived as an empty
directory: its contents are left out, but the mount point and its mode (tmp's 1777) are restored.  With
`one_file_system`, a directory on another file system is archived as an empty directory too (GNU tar
`--one-file-system` writes the mount point and stops there).  Sockets are skipped and reported to `on_skip`
(GNU tar: "socket ignored"); a directory that cannot be read or an entry that vanished goes to `on_warning`.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

from rescue.errors import UsageError
from rescue.pathmatch import PathMatcher, normalize

Entry = Tuple[str, str, int, os.stat_result, int, str]
Report = Callable[[str, str], None]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _ignore(path: str, message: str) -> None:
    pass


class Walker:
    """One walk over the extra trees, the priority paths and the root, as an iterator of entries."""

    def __init__(
        self,
        root: str,
        *,
        excludes: Sequence[str] = (),
        default_excludes: Sequence[str] = (),
        priority: Sequence[str] = (),
        extra: Sequence[Tuple[str, str]] = (),
        one_file_system: bool = False,
        on_warning: Report = _ignore,
        on_skip: Report = _ignore,
    ):
        self.root = root
        self.excluded = PathMatcher(excludes=excludes).excluded if excludes else None
        self.default_excluded = (
            PathMatcher(default_excludes=default_excludes).keeps_empty if default_excludes else None
        )
        self.priority = [p for p in (normalize(p) for p in priority) if p]
        self.extra = [(src, normalize(arc)) for src, arc in extra]
        for src, arc in self.extra:
            if not arc:
                raise UsageError(f"{src}: an extra tree needs a non-empty archive name")
        self.one_file_system = one_file_system
        self.on_warning = on_warning
        self.on_skip = on_skip
        self._skip_paths: set = set()  # priority paths already walked
        self._done_dirs: set = set()  # their ancestors, already written

    # -- building blocks -------------------------------------------------------------------------------------

    def _warn(self, path: str, message: str, error: Optional[OSError] = None) -> None:
        if error is not None:
            message = f"{message}: {os.strerror(error.errno) if error.errno else error}"
        self.on_warning(path, message)

    def _open_dir(self, name: str, dir_fd: Optional[int], path: str) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as e:
            self._warn(path, "Cannot open", e)
            return -1

    # -- the walk --------------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Entry]:
        for src, arc in self.extra:
            yield from self._walk_top(src, arc, defaults=False)
        try:
            root_fd = os.open(self.root, _DIR_FLAGS & ~os.O_NOFOLLOW)  # the root itself may be a symlink
        except OSError as e:
            self._warn(self.root, "Cannot open", e)
            return
        try:
            root_dev = os.fstat(root_fd).st_dev
            for p in self.priority:
                yield from self._walk_priority(root_fd, root_dev, p)
            yield from self._walk_dir(root_fd, "", self.root, root_dev, defaults=True)
        finally:
            os.close(root_fd)

    def _walk_top(self, src: str, arc: str, defaults: bool) -> Iterator[Entry]:
        """A tree given by path (an `extra` source): the top entry under archive name `arc`, then its contents."""
        parent, name = os.path.split(os.path.normpath(src))
        try:
            pfd = os.open(parent or ".", _DIR_FLAGS & ~os.O_NOFOLLOW)
        except OSError as e:
            self._warn(src, "Cannot open", e)
            return
        try:
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except OSError as e:
                self._warn(src, "Cannot stat", e)
                return
            yield from self._entry_and_below(pfd, name, arc, st, parent or ".", st.st_dev, defaults)
        finally:
            os.close(pfd)

    def _walk_priority(self, root_fd: int, root_dev: int, path: str) -> Iterator[Entry]:
        """A priority path: its not yet written ancestors, then the path and everything below it."""
        if self.excluded and self.excluded(path):
            return
        parts = path.split("/")
        fds = [root_fd]
        dirpath = self.root
        try:
            for i, name in enumerate(parts):
                arc = "/".join(parts[: i + 1])
                try:
                    st = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
                except FileNotFoundError:
                    return
                except OSError as e:
                    self._warn(arc, "Cannot stat", e)
                    return
                if i == len(parts) - 1:
                    self._skip_paths.add(arc)
                    yield from self._entry_and_below(fds[-1], name, arc, st, dirpath, root_dev, True)
                    return
                if not stat.S_ISDIR(st.st_mode):
                    return
                fd = self._open_dir(name, fds[-1], arc)
                if fd < 0:
                    return
                fds.append(fd)
                if arc not in self._done_dirs:
                    self._done_dirs.add(arc)
                    yield (arc, name, fds[-2], st, fd, dirpath)
                dirpath = os.path.join(dirpath, name)
        finally:
            for fd in fds[1:]:
                os.close(fd)

    def _entry_and_below(
        self, dir_fd: int, name: str, arc: str, st: os.stat_result, dirpath: str, dev: int, defaults: bool
    ) -> Iterator[Entry]:
        mode = st.st_mode
        if not stat.S_ISDIR(mode):
            if stat.S_ISSOCK(mode):
                self.on_skip(arc, "socket ignored")
                return
            yield (arc, name, dir_fd, st, -1, dirpath)
            return
        fd = self._open_dir(name, dir_fd, arc)
        if fd < 0:
            yield (arc, name, dir_fd, st, -1, dirpath)
            return
        try:
            yield (arc, name, dir_fd, st, fd, dirpath)
            if self._descend(arc, st, dev, defaults):
                yield from self._walk_dir(fd, arc + "/", os.path.join(dirpath, name), dev, defaults)
        finally:
            os.close(fd)

    def _descend(self, arc: str, st: os.stat_result, dev: int, defaults: bool) -> bool:
        if defaults and self.default_excluded and self.default_excluded(arc):
            return False
        return not (self.one_file_system and st.st_dev != dev)

    def _walk_dir(
        self, top_fd: int, top_prefix: str, top_path: str, dev: int, defaults: bool
    ) -> Iterator[Entry]:
        """Depth first below an open directory, with an explicit stack (no generator chain per level)."""
        excluded = self.excluded
        skip_paths = self._skip_paths
        done_dirs = self._done_dirs
        S_ISDIR, S_ISSOCK = stat.S_ISDIR, stat.S_ISSOCK
        try:
            it = os.scandir(top_fd)
        except OSError as e:
            self._warn(top_prefix.rstrip("/") or self.root, "Cannot read directory", e)
            return
        # stack of (scandir iterator, fd to close or -1, archive prefix, file system path)
        stack = [(it, -1, top_prefix, top_path)]
        try:
            while stack:
                it, fd, prefix, dirpath = stack[-1]
                dir_fd = top_fd if len(stack) == 1 else fd
                pushed = False
                for de in it:
                    name = de.name
                    path = prefix + name
                    if excluded is not None and excluded(path):
                        continue
                    if skip_paths and path in skip_paths:  # (empty without priority paths: no hashing)
                        continue
                    try:
                        st = de.stat(follow_symlinks=False)
                    except OSError as e:
                        if e.errno == errno.ENOENT:
                            self._warn(path, "File removed before we read it")
                        else:
                            self._warn(path, "Cannot stat", e)
                        continue
                    mode = st.st_mode
                    if S_ISDIR(mode):
                        sub = self._open_dir(name, dir_fd, path)
                        if sub < 0:
                            if path not in done_dirs:
                                yield (path, name, dir_fd, st, -1, dirpath)
                            continue
                        if path not in done_dirs:
                            yield (path, name, dir_fd, st, sub, dirpath)
                        if not self._descend(path, st, dev, defaults):
                            os.close(sub)
                            continue
                        try:
                            sub_it = os.scandir(sub)
                        except OSError as e:
                            os.close(sub)
                            self._warn(path, "Cannot read directory", e)
                            continue
                        stack.append((sub_it, sub, path + "/", os.path.join(dirpath, name)))
                        pushed = True
                        break
                    if S_ISSOCK(mode):
                        self.on_skip(path, "socket ignored")
                        continue
                    yield (path, name, dir_fd, st, -1, dirpath)
                if not pushed:
                    stack.pop()
                    it.close()
                    if fd >= 0:
                        os.close(fd)
        finally:
            for it, fd, _, _ in stack:
                it.close()
                if fd >= 0:
                    os.close(fd)


@dataclasses.dataclass(frozen=True)
class WalkSettings:
    """What one walk takes in and leaves out (see the module docstring); the backup plans and writes with the
    same object, so the plan counts exactly what the archive will hold."""

    excludes: Sequence[str] = ()
    default_excludes: Sequence[str] = ()
    priority: Sequence[str] = ()
    extra: Sequence[Tuple[str, str]] = ()
    one_file_system: bool = False

    def walker(self, root: str, on_warning: Report = _ignore, on_skip: Report = _ignore) -> Walker:
        return Walker(
            root,
            excludes=self.excludes,
            default_excludes=self.default_excludes,
            priority=self.priority,
            extra=self.extra,
            one_file_system=self.one_file_system,
            on_warning=on_warning,
            on_skip=on_skip,
        )


EVERYTHING = WalkSettings()  # the whole tree: nothing left out, nothing first


@dataclasses.dataclass
class TreePlan:
    """What a walk would archive: members, data bytes, and both per top-level name ({name: [files, bytes]})."""

    files: int = 0
    bytes: int = 0
    per_top: Dict[str, list] = dataclasses.field(default_factory=dict)


def data_bytes(st: os.stat_result) -> int:
    """Bytes of data a regular file puts in the archive (a sparse file only its allocated part, at most)."""
    size = st.st_size
    allocated = st.st_blocks * 512
    return allocated if allocated < size else size


def plan_tree(root: str, walk: WalkSettings = EVERYTHING, *, on_warning: Report = _ignore) -> TreePlan:
    """Count members and data bytes without reading file data (the shrink guard and the ETA use it).
    Hard links after the first count as members without bytes, as the archive stores them."""
    plan = TreePlan()
    per_top = plan.per_top
    seen_links: set = set()
    walker = walk.walker(root, on_warning)
    S_ISREG, S_ISDIR = stat.S_ISREG, stat.S_ISDIR
    for path, _name, _dir_fd, st, _fd, _parent in walker:
        top = path.split("/", 1)[0]
        counts = per_top.get(top)
        if counts is None:
            counts = per_top[top] = [0, 0]
        counts[0] += 1
        plan.files += 1
        if st.st_nlink > 1 and not S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in seen_links:
                continue
            seen_links.add(key)
        if S_ISREG(st.st_mode):
            n = data_bytes(st)
            counts[1] += n
            plan.bytes += n
    return plan
