"""The "production" system of the drill: a generated root tree and the ext4 disk image made from it.

Contract: `make_tree(root, seed)` writes a deterministic tree (same seed, same names, contents, owners, modes,
xattrs and mtimes) that exercises what a bare-metal restore must bring back: a few thousand files in nested
directories, owners other than root (numeric ids without passwd entries too), setuid and sticky modes, private
files, absolute, relative and dangling symlinks, hard links within and across directories, user xattrs and
POSIX ACLs, a fifo, a character device, a sparse file, empty directories, long and non-ASCII names, one large
file for throughput, and a real MariaDB dump when the MariaDB server is installed (`mariadb_dump`).
`make_disk(root, image, size_mb)` builds an ext4 image of it with `mkfs.ext4 -d`, which copies owners, modes,
xattrs and hard links (e2fsprogs' populate_fs).  Returns the number of entries written.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

BIG_FILE_MB = 48
MTIME_BASE = 1_700_000_000


def _write(
    path: Path, data: bytes, uid: int = 0, gid: int = 0, mode: int = 0o644, mtime: Optional[int] = None
):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))


def _text(rng: random.Random, size: int) -> bytes:
    words = [b"tape", b"restore", b"backup", b"record", b"filemark", b"server", b"index", b"config", b"\n"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def _ns(i: int) -> int:
    return (MTIME_BASE + i * 97) * 1_000_000_000 + (i * 7919) % 1_000_000_000


def make_tree(root: Path, seed: int = 7, files: int = 3000, big_mb: int = BIG_FILE_MB) -> int:
    """Write the production tree into `root` (created; must not exist or be empty)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    # One generator for the whole tree, drawn from in this order: the order is part of the contract.
    count = _etc(root, rng) + _root_home(root) + _www(root, rng) + _homes(root, rng)
    count += _usr_opt(root, rng) + _srv(root, big_mb)
    # /var/backups/mariadb: a real dump when a server can be started here
    dump = mariadb_dump()
    if dump is not None:
        _write(root / "var/backups/mariadb/all-databases.sql", dump, mode=0o600)
        count += 1
    return count


