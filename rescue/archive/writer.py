"""Write a directory tree to a tape as one POSIX pax archive that GNU tar extracts: the backup's hot path.

    write_archive(tape, root, *, record_size=DEFAULT_RECORD_SIZE, walk=EVERYTHING, on_member=None,
                  progress=None, acls=True, xattrs=True, threaded=True) -> WriteResult

Algorithm.  The walk (rescue.archive.walk, as `walk` says: excludes, default excludes, priority paths, extra
trees, one file system; extra trees first, priority paths, then the rest; one lstat per entry)
yields entries; each becomes a Member, whose header blocks (rescue.archive.headers) and data go into fixed-size
records (rescue.archive.record_writer: file data is read straight into the record buffer, a writer thread
hashes and writes full records while the next file is read).  The SHA-256 of a regular file's data is
computed on those same buffers.  A small file without xattrs takes a fast path: header encoded straight into
the record, data read with one read(2), no intermediate bytes objects (per-member Python work, not data
copying, is what limits a tree of small files; see RecordWriter.file_into).  After the last member come tar's
two zero blocks and zero padding to a whole record; no filemark (the volume layer writes it).

Names are relative and without "./" ("etc/passwd"), the root itself is not a member: `tar -C TARGET -xpf
ARCHIVE -b N` restores the tree into TARGET.  The catalog callback `on_member(member)` is called once per
member, in archive order, with `record`/`offset` of its FIRST header block (the pax header when there is one)
and, for regular files, `sha256`; it runs once the member's last record has been hashed (in the writer thread,
so a few records after its data; `threaded=False` does everything in the calling thread).  For a sparse file the digest covers the data regions in map order (the
bytes stored after the map), not the holes: hashing a terabyte of holes (lastlog) would cost minutes.

Hard links (st_nlink > 1, any non-directory) after the first become link members naming the first one.  A file
with fewer allocated blocks than its size is checked with SEEK_DATA/SEEK_HOLE and, if it has holes, stored as
GNU sparse 1.0.  Extended attributes (all namespaces, incl. security.capability, security.selinux and the
system.posix_acl_* values) and POSIX ACLs are stored as GNU tar --xattrs --acls stores them.

Files that change never stop the backup; as GNU tar does, the member keeps the size in its header:
- vanished or unreadable before it is opened: no member, a warning;
- shorter than its header (truncated while read) or a read error: the rest is padded with zeros, a warning;
- longer, or modified while read (size, mtime or ctime differ after the read): the header's size is written,
  a warning "file changed as we read it".
`default_excludes` (proc, sys, dev, run, tmp ...) keep the directory itself, empty, so the restored system has
its mount points; `excludes` leave a path out entirely (see rescue.archive.walk).
Warnings end the job with exit 1 (`WriteResult.exit_code`); sockets and unknown types are skipped and listed in
`WriteResult.skipped` without changing the exit code (GNU tar: "socket ignored").
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import hashlib
import os
import stat
from typing import Callable, List, Optional, Tuple

from rescue.archive import tarformat as tf
from rescue.archive.headers import HeaderEncoder, end_of_archive, sparse_map
from rescue.archive.member import BLOCKDEV, CHARDEV, DIR, FIFO, FILE, HARDLINK, SYMLINK, Member
from rescue.archive.record_writer import RecordWriter
from rescue.archive.walk import EVERYTHING, WalkSettings
from rescue.archive.xattrs import NameCache, acl_texts, read_xattrs
from rescue.errors import EXIT_OK, EXIT_PARTIAL

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_NOATIME = getattr(os, "O_NOATIME", 0)
_SEEK_DATA = getattr(os, "SEEK_DATA", None)
_SEEK_HOLE = getattr(os, "SEEK_HOLE", None)
_sha256 = hashlib.sha256
_S_ISREG = stat.S_ISREG


@dataclasses.dataclass
class WriteResult:
    members: int = 0
    files: int = 0  # regular files with data (not hard links)
    bytes: int = 0  # file data bytes written (headers and padding not counted)
    records: int = 0
    warnings: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)  # sockets, unknown types

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.warnings else EXIT_OK


def sparse_regions(fd: int, size: int) -> Optional[List[Tuple[int, int]]]:
    """Data regions [(offset, length)] of a file with holes, found with SEEK_DATA/SEEK_HOLE, ending with
    (size, 0) when the file ends in a hole (as GNU tar's map does); None when the file has no holes or the
    file system cannot tell."""
    if _SEEK_DATA is None or size == 0:
        return None
    regions = []
    pos = 0
    try:
        while pos < size:
            try:
                data = os.lseek(fd, pos, _SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:  # no data after pos: the rest is a hole
                    break
                raise
            if data >= size:
                break
            hole = min(os.lseek(fd, data, _SEEK_HOLE), size)
            regions.append((data, hole - data))
            pos = hole
    except OSError:
        return None
    finally:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError:
            pass
    if len(regions) == 1 and regions[0] == (0, size):
        return None
    if not regions or regions[-1][0] + regions[-1][1] < size:
        regions.append((size, 0))
    return regions


class _ArchiveWriter:
    """The per-member work, with its caches (names, hard links) and counters."""

    def __init__(self, rw: RecordWriter, on_member, progress, acls: bool, xattrs: bool):
        self.rw = rw
        self.encoder = HeaderEncoder()
        self.names = NameCache()
        self.on_member = on_member
        self.progress = progress
        self.acls = acls
        self.xattrs = xattrs
        self.want_meta = acls or xattrs
        self.links: dict = {}  # (dev, ino) -> [first path, links still to come]
        self.owners: dict = {}  # (uid, gid) -> (user name, group name)
        self.result = WriteResult()
        self._open_flags = _OPEN_FLAGS | _NOATIME
        # Members written but not yet reported: digests are final only once their records are hashed (in the
        # writer thread); on_member is called in archive order.  Entries: (member, hasher, record, data bytes).
        self.pending: collections.deque = collections.deque()
        self._reported = -1  # rw.done at the last report()

    def warn(self, path: str, message: str) -> None:
        self.result.warnings.append((path, message))

    def skip(self, path: str, message: str) -> None:
        self.result.skipped.append((path, message))

    def _metadata(self, target, follow: bool, mode: int, is_dir: bool, path: str, m: Member):
        """Fill m.xattrs and return the ACL texts (access, default) from the file's xattrs."""
        try:
            attrs = read_xattrs(target, follow_symlinks=follow)
        except OSError as e:
            self.warn(path, f"Cannot read extended attributes: {os.strerror(e.errno)}")
            return None, None
        if not attrs:
            return None, None
        access = default = None
        if self.acls:
            access, default = acl_texts(attrs, mode, is_dir, self.names)
        if self.xattrs:
            m.xattrs = attrs
        return access, default

    def _open(self, name: str, dir_fd: int, path: str) -> int:
        try:
            return os.open(name, self._open_flags, dir_fd=dir_fd)
        except PermissionError as e:
            if self._open_flags & _NOATIME and e.errno == errno.EPERM:
                # O_NOATIME needs ownership or CAP_FOWNER (open(2)): drop it for the rest of the run
                self._open_flags = _OPEN_FLAGS
                return self._open(name, dir_fd, path)
            self.warn(path, f"Cannot open: {os.strerror(e.errno)}")
        except FileNotFoundError:
            self.warn(path, "File removed before we read it")
        except OSError as e:
            self.warn(path, f"Cannot open: {os.strerror(e.errno)}")
        return -1

    def _owner(self, uid: int, gid: int) -> Tuple[str, str]:
        """(user name, group name) of an owner, looked up once per (uid, gid) pair."""
        owner = self.owners[(uid, gid)] = (self.names.user(uid), self.names.group(gid))
        return owner

    def add(self, entry) -> None:
        path, name, dir_fd, st, fd, parent = entry
        mode = st.st_mode
        uid = st.st_uid
        gid = st.st_gid
        owner = self.owners.get((uid, gid))
        if owner is None:
            owner = self._owner(uid, gid)
        m = Member(path, FILE, 0, mode & 0o7777, uid, gid, owner[0], owner[1], st.st_mtime_ns)
        want_meta = self.want_meta
        if _S_ISREG(mode) and st.st_nlink == 1:  # the common case first
            self._add_file(m, name, dir_fd, st, want_meta)
            return
        access = default = None
        if st.st_nlink > 1 and not stat.S_ISDIR(mode):
            # any non-directory can have hard links (GNU tar links symlinks, devices and fifos too)
            key = (st.st_dev, st.st_ino)
            first = self.links.get(key)
            if first is not None:
                m.type = HARDLINK
                m.linkname = first[0]
                first[1] -= 1
                if first[1] <= 0:
                    del self.links[key]
                self._header(m, None, None)
                return
        if stat.S_ISREG(mode):
            self._add_file(m, name, dir_fd, st, want_meta)
            return
        if stat.S_ISDIR(mode):
            m.type = DIR
            if want_meta:
                if fd >= 0:
                    access, default = self._metadata(fd, True, mode, True, path, m)
                else:
                    access, default = self._metadata(os.path.join(parent, name), False, mode, True, path, m)
        elif stat.S_ISLNK(mode):
            m.type = SYMLINK
            try:
                m.linkname = os.readlink(name, dir_fd=dir_fd)
            except OSError as e:
                self.warn(path, f"Cannot readlink: {os.strerror(e.errno)}")
                return
            if self.xattrs:
                self._metadata(os.path.join(parent, name), False, mode, False, path, m)
        else:
            if stat.S_ISCHR(mode):
                m.type = CHARDEV
            elif stat.S_ISBLK(mode):
                m.type = BLOCKDEV
            elif stat.S_ISFIFO(mode):
                m.type = FIFO
            else:
                self.skip(path, "Unknown file type; file ignored")
                return
            if m.type != FIFO:
                m.devmajor = os.major(st.st_rdev)
                m.devminor = os.minor(st.st_rdev)
            if want_meta:
                access, _ = self._metadata(os.path.join(parent, name), False, mode, False, path, m)
        self._header(m, access, default)
        if st.st_nlink > 1 and m.type != DIR:
            self.links[(st.st_dev, st.st_ino)] = [path, st.st_nlink - 1]

    def _write_header(self, m: Member, access, default) -> None:
        """The member's header blocks into the records, with m.record/m.offset set to where they start."""
        rw = self.rw
        if access is None and default is None and rw.header_into(self.encoder.encode_into, m):
            return
        m.record, m.offset = rw.position()
        rw.write(self.encoder.encode(m, access, default))

    def _header(self, m: Member, access, default) -> None:
        self._write_header(m, access, default)
        self.result.members += 1
        self.pending.append((m, None, 0, 0))
        self.report()

    def report(self, final: bool = False) -> None:
        """Call on_member/progress for the members whose records are done (all of them when final)."""
        done = self.rw.done
        if done == self._reported and not final:
            return  # nothing new is final: members wait for the record that completes them
        self._reported = done
        pending = self.pending
        on_member = self.on_member
        progress = self.progress
        while pending:
            m, hasher, record, nbytes = pending[0]
            if hasher is not None:
                if record >= done and not final:
                    return
                m.sha256 = hasher.hexdigest()
            pending.popleft()
            if on_member is not None:
                on_member(m)
            if progress is not None:
                progress.update(nbytes, 1)

    def _add_file(self, m: Member, name: str, dir_fd: int, st, want_meta: bool) -> None:
        path = m.path
        try:
            fd = os.open(name, self._open_flags, dir_fd=dir_fd)
        except OSError:
            fd = self._open(name, dir_fd, path)  # retries without O_NOATIME, or warns
            if fd < 0:
                return
        try:
            access = default = None
            if want_meta:
                try:
                    listed = os.listxattr(fd)  # most files have none: skip the general path
                except OSError:
                    listed = True  # _metadata tells a real error from "no xattrs here"
                if listed:
                    access, default = self._metadata(fd, True, st.st_mode, False, path, m)
            size = st.st_size
            m.size = size
            regions = None
            if st.st_blocks * 512 < size:
                regions = sparse_regions(fd, size)
                m.sparse = regions
            rw = self.rw
            hasher = _sha256()
            last_record = -1
            complete = True
            stored = size
            if regions is None and access is None and default is None:
                last_record = rw.file_into(self.encoder.encode_into, m, fd, size, hasher)
            if last_record >= 0:
                pass  # the common case: header, data and padding are in the record
            elif regions is None:
                self._write_header(m, access, default)
                rw.start_hash(hasher)
                if size:
                    complete = self._copy(fd, size, None, path)
                last_record = rw.stop_hash(pad=True)
            else:
                self._write_header(m, access, default)
                rw.write(sparse_map(regions))
                rw.start_hash(hasher)
                complete = True
                stored = 0
                for off, length in regions:
                    complete = self._copy(fd, length, off, path) and complete
                    stored += length
                last_record = rw.stop_hash(pad=True)
            try:
                after = os.fstat(fd)
                if complete and (
                    after.st_size != size
                    or after.st_mtime_ns != st.st_mtime_ns
                    or after.st_ctime_ns != st.st_ctime_ns
                    or after.st_ino != st.st_ino
                ):
                    self.warn(path, "file changed as we read it")
            except OSError:
                pass
        finally:
            os.close(fd)
        if st.st_nlink > 1:
            self.links[(st.st_dev, st.st_ino)] = [path, st.st_nlink - 1]
        result = self.result
        result.members += 1
        result.files += 1
        result.bytes += stored
        self.pending.append((m, hasher, last_record, stored))
        if self.rw.done != self._reported:
            self.report()

    def _copy(self, fd: int, n: int, offset: Optional[int], path: str) -> bool:
        """Copy n bytes of file data (at offset, or from the file position) into the records; pad with zeros
        what cannot be read, as GNU tar does (and, as it does, warn once: no "changed" warning on top).
        Returns False if it padded."""
        got = 0
        try:
            got = self.rw.read_from(fd, n, offset)
            if got < n:
                self.warn(path, f"File shrank by {n - got} bytes; padding with zeros")
        except OSError as e:
            got = self.rw.last_read
            where = (offset or 0) + got
            self.warn(
                path, f"Read error at byte {where}, while reading {n - got} bytes: {os.strerror(e.errno)}"
            )
        if got < n:
            self.rw.zeros(n - got)
            return False
        return True


def write_archive(
    tape,
    root: str,
    *,
    record_size: int = tf.DEFAULT_RECORD_SIZE,
    walk: WalkSettings = EVERYTHING,
    on_member: Optional[Callable[[Member], None]] = None,
    progress=None,
    acls: bool = True,
    xattrs: bool = True,
    threaded: bool = True,
) -> WriteResult:
    """Archive `root` (and the `extra` trees first) to `tape`; see the module docstring."""
    rw = RecordWriter(tape, record_size, threaded=threaded)
    writer = _ArchiveWriter(rw, on_member, progress, acls, xattrs)
    walker = walk.walker(root, on_warning=writer.warn, on_skip=writer.skip)
    try:
        for entry in walker:
            writer.add(entry)
        rw.write(end_of_archive())
        writer.result.records = rw.close()
        writer.report(final=True)
    except BaseException:
        rw.abort()
        raise
    return writer.result
