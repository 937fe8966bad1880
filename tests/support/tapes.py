"""Test tapes for the restore, verify and rebuild tests, made with real GNU tar and the SIMH backend.

`make_tree` builds a small system-like tree whose files spread over many records; `gnu_tar` archives it with
GNU tar (`--sort=name`, a chosen blocking factor); `write_tap` puts that archive on a .tap image either bare (a
plain GNU tar tape, like the classic workflow's) or as a rescue set (label, archive, catalog). The catalog is
computed here independently of rescue's reader, from the standard library's tarfile: its `offset` is the start
of a member's first header (pax or GNU long-name headers included), which is what the catalog records.
`tree_state` describes a tree for byte-for-byte comparisons. `split_tape` cuts a .tap into one plain file per
tape file; `make_label` is a Label with test values.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import tarfile
from typing import Dict, List, Optional

from rescue.archive.member import Member
from rescue.archive.tarformat import TYPEFLAG_TO_TYPE
from rescue.tape.base import EndOfDataError
from rescue.tape.simh import SimhTape
from rescue.tapeset.catalog import CatalogWriter
from rescue.tapeset.catalog_tape import write_catalog
from rescue.tapeset.label import Label, write_label

BACKUP_ID = "6f1c1d1e-0000-4000-8000-000000000001"
DATA_DIRS = 12


def _data(seed: int, size: int) -> bytes:
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def make_tree(root: str) -> str:
    """A tree with the usual kinds of members; `data/dNN` directories fill tens of records each."""

    def put(rel: str, content: bytes, mode: int = 0o644, mtime: int = 1_600_000_000) -> None:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
        os.chmod(path, mode)
        os.utime(path, (mtime, mtime))

    put("etc/hostname", b"web1\n")
    put("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    put("etc/ssh/sshd_config", b"PermitRootLogin no\n", 0o600)
    put("usr/bin/tool", _data(1, 30000), 0o4755)
    put("var/www/index.html", b"<h1>hello</h1>\n")
    put("var/www/big.bin", _data(2, 300_000))  # over background_hash.MIN_SIZE: hashed in a second thread
    put("home/alice/notes.txt", b"remember the tape\n", 0o640)
    os.chown(os.path.join(root, "home/alice/notes.txt"), 1000, 1000)
    os.chown(os.path.join(root, "home/alice"), 1000, 1000)
    for i in range(DATA_DIRS):
        for j in range(4):
            put(f"data/d{i:02d}/f{j}.bin", _data(100 * i + j, 9000 + 1000 * j))
    os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
    put("tmp/scratch", b"scratch\n")
    os.makedirs(os.path.join(root, "opt"), exist_ok=True)
    os.link(os.path.join(root, "usr/bin/tool"), os.path.join(root, "opt/tool-link"))
    os.symlink("../usr/bin/tool", os.path.join(root, "opt/tool-symlink"))
    os.makedirs(os.path.join(root, "srv/empty"), exist_ok=True)
    os.chmod(os.path.join(root, "srv/empty"), 0o700)
    # Directory mtimes last, so creating their children above does not change them.
    for dirpath, _dirs, _files in os.walk(root):
        os.utime(dirpath, (1_500_000_000, 1_500_000_000))
    return root


def top_names(root: str) -> List[str]:
    return sorted(os.listdir(root))


def gnu_tar(root: str, out: str, blocking: int = 20, fmt: str = "gnu") -> str:
    """GNU tar of the tree with relative names (`etc/passwd`), sorted, in records of `blocking` blocks."""
    subprocess.run(
        [
            "tar",
            "-cf",
            out,
            "-b",
            str(blocking),
            f"--format={fmt}",
            "--sort=name",
            "-C",
            root,
            *top_names(root),
        ],
        check=True,
    )
    return out


def catalog_members(tar_path: str, record_size: int) -> List[Member]:
    members = []
    with tarfile.open(tar_path, "r:") as tar:
        for info in tar:
            typeflag = info.type
            kind = TYPEFLAG_TO_TYPE[typeflag]
            sha = None
            if kind == "file":
                sha = hashlib.sha256(tar.extractfile(info).read()).hexdigest()
            record, offset = divmod(info.offset, record_size)
            members.append(
                Member(
                    path=info.name.rstrip("/"),
                    type=kind,
                    size=info.size if kind == "file" else 0,
                    mode=info.mode,
                    uid=info.uid,
                    gid=info.gid,
                    uname=info.uname,
                    gname=info.gname,
                    mtime_ns=int(info.mtime) * 10**9,
                    linkname=info.linkname,
                    sha256=sha,
                    record=record,
                    offset=offset,
                )
            )
    return members


def write_catalog_file(path: str, members: List[Member], record_size: int, backup_id: str = BACKUP_ID) -> str:
    with CatalogWriter(path, {"backup_id": backup_id, "record_size": record_size}) as w:
        for m in members:
            w.add(m)
    return path


def _write_archive_records(tape: SimhTape, tar_path: str, record_size: int) -> int:
    count = 0
    with open(tar_path, "rb") as f:
        while True:
            chunk = f.read(record_size)
            if not chunk:
                break
            assert len(chunk) == record_size, "GNU tar pads its archive to whole records"
            tape.write_record(chunk)
            count += 1
    return count


def write_tap(
    tap: str,
    tar_path: str,
    record_size: int,
    *,
    rescue_set: bool = True,
    host: str = "web1",
    backup_id: str = BACKUP_ID,
    catalog: Optional[List[Member]] = None,
    bad_records: Optional[List[int]] = None,
) -> str:
    """A .tap image: the bare archive, or label + archive + catalog. `bad_records` (archive record numbers)
    are written with the SIMH error flag, so reading them fails like a bad block."""
    spool = tap + ".spool"
    os.makedirs(spool, exist_ok=True)
    with SimhTape(tap, write=True) as tape:
        if rescue_set:
            label = Label(
                backup_id=backup_id, host=host, created="2026-11-25T02:00:00Z", record_size=record_size
            )
            write_label(tape, label, None)
        _write_archive_records(tape, tar_path, record_size)
        tape.write_filemarks(1)
        if rescue_set:
            members = catalog if catalog is not None else catalog_members(tar_path, record_size)
            cat = write_catalog_file(os.path.join(spool, "catalog.jsonl.gz"), members, record_size, backup_id)
            filelist = os.path.join(spool, "filelist.txt")
            with open(filelist, "w") as f:
                f.write("".join(m.path + "\n" for m in members))
            write_catalog(tape, cat, filelist, {"members": len(members)})
    if bad_records:
        _flag_bad(tap, bad_records, archive_file=1 if rescue_set else 0)
    return tap


def _flag_bad(tap: str, records: List[int], archive_file: int) -> None:
    """Set the SIMH error flag (class 8) on archive records, in place."""
    import struct

    with open(tap, "r+b") as f:
        data = bytearray(f.read())
        pos, file_no, rec = 0, 0, 0
        while pos < len(data):
            (word,) = struct.unpack_from("<I", data, pos)
            if word == 0:
                file_no += 1
                rec = 0
                pos += 4
                continue
            n = word & 0x0FFFFFFF
            if file_no == archive_file and rec in records:
                flagged = struct.pack("<I", n | 0x80000000)
                data[pos : pos + 4] = flagged
                end = pos + 4 + n + (n & 1)
                data[end : end + 4] = flagged
            rec += 1
            pos += 8 + n + (n & 1)
        f.seek(0)
        f.write(data)


def tree_state(root: str, skip=("lost+found", ".rescue-restore.journal")) -> Dict[str, tuple]:
    """path -> (kind, mode, uid, gid, mtime_ns or None, content digest / link target, hard link group)."""
    state: Dict[str, tuple] = {}
    inodes: Dict[tuple, str] = {}
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if rel.split("/")[0] in skip:
                continue
            st = os.lstat(full)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                state[rel] = ("link", os.readlink(full), st.st_uid, st.st_gid)
            elif stat.S_ISDIR(st.st_mode):
                state[rel] = ("dir", mode, st.st_uid, st.st_gid, st.st_mtime_ns)
            else:
                with open(full, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                group = inodes.setdefault((st.st_dev, st.st_ino), rel) if st.st_nlink > 1 else None
                state[rel] = ("file", mode, st.st_uid, st.st_gid, st.st_mtime_ns, digest, group)
    return state


def tar_extract(tar_path: str, dest: str, *paths: str, excludes=()) -> Dict[str, tuple]:
    """What GNU tar itself restores: the reference every restore is compared with."""
    os.makedirs(dest, exist_ok=True)
    cmd = ["tar", "-xpf", tar_path, "--numeric-owner", "-C", dest]
    cmd += [f"--exclude={e}" for e in excludes]
    subprocess.run(cmd + list(paths), check=True)
    return tree_state(dest)


def split_tape(tap: str, outdir: str) -> list:
    """Cut a .tap image into one plain file per tape file (records concatenated), as `dd` from nst0 would."""
    pieces = []
    with SimhTape(tap) as tape:
        while True:
            try:
                record = tape.read_record(16 * 1024 * 1024)
            except EndOfDataError:
                break
            path = os.path.join(outdir, f"piece{len(pieces)}.tar")
            with open(path, "wb") as out:
                while record:
                    out.write(record)
                    try:
                        record = tape.read_record(16 * 1024 * 1024)
                    except EndOfDataError:
                        record = b""
            pieces.append(path)
    return pieces


def make_label(**kw) -> Label:
    values = dict(
        backup_id="1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        host="web1",
        machine_id="abc",
        created="2026-11-26T02:00:00Z",
        tool_version="0.1.0",
        record_size=20 * 512,
        dumps=["var/lib/rescue/dumps/mariadb.sql"],
        excludes=["proc", "sys"],
    )
    values.update(kw)
    return Label(**values)


def tap_records(tap: str) -> List[List[tuple]]:
    """Where the data of each record of a .tap image lies: per tape file, a list of (byte offset, length)."""
    import struct

    with open(tap, "rb") as f:
        data = f.read()
    files: List[List[tuple]] = [[]]
    pos = 0
    while pos + 4 <= len(data):
        (word,) = struct.unpack_from("<I", data, pos)
        if word == 0:
            files.append([])
            pos += 4
            continue
        n = word & 0x0FFFFFFF
        files[-1].append((pos + 4, n))
        pos += 8 + n + (n & 1)
    if not files[-1]:
        files.pop()
    return files


def flip_bytes(path: str, positions) -> None:
    """Invert the bytes at these offsets of a file, in place."""
    with open(path, "r+b") as f:
        for pos in positions:
            f.seek(pos)
            byte = f.read(1)
            f.seek(pos)
            f.write(bytes([byte[0] ^ 0xFF]))