def _etc(root: Path, rng: random.Random) -> int:
    """/etc: configuration, a shadow file readable by group shadow (42), a symlink out of the tree."""
    for i in range(150):
        _write(
            root / "etc" / f"app{i // 30}" / f"conf{i}.ini", _text(rng, rng.randint(50, 3000)), mtime=_ns(i)
        )
    _write(root / "etc/hostname", b"prod\n")
    _write(root / "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    _write(root / "etc/group", b"root:x:0:\nshadow:x:42:\nalice:x:1000:\nwww-data:x:33:\n")
    _write(root / "etc/shadow", b"root:*:19000:0:99999:7:::\n", gid=42, mode=0o640)
    os.symlink("/usr/share/zoneinfo/Etc/UTC", root / "etc/localtime")  # dangling in the tree: fine
    return 150 + 5


def _root_home(root: Path) -> int:
    """/root: private."""
    (root / "root").mkdir()
    os.chmod(root / "root", 0o700)
    _write(root / "root/.ssh/authorized_keys", b"ssh-ed25519 AAAAdrill drill@host\n", mode=0o600)
    os.chmod(root / "root/.ssh", 0o700)
    return 3


def _www(root: Path, rng: random.Random) -> int:
    """/var/www: many small files owned by www-data (33), a relative symlink, a hard link across directories."""
    for i in range(1500):
        site = root / "var/www/html" / f"site{i % 30}" / f"d{i % 7}"
        _write(site / f"page{i}.html", _text(rng, rng.randint(100, 8000)), 33, 33, mtime=_ns(i))
    os.symlink("html/site1", root / "var/www/current")
    os.link(root / "var/www/html/site1/d1/page1.html", root / "var/www/html/site2/shared-page.html")
    return 1500 + 2


def _homes(root: Path, rng: random.Random) -> int:
    """/home: two users, one numeric-only owner, xattrs, hard links in one directory, long and odd names, an ACL."""
    count = 0
    for user, uid in (("alice", 1000), ("bob", 1001)):
        home = root / "home" / user
        for i in range(300 if user == "alice" else 200):
            _write(
                home / f"docs{i % 10}" / f"note{i}.txt", _text(rng, rng.randint(10, 20000)), uid, uid, 0o640
            )
            count += 1
        os.chown(home, uid, uid)
        os.chmod(home, 0o750)
    os.link(root / "home/alice/docs0/note0.txt", root / "home/alice/hard-link-to-note0.txt")
    os.symlink("../bob", root / "home/alice/link-to-bob")
    long_dir = (
        root / "home/alice" / ("a-rather-long-directory-name-" * 3) / ("and-a-longer-subdirectory-" * 3)
    )
    _write(long_dir / ("file-with-a-long-name-" * 4 + ".txt"), b"long path\n", 1000, 1000)
    _write(root / "home/alice/caf\u00e9 \u03a9mega \u2013 notes.txt", b"non-ASCII\n", 1000, 1000)
    _write(root / "home/alice/orphan-owner.txt", b"uid without a passwd entry\n", 4242, 4343)
    count += 6
    for i in range(50):
        p = root / "home/alice" / f"docs{i % 10}" / f"note{i}.txt"
        os.setxattr(p, "user.comment", f"note {i}, tagged for the drill".encode(), follow_symlinks=False)
        os.setxattr(p, "user.checksum", bytes(rng.getrandbits(8) for _ in range(32)))
    acl_dir = root / "home/bob/shared"
    acl_dir.mkdir()
    os.chown(acl_dir, 1001, 1001)
    if shutil.which("setfacl"):
        subprocess.run(["setfacl", "-m", "u:1000:rwx", "-d", "-m", "u:1000:rx", str(acl_dir)], check=True)
    _write(acl_dir / "plan.txt", b"shared with alice\n", 1001, 1001, 0o660)
    return count + 2


def _usr_opt(root: Path, rng: random.Random) -> int:
    """/usr/local: a setuid program, a tool directory; /opt: many tiny files (per-entry cost), empty directories."""
    for i in range(100):
        _write(root / "usr/local/share/tool" / f"data{i}.dat", bytes(rng.getrandbits(8) for _ in range(512)))
    _write(root / "usr/local/bin/tool", b"#!/bin/sh\necho tool\n", mode=0o4755)
    for i in range(700):
        _write(root / "opt/app" / f"m{i % 20}" / f"f{i}.py", f"VALUE = {i}\n".encode(), mtime=_ns(i))
    for d in ("opt/app/empty", "var/empty", "var/cache/app"):
        (root / d).mkdir(parents=True, exist_ok=True)
    return 100 + 1 + 700 + 3


def _srv(root: Path, big_mb: int) -> int:
    """/srv: large incompressible data, a sparse file, a fifo, a character device, a sticky directory."""
    srv = root / "srv/data"
    srv.mkdir(parents=True)
    with open(srv / "big.bin", "wb") as f:
        block = os.urandom(1024 * 1024)
        for i in range(big_mb):
            f.write(block[i:] + block[:i])
    for i in range(20):
        _write(srv / f"blob{i}.bin", os.urandom(256 * 1024 + i))
    with open(srv / "sparse.img", "wb") as f:
        f.seek(8 * 1024 * 1024)
        f.write(b"middle")
        f.truncate(16 * 1024 * 1024)
    os.mkfifo(srv / "control.fifo")
    os.mknod(srv / "console-copy", stat.S_IFCHR | 0o600, os.makedev(5, 1))
    (root / "srv/tmp").mkdir()
    os.chmod(root / "srv/tmp", 0o1777)
    return 26


def mariadb_dump() -> Optional[bytes]:
    """`mariadb-dump --all-databases` of a throw-away server with a small shop database, or None without MariaDB."""
    if not (shutil.which("mariadbd") and shutil.which("mariadb-install-db") and os.geteuid() == 0):
        return None
    from drill.dbservers import MariaDBServer

    with tempfile.TemporaryDirectory(prefix="drill-mariadb-") as base:
        server = MariaDBServer(base)
        try:
            server.sql("CREATE DATABASE shop")
            server.sql(
                "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2))", "shop"
            )
            rows = ",".join(f"({i},'item {i}',{i % 97}.{i % 100:02d})" for i in range(1, 2001))
            server.sql(f"INSERT INTO items VALUES {rows}", "shop")
            out = subprocess.run(
                [
                    "mariadb-dump",
                    "--no-defaults",
                    f"--socket={server.socket}",
                    "-uroot",
                    "--all-databases",
                    "--single-transaction",
                    "--routines",
                    "--events",
                ],
                check=True,
                stdout=subprocess.PIPE,
            ).stdout
        finally:
            server.stop()
    return out


def make_disk(root: Path, image: Path, size_mb: int = 512, label: str = "prod") -> None:
    """An ext4 image holding `root` (mkfs.ext4 -d copies owners, modes, xattrs, links and special files)."""
    if image.exists():
        image.unlink()
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-L", label, "-d", str(root), str(image), f"{size_mb}M"],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
