"""Builders for the archive, reader and extraction tests (the `memory_tape` fixture wraps MemoryTape).

What is here:
- `MemoryTape`: an in-memory Tape (records kept as bytes); `.data` is the archive as one stream,
  `.save(path)` writes it as a plain archive file for GNU tar.
- `write_tree_archive(root, path, **kw)`: runs rescue.archive.writer.write_archive into a file; returns
  (WriteResult, [Member, ...] as passed to on_member).
- `build_tree(root, *, privileged)`: a tree with every kind of member the writer handles: regular files of
  several sizes (empty, 1 byte, block-aligned, over a record), setuid/setgid/sticky modes, nanosecond mtimes,
  foreign uid/gid, directories, symlinks (short, long, dangling), hard links, a long name (> 100 bytes), a
  non-UTF-8 name, a non-ASCII name, a sparse file and one that is all hole, user.* xattrs (binary value, "=" and "%" in names), a POSIX
  ACL (access, and default on a directory); with `privileged` (root): a fifo, char and block devices, trusted.*,
  security.capability and (where the kernel lets root set it) security.selinux xattrs, a foreign uid/gid.  Returns nothing; snapshot it with `snapshot()`.
- `snapshot(root)`: {path: metadata} of a tree (type, mode, ids, mtime_ns, size, sha256, symlink target, rdev,
  xattrs incl. ACLs, data map from SEEK_DATA/SEEK_HOLE, hard-link group), for comparing two trees.
- `gnu_tar(*args)`: runs GNU tar with LC_ALL=C, returns CompletedProcess (stdout/stderr bytes).
- `small_tree(root, dirs, per_dir)`, `gnu_archive(tree, path)`: many small files, and GNU tar's archive of them.
- `extract_each(extractor, entries, expected)`: extracts every entry and finishes; returns ({path: final result},
  {path: Member}).  A file's final result comes through on_done: with worker processes it is known only
  after extract() returned (a checksum mismatch, a write error), and `member.sha256` is set then too.
- `IS_ROOT`.
"""

from __future__ import annotations

import hashlib
import os
import random
import stat
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

from rescue.archive.member import Member
from rescue.tape.base import Tape

IS_ROOT = os.geteuid() == 0
NS = 1_000_000_000


class MemoryTape(Tape):
    """Records in a list; write_record copies (the writer reuses its buffers)."""

    name = "memory"
    kind = "memory"

    def __init__(self, fail_after: int = -1, error: Exception = None):
        self.records: List[bytes] = []
        self.fail_after = fail_after
        self.error = error
        self.on_write = None  # callable(record_number) run before a record is stored

    def write_record(self, data) -> None:
        if self.on_write is not None:
            self.on_write(len(self.records))
        if 0 <= self.fail_after <= len(self.records):
            raise self.error
        self.records.append(bytes(data))

    @property
    def data(self) -> bytes:
        return b"".join(self.records)

    def save(self, path) -> Path:
        Path(path).write_bytes(self.data)
        return Path(path)


def write_tree_archive(root, path, **kw) -> Tuple[object, List[Member]]:
    from rescue.archive.writer import write_archive

    members: List[Member] = []
    tape = MemoryTape()
    result = write_archive(tape, str(root), on_member=members.append, **kw)
    tape.save(path)
    return result, members


def extract_each(x, entries, expected=None) -> Tuple[Dict[str, bool], Dict[str, Member]]:
    results: Dict[str, bool] = {}
    members: Dict[str, Member] = {}

    def done(member: Member, ok: bool) -> None:
        results[member.path] = ok

    x.on_done = done
    for entry in entries:
        path = entry.member.path
        members[path] = entry.member
        if not x.extract(entry, (expected or {}).get(path)):
            results[path] = False
    x.finish()
    return results, members


def gnu_tar(*args, cwd=None, check=False) -> subprocess.CompletedProcess:
    env = dict(os.environ, LC_ALL="C")
    return subprocess.run(["tar", *map(str, args)], capture_output=True, env=env, cwd=cwd, check=check)


