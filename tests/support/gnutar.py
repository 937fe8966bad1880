"""Trees with every kind of member, archived and extracted by real GNU tar and by our reader and extractor, for
the tests that compare the two: `build_tree` makes the tree, `snapshot` and `data_map` describe one for comparison,
`tar_create`/`gnu_extract` run GNU tar, `our_extract` runs ours, `to_simh` copies an archive onto a tape image
record by record, `assert_positions` checks the members' (record, offset)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess

from rescue.archive import parse
from rescue.archive.extract import Extractor
from rescue.archive.reader import ArchiveReader
from rescue.tape.simh import SimhTape

IS_ROOT = os.geteuid() == 0
MTIME_NS = 1_700_000_000_123_456_789


def build_tree(root, *, long_names=True, big_ids=False, xattrs=False, sparse=False, specials=True):
    """A small tree with every kind of member; options add what only some formats can hold."""
    os.makedirs(root)
    p = lambda *a: os.path.join(root, *a)  # noqa: E731
    with open(p("file.txt"), "wb") as f:
        f.write(b"hello world\n" * 100)
    with open(p("big.bin"), "wb") as f:
        f.write(os.urandom(700_000))
    open(p("empty"), "wb").close()
    os.mkdir(p("dir"))
    with open(p("dir", "résumé.txt"), "wb") as f:
        f.write(b"unicode name\n")
    os.chmod(p("dir"), 0o750)
    with open(p("suid"), "wb") as f:
        f.write(b"#!/bin/sh\n")
    os.symlink("file.txt", p("sym"))
    os.link(p("file.txt"), p("hard"))
    if specials:
        os.mkfifo(p("fifo"))
    if IS_ROOT:
        os.chown(p("suid"), 1234, 2345)
    if IS_ROOT and specials:
        os.mknod(p("null"), 0o620 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(p("suid"), 0o4755)
    if long_names:
        deep = p("d" * 120, "e" * 90)
        os.makedirs(deep)
        with open(os.path.join(deep, "f" * 150), "wb") as f:
            f.write(b"long name\n")
        os.symlink("t" * 180, p("longsym"))
        os.link(os.path.join(deep, "f" * 150), p("hard-to-long"))
    if big_ids and IS_ROOT:
        with open(p("bigid"), "wb") as f:
            f.write(b"big ids\n")
        os.chown(p("bigid"), 3_000_000, 4_000_000)
    if xattrs:
        os.setxattr(p("file.txt"), "user.colour", b"blue\x00\xff")
        subprocess.run(["setfacl", "-m", "u:1234:rw,g:2345:r", p("file.txt")], check=True)
        subprocess.run(["setfacl", "-d", "-m", "u:1234:rwx", p("dir")], check=True)
    if sparse:
        with open(p("sparse.img"), "wb") as f:
            f.truncate(20 * 1024 * 1024)
            f.seek(4096)
            f.write(b"data" * 1024)
            f.seek(12 * 1024 * 1024)
            f.write(b"more" * 4096)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)
    os.utime(root, ns=(MTIME_NS, MTIME_NS))


def data_map(path):
    """[(start, end)] of data regions, by SEEK_DATA/SEEK_HOLE."""
    regions = []
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.fstat(fd).st_size
        pos = 0
        while pos < end:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            stop = os.lseek(fd, start, os.SEEK_HOLE)
            regions.append((start, stop))
            pos = stop
    finally:
        os.close(fd)
    return regions


def snapshot(root, *, with_atime=False):
    """Everything a restore must reproduce, per relative path."""
    out = {}
    first_of_inode = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in [""] + dirnames + filenames if dirpath == root else dirnames + filenames:
            path = os.path.join(dirpath, n) if n else dirpath
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            entry = {
                "type": stat.S_IFMT(st.st_mode),
                "mode": oct(stat.S_IMODE(st.st_mode)),
                "uid": st.st_uid,
                "gid": st.st_gid,
                "mtime_ns": st.st_mtime_ns,
            }
            try:
                names = os.listxattr(path, follow_symlinks=False)
            except OSError:
                names = []
            entry["xattrs"] = {x: os.getxattr(path, x, follow_symlinks=False) for x in sorted(names)}
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    entry["sha256"] = hashlib.sha256(f.read()).hexdigest()
                entry["size"] = st.st_size
                entry["map"] = data_map(path)
                key = (st.st_dev, st.st_ino)
                entry["inode_of"] = first_of_inode.setdefault(key, rel)
            elif stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                entry["rdev"] = st.st_rdev
            out[rel] = entry
    return out


def tar_create(src, archive, fmt, *extra):
    cmd = ["tar", f"--format={fmt}", *extra, "-cf", archive, "-C", src, "."]
    subprocess.run(cmd, check=True, capture_output=True)


def gnu_extract(archive, dest, *extra):
    os.makedirs(dest)
    cmd = ["tar", "-xpf", archive, "--numeric-owner", *extra, "-C", dest]
    subprocess.run(cmd, check=True, capture_output=True)


def our_extract(tape, dest, **kwargs):
    os.makedirs(dest)
    reader = ArchiveReader(tape, **kwargs)
    with Extractor(dest) as x:
        entries = []
        for entry in reader:
            assert x.extract(entry), (entry.member.path, x.warnings)
            entries.append(entry.member)
    assert reader.warnings == []
    assert x.warnings == []
    return entries


def to_simh(archive, tap, record_size):
    """Copy an archive file into a .tap image, one tape record per `record_size` bytes as tar wrote them."""
    with open(archive, "rb") as f, SimhTape(tap, write=True) as t:
        while True:
            chunk = f.read(record_size)
            if not chunk:
                break
            t.write_record(chunk)
        t.write_filemarks(1)


def assert_positions(archive, members, record_size):
    """Each member's (record, offset) is where a header block starts in the archive bytes."""
    with open(archive, "rb") as f:
        for mem in members:
            f.seek(mem.record * record_size + mem.offset)
            block = f.read(512)
            assert parse.checksum_ok(block), mem.path
