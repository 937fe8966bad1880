"""Safe extraction of archive entries into a target root: `Extractor(root).extract(entry)`, then `finish()`.

Safety (nothing is ever written outside the target root):
- Names are relative: a leading "/" is dropped; a name or hard-link target with a ".." component is refused.
- Every path is resolved component by component from an fd of the root with `os.open(..., dir_fd=,
  O_NOFOLLOW|O_DIRECTORY)` (openat(2) style), so no symlink is followed, whether the archive created it or it was
  there before; a member below a symlink is refused.  Pax `path`/`linkpath` overrides arrive in `member.path` and
  `member.linkname` and go through the same checks.
- A regular file is written as an unnamed inode (O_TMPFILE) or under a temporary name, its metadata set on the
  open fd, and only then given its name (rescue.archive.install): a name never shows a half file.
- Symlinks, devices and fifos are made under a temporary name, their metadata set without following links, and
  renamed into place.  A symlink's target is data: it is stored as the archive says and never followed.
- Hard links are made with linkat(2) without following symlinks, from a source resolved the same way (so it is
  inside the root: a member restored before, or what the target already holds).

Metadata, in the order that keeps it (chown(2) clears setuid bits and file capabilities; writing data clears
security.capability): data, fchown (numeric ids by default; names when `numeric_owner=False`, looked up in the
target's own etc/passwd and etc/group first, then this system's), fchmod, xattrs (security.selinux,
security.capability, system.posix_acl_*; ACLs given only as GNU tar's SCHILY.acl text are turned into those
xattrs, and the text wins over the binary xattr when names are wanted), then times with nanoseconds (mtime from
the archive; atime is the time of the restore, as GNU tar does).
Directories are created 0700 and get their mode, xattrs and mtime in `finish()` (or once the restore has left
them, when very many are pending), after their contents, as GNU tar's delayed_set_stat does, so a default ACL or
a read-only mode never affects what is restored inside.

Sparse members: each data region is written at its offset (lseek) and the file is ftruncate'd to its size, so
holes stay holes.  When `extract()` is given `expected_sha256` (or the Extractor `checksums=True`), the SHA-256
of a regular file is computed on the buffers written (for a sparse file: of its stored data regions, in map
order, as the writer and verify compute it; from 256 KiB on in a second thread while the data is written, when
the process may use a second CPU), set in `entry.member.sha256` and compared.

Per-member problems (refused names, I/O errors, lost data, checksum mismatch) are warnings: `extract()` returns
False and the restore goes on.  A truncated archive (TruncatedArchiveError) propagates: the job cannot go on.

Completion: `on_done(member, ok)` is called once for every member `extract()` returned True for, in the order
of the extract() calls, when the member is complete (here: before extract() returns; in
rescue.archive.parallel_extract, when a worker process has written and verified it, so `ok` may then be False
after a warning).  A journal records members from there, never before they are complete.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from typing import Callable, Dict, List, Optional, Tuple

from rescue.archive import background_hash
from rescue.archive import install as inst
from rescue.archive import member as m
from rescue.archive import xattrs as xa
from rescue.archive.dirs import DirCache, split
from rescue.archive.dirs import Refused as _Refused
from rescue.archive.owners import Ids, star_to_plain
from rescue.archive.reader import DamagedMemberError, Entry
from rescue.archive.tempname import Namer
from rescue.errors import RescueError

_MAX_PENDING_DIRS = 100_000  # directories whose metadata waits for finish(); more are settled early


class Extractor:
    def __init__(
        self,
        target_root,
        *,
        numeric_owner: bool = True,
        same_owner: Optional[bool] = None,
        overwrite: bool = True,
        on_warning: Optional[Callable[[str, str], None]] = None,
        on_done: Optional[Callable[[m.Member, bool], None]] = None,
        checksums: bool = False,
    ):
        self.root = os.fspath(target_root)
        try:
            self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise RescueError(f"{self.root}: cannot open the target directory: {e.strerror}") from None
        self.numeric_owner = numeric_owner
        self.same_owner = os.geteuid() == 0 if same_owner is None else same_owner
        self.overwrite = overwrite
        self.checksums = checksums  # compute SHA-256 even when no expected value is given
        self._on_warning = on_warning
        self.on_done = on_done
        self.warnings: List[Tuple[str, str]] = []
        self.files = 0
        self.bytes = 0
        self._dirs = DirCache(self._root_fd, self._dir_miss)
        # Regular files are written unnamed (O_TMPFILE) and linked into place when done, where /proc can name
        # the fd; else under a temporary name that is renamed.
        self._unnamed = inst.unnamed_supported()
        self._pending: Dict[str, tuple] = {}
        self._ids = Ids(self._root_fd)
        self._tmpname = Namer()
        self._atime = time.time_ns()
        # Large files are hashed in a second thread, when there is a second CPU to run it (on one, the hand-offs
        # only cost); started at the first such file.
        self._background_hash = background_hash.usable_cpus() > 1
        self._hasher: Optional[background_hash.BackgroundHasher] = None
        self._umask = os.umask(0o022)  # read it (there is no other way), then put it back
        os.umask(self._umask)

    # -- reporting

    def _warn(self, path: str, message: str) -> None:
        self.warnings.append((path, message))
        if self._on_warning is not None:
            self._on_warning(path, message)

    def _completed(self, member: m.Member, ok: bool) -> None:
        if self.on_done is not None:
            self.on_done(member, ok)

    # -- path resolution under the root (rescue.archive.dirs)

    def _dir(self, parts: List[str], create: bool = True) -> int:
        return self._dirs.get(parts, create)

    def _dir_miss(self, key: str) -> None:
        """Called before a directory that is not cached is opened (the parallel extractor waits there for a
        worker still writing a file of that name)."""

    # -- the entry point

    def extract(self, entry: Entry, expected_sha256: Optional[str] = None) -> bool:
        """Restore one entry; False (with a warning) if it was refused, failed, or its data did not verify."""
        member = entry.member
        self._dirs.between_members()
        try:
            parts = split(member.path)
            if self._pending and len(self._pending) >= _MAX_PENDING_DIRS:
                self._settle_dirs(parts)
            ok = self._extract(entry, parts, expected_sha256)
        except _Refused as e:
            self._warn(member.path, str(e))
        except DamagedMemberError:
            pass  # the reader has already named the member and the record
        except (OSError, ValueError, OverflowError) as e:
            self._warn(member.path, f"not restored: {getattr(e, 'strerror', None) or e}")
        else:
            if ok is None:
                return True  # a worker process writes it: on_done follows when it is complete
            if ok:
                self._completed(member, True)
            return ok
        return False

    def _extract(self, entry: Entry, parts: List[str], expected: Optional[str]) -> Optional[bool]:
        member = entry.member
        kind = member.type
        if not parts:
            if kind != m.DIR:
                raise _Refused("a member without a name that is not a directory; refused")
            return self._directory(entry, [])
        if kind == m.FILE:
            return self._file(entry, parts, expected)
        if kind == m.DIR:
            return self._directory(entry, parts)
        parent = self._dir(parts[:-1])
        name = parts[-1]
        if kind == m.SYMLINK:
            return self._special(
                entry, parent, name, lambda tmp: os.symlink(member.linkname, tmp, dir_fd=parent)
            )
        if kind == m.HARDLINK:
            return self._hardlink(entry, parent, name)
        if kind in (m.CHARDEV, m.BLOCKDEV):
            fmt = stat.S_IFCHR if kind == m.CHARDEV else stat.S_IFBLK
            dev = os.makedev(member.devmajor, member.devminor)
            return self._special(
                entry, parent, name, lambda tmp: os.mknod(tmp, fmt | 0o600, dev, dir_fd=parent)
            )
        if kind == m.FIFO:
            return self._special(entry, parent, name, lambda tmp: os.mkfifo(tmp, 0o600, dir_fd=parent))
        raise _Refused(f"unknown member type {kind!r}")

    # -- kinds

    def _file(self, entry: Entry, parts: List[str], expected: Optional[str]) -> Optional[bool]:
        member = entry.member
        parent = self._dir(parts[:-1])
        # Created with its final permission bits: when the umask keeps them all and there are no setuid, setgid
        # or sticky bits (which chown would clear), no fchmod is needed (GNU tar saves it the same way).
        perm = member.mode & 0o777
        chmod = member.mode != perm or perm & self._umask != 0
        digest = None

        def fill(fd: int) -> None:
            nonlocal digest
            digest = self._write_data(fd, entry, expected is not None or self.checksums)
            self._set_meta(fd, entry, chmod=chmod)

        self._replaced(
            inst.place(
                parent,
                parts[-1],
                perm,
                fill,
                unnamed=self._unnamed,
                namer=self._tmpname,
                overwrite=self.overwrite,
                before_rmdir=self._before_rmdir,
            )
        )
        return self._verified(member, digest, expected)

    def _verified(self, member: m.Member, digest: Optional[str], expected: Optional[str]) -> bool:
        if digest is not None:
            member.sha256 = digest
        self.files += 1
        if expected is not None and expected != digest:
            self._warn(member.path, f"SHA-256 mismatch: restored data {digest}, catalog {expected}")
            return False
        return True

    def _write_data(self, fd: int, entry: Entry, hashing: bool) -> Optional[str]:
        h = hashlib.sha256() if hashing else None
        member = entry.member
        if member.sparse is None:
            view = entry.take_all()  # a small file: its data is in the current record, no generator needed
            if view is not None:
                if h is not None:
                    h.update(view)
                self.bytes += len(view)
                inst.write_all(fd, view)
                return h.hexdigest() if h is not None else None
        background = None
        if h is not None and self._background_hash and member.size >= background_hash.MIN_SIZE:
            if self._hasher is None:
                self._hasher = background_hash.BackgroundHasher()
            background = self._hasher
        regions = ((None, None),) if member.sparse is None else member.sparse
        for offset, length in regions:
            if offset is not None:
                if length <= 0:
                    continue
                os.lseek(fd, offset, os.SEEK_SET)
            for chunk in entry.chunks(length):
                if background is not None:
                    background.update(h, chunk)
                elif h is not None:
                    h.update(chunk)
                self.bytes += len(chunk)
                inst.write_all(fd, chunk)
        if member.sparse is not None:
            os.ftruncate(fd, member.size)  # the holes, up to the apparent size
        if background is not None:
            return background.hexdigest(h)
        return h.hexdigest() if h is not None else None

    def _install(self, tmp: str, parent: int, name: str) -> None:
        self._replaced(inst.install(tmp, parent, name, self.overwrite, self._before_rmdir))

    def _before_rmdir(self) -> None:
        """Called before an empty directory in the way of a member is removed."""

    def _replaced(self, removed_dir: bool) -> None:
        if removed_dir:
            self._dirs.stale = (
                True  # a cached fd may be the removed directory; dropped before the next member
            )

    def _special(self, entry: Entry, parent: int, name: str, make) -> bool:
        """Symlinks, devices and fifos: made under a temporary name, metadata set by name (never followed)."""
        member = entry.member
        tmp = self._tmpname()
        make(tmp)
        try:
            if self.same_owner:
                uid, gid = self._owner(member)
                os.chown(tmp, uid, gid, dir_fd=parent, follow_symlinks=False)
            if member.type != m.SYMLINK:
                # tmp is a node this process just made, not a symlink: chmod by name is safe here.
                os.chmod(tmp, member.mode, dir_fd=parent)
            xattrs = self._xattrs(entry)
            if xattrs:
                self._apply_xattrs(f"/proc/self/fd/{parent}/{tmp}", member.path, xattrs, follow=False)
            os.utime(tmp, ns=(self._atime, member.mtime_ns), dir_fd=parent, follow_symlinks=False)
        except BaseException:
            inst.unlink_quietly(tmp, parent)
            raise
        self._install(tmp, parent, name)
        return True

    def _hardlink(self, entry: Entry, parent: int, name: str) -> bool:
        member = entry.member
        src_parts = split(member.linkname)
        if not src_parts:
            raise _Refused("hard link to the target root itself; refused")
        try:
            src_parent = self._dir(src_parts[:-1], create=False)
            os.stat(src_parts[-1], dir_fd=src_parent, follow_symlinks=False)
        except FileNotFoundError:
            raise _Refused(f"hard link target '{member.linkname}' was not restored; link not made") from None
        try:
            os.link(src_parts[-1], name, src_dir_fd=src_parent, dst_dir_fd=parent, follow_symlinks=False)
            return True
        except FileExistsError:
            pass
        tmp = self._tmpname()
        os.link(src_parts[-1], tmp, src_dir_fd=src_parent, dst_dir_fd=parent, follow_symlinks=False)
        self._install(tmp, parent, name)
        # rename(2) does nothing when both names are links to the same file: drop the spare name.
        inst.unlink_quietly(tmp, parent)
        return True

    def _directory(self, entry: Entry, parts: List[str]) -> bool:
        member = entry.member
        if parts:
            parent = self._dir(parts[:-1])
            name = parts[-1]
            try:
                os.mkdir(name, 0o700, dir_fd=parent)
            except FileExistsError:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    if not self.overwrite:
                        raise _Refused(
                            "exists and is not a directory; not replaced (overwrite is off)"
                        ) from None
                    os.unlink(name, dir_fd=parent)
                    os.mkdir(name, 0o700, dir_fd=parent)
        fd = self._dir(parts)
        if self.same_owner:
            uid, gid = self._owner(member)
            os.fchown(fd, uid, gid)
        self._pending["/".join(parts)] = (member.mode, member.mtime_ns, self._xattrs(entry), member.path)
        return True

    # -- metadata

    def _owner(self, member: m.Member) -> Tuple[int, int]:
        if self.numeric_owner:
            return member.uid, member.gid
        uid = self._ids.lookup("passwd", member.uname)
        gid = self._ids.lookup("group", member.gname)
        return (member.uid if uid is None else uid), (member.gid if gid is None else gid)

    def _set_meta(self, fd: int, entry: Entry, chmod: bool = True) -> None:
        member = entry.member
        if self.same_owner:
            uid, gid = self._owner(member)
            os.fchown(fd, uid, gid)
        if chmod:
            os.fchmod(fd, member.mode)  # after chown, which clears setuid/setgid
        xattrs = self._xattrs(entry)
        if xattrs:
            self._apply_xattrs(fd, member.path, xattrs, follow=True)
        os.utime(fd, ns=(self._atime, member.mtime_ns))

    def _xattrs(self, entry: Entry) -> Dict[str, bytes]:
        """The member's xattrs, with ACLs from SCHILY.acl text when the binary xattr is absent (or names are
        wanted: numeric_owner=False prefers the text, whose names are mapped on the target)."""
        xattrs = entry.member.xattrs
        acls = entry.acls
        if not acls:
            return xattrs
        xattrs = dict(xattrs)
        for kind, key in (("access", xa.ACL_ACCESS_XATTR), ("default", xa.ACL_DEFAULT_XATTR)):
            text = acls.get(kind)
            if text is None or (key in xattrs and self.numeric_owner):
                continue
            try:
                entries = xa.acl_from_text(
                    star_to_plain(text, self.numeric_owner),
                    user_id=lambda n: self._ids_or_fail("passwd", n),
                    group_id=lambda n: self._ids_or_fail("group", n),
                )
            except ValueError as e:
                self._warn(entry.member.path, f"ACL not restored: {e}")
                continue
            if not entries:
                xattrs.pop(key, None)
                continue
            if kind == "access" and len(entries) <= 3:
                xattrs.pop(key, None)  # only the mode bits: no ACL xattr (the mode says it all)
                continue
            xattrs[key] = xa.encode_acl_xattr(entries)
        return xattrs

    def _ids_or_fail(self, kind: str, name: str) -> int:
        found = self._ids.lookup(kind, name)
        if found is None:
            raise ValueError(f"unknown {'user' if kind == 'passwd' else 'group'} {name!r}")
        return found

    def _apply_xattrs(self, target, path: str, xattrs: Dict[str, bytes], follow: bool) -> None:
        for name, value in xattrs.items():
            try:
                os.setxattr(target, name, value, follow_symlinks=follow)
            except OSError as e:
                self._warn(path, f"xattr {name} not restored: {e.strerror}")

    # -- directories, after their contents

    def _settle_dirs(self, parts: List[str]) -> None:
        """Apply pending directory metadata for directories that are not ancestors of the member at `parts`."""
        here = "/".join(parts)
        for key in [k for k in self._pending if not (here == k or here.startswith(k + "/") or k == "")]:
            self._apply_dir(key, self._pending.pop(key))

    def _apply_dir(self, key: str, info: tuple) -> None:
        mode, mtime_ns, xattrs, path = info
        try:
            fd = self._dir(key.split("/") if key else [], create=False)
            os.fchmod(fd, mode)
            if xattrs:
                self._apply_xattrs(fd, path, xattrs, follow=True)
            os.utime(fd, ns=(self._atime, mtime_ns))
        except (_Refused, FileNotFoundError):
            pass  # a later member replaced the directory (or a parent) with something else: that one wins
        except OSError as e:
            self._warn(path, f"directory metadata not restored: {e.strerror}")
        self._dirs.between_members()

    def finish(self) -> None:
        """Set the pending directories' modes, xattrs and mtimes, children first; close the cached fds."""
        # Reverse tape order: children before their parents (a parent may become unsearchable for non-root),
        # and neighbours together, so the directory fd cache keeps working.
        for key in reversed(list(self._pending)):
            self._apply_dir(key, self._pending[key])
        self._pending.clear()
        self._dirs.forget()

    def close(self) -> None:
        self._dirs.forget()
        if self._hasher is not None:
            self._hasher.close()
            self._hasher = None
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.finish()
        self.close()