def _set_times(path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def build_tree(root, *, privileged: bool = IS_ROOT) -> None:
    root = Path(root)
    root.mkdir(exist_ok=True)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_bytes(b"root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "empty").write_bytes(b"")
    (root / "etc" / "one").write_bytes(b"1")
    (root / "etc" / "block").write_bytes(bytes(range(256)) * 2)
    (root / "var" / "lib").mkdir(parents=True)
    big = hashlib.sha256(b"seed").digest() * (300 * 1024 // 32 + 7)
    (root / "var" / "lib" / "big.bin").write_bytes(big)
    (root / "usr" / "bin").mkdir(parents=True)
    suid = root / "usr" / "bin" / "suid"
    suid.write_bytes(b"#!/bin/sh\n")
    os.chmod(suid, 0o4755)
    sgid = root / "usr" / "bin" / "sgid"
    sgid.write_bytes(b"x")
    os.chmod(sgid, 0o2711)
    (root / "tmp").mkdir()
    os.chmod(root / "tmp", 0o1777)
    os.symlink("passwd", root / "etc" / "link")
    os.symlink("../" * 40 + "target/" + "t" * 60, root / "etc" / "longlink")
    os.symlink("does/not/exist", root / "etc" / "dangling")
    os.link(root / "etc" / "passwd", root / "etc" / "passwd.hard")
    os.link(root / "etc" / "passwd", root / "var" / "passwd.hard2")
    deep = root / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / ("f" * 90)).write_bytes(b"long name\n")
    (root / os.fsdecode(b"latin1-\xe9t\xe9")).write_bytes(b"not utf-8\n")
    (root / "caf\u00e9-\u65e5\u672c").write_bytes(b"utf-8\n")
    sparse = root / "var" / "lib" / "sparse.img"
    with open(sparse, "wb") as f:
        f.truncate(64 * 1024 * 1024)
        f.seek(1024 * 1024)
        f.write(b"a" * 8192)
        f.seek(40 * 1024 * 1024)
        f.write(b"b" * 100)
    with open(root / "var" / "lib" / "all-hole.img", "wb") as f:
        f.truncate(5 * 1024 * 1024)
    attr = root / "etc" / "attrs"
    attr.write_bytes(b"x")
    os.setxattr(attr, "user.plain", b"value")
    os.setxattr(attr, "user.binary", b"\x00\xff\xfe=%\n")
    os.setxattr(attr, "user.a=b%c", b"odd name")
    acl = root / "etc" / "acl"
    acl.write_bytes(b"acl")
    subprocess.run(["setfacl", "-m", "u:daemon:rwx,g:adm:r,u:12345:r", str(acl)], check=True)
    (root / "srv").mkdir()
    subprocess.run(["setfacl", "-d", "-m", "u:daemon:rx", str(root / "srv")], check=True)
    owned = root / "etc" / "owned"
    owned.write_bytes(b"owned")
    if privileged:
        os.chown(owned, 4321, 8765)
        (root / "dev").mkdir()
        os.mknod(root / "dev" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(root / "dev" / "sda1", 0o660 | stat.S_IFBLK, os.makedev(8, 1))
        os.mkfifo(root / "dev" / "fifo")
        os.link(root / "dev" / "fifo", root / "dev" / "fifo.hard")
        os.setxattr(root / "usr" / "bin" / "suid", "trusted.note", b"t")
        # security.capability v2 for cap_net_raw=ep, as setcap writes it
        cap = bytes.fromhex("0100000200200000000000000000000000000000")
        os.setxattr(root / "usr" / "bin" / "sgid", "security.capability", cap)
        try:  # stored as a plain xattr where no SELinux policy is loaded; refused where one is
            os.setxattr(root / "etc" / "passwd", "security.selinux", b"system_u:object_r:passwd_file_t:s0\0")
        except OSError:
            pass
    # nanosecond mtimes everywhere, directories last (their contents changed them)
    t = 1_700_000_000 * NS + 123_456_789
    paths = sorted((p for p in root.rglob("*")), key=lambda p: len(p.parts), reverse=True)
    for i, p in enumerate(paths):
        _set_times(p, t + i * 1_000_003)


def data_map(path) -> List[Tuple[int, int]]:
    """Data regions from SEEK_DATA/SEEK_HOLE."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        out, pos = [], 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            out.append((data, hole - data))
            pos = hole
        return out
    finally:
        os.close(fd)


def snapshot(root) -> Dict[str, dict]:
    root = os.fsencode(str(root))
    out: Dict[str, dict] = {}
    inodes: Dict[tuple, list] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.fsdecode(os.path.relpath(full, root))
            st = os.lstat(full)
            info = {
                "mode": stat.S_IMODE(st.st_mode),
                "fmt": stat.S_IFMT(st.st_mode),
                "uid": st.st_uid,
                "gid": st.st_gid,
                "xattrs": {n: os.getxattr(full, n, follow_symlinks=False) for n in sorted(_listx(full))},
            }
            if not stat.S_ISLNK(st.st_mode):
                info["mtime_ns"] = st.st_mtime_ns
            if stat.S_ISREG(st.st_mode):
                info["size"] = st.st_size
                with open(full, "rb") as f:
                    info["sha256"] = hashlib.sha256(f.read()).hexdigest()
                info["map"] = data_map(full)
            if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
                info["link_group"] = (st.st_dev, st.st_ino)
            if stat.S_ISLNK(st.st_mode):
                info["target"] = os.readlink(full)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                info["rdev"] = st.st_rdev
            out[rel] = info
    for info in out.values():  # a hard-link group is named by its first path in sorted order
        if "link_group" in info:
            info["link_group"] = min(inodes[info["link_group"]])
    return out


def _listx(path) -> List[str]:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []


def small_tree(root, dirs: int, per_dir: int, seed: int = 1, max_size: int = 4096) -> None:
    """dirs x per_dir files of 0..max_size bytes (some setuid or 0600), dated directories, a symlink, a hard link."""
    rng = random.Random(seed)
    pool = rng.randbytes(64 * 1024)
    os.makedirs(root)
    for d in range(dirs):
        sub = os.path.join(root, f"d{d:04d}")
        os.mkdir(sub)
        for i in range(per_dir):
            n = int(rng.random() ** 2 * max_size)
            with open(os.path.join(sub, f"f{i:03d}"), "wb") as f:
                f.write(pool[:n])
            if i % 7 == 0:
                os.chmod(os.path.join(sub, f"f{i:03d}"), 0o4750 if i % 2 else 0o600)
        os.utime(sub, ns=(0, 1_500_000_000_000_000_000 + d))
    os.symlink("d0000/f001", os.path.join(root, "sym"))
    os.link(os.path.join(root, "d0001", "f001"), os.path.join(root, "hard"))


def gnu_archive(tree, path) -> str:
    """GNU tar's pax archive of the tree's content (the tests that use it call need_tool("tar") first)."""
    subprocess.run(["tar", "--format=posix", "-cf", str(path), "-C", str(tree), "."], check=True)
    return str(path)
