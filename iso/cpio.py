"""The initramfs archive: cpio "newc", as the kernel reads it (Documentation/driver-api/early-userspace/
buffer-format.rst).

Contract: `cpio_newc(root, out, mtime, nodes)` writes every entry under `root` (sorted, owner root, one fixed
mtime, symlinks as links) and the device nodes `nodes` ({name: (S_IFCHR or S_IFBLK, major, minor)}) to the
binary file `out`; the bytes depend only on the tree's names, contents, modes and `mtime`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def cpio_newc(root: Path, out, mtime: int, nodes: dict[str, tuple[int, int, int]]) -> None:
    entries = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    ino = 1

    def header(name: str, mode: int, size: int, rdev=(0, 0)) -> bytes:
        nonlocal ino
        ino += 1
        nameb = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, mtime, size, 0, 0, rdev[0], rdev[1], len(nameb), 0]
        head = b"070701" + b"".join(b"%08X" % f for f in fields) + nameb
        return head + b"\0" * (-len(head) % 4)

    for name in entries:
        path = root / name
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            data = os.readlink(path).encode()
            out.write(header(name, stat.S_IFLNK | 0o777, len(data)) + data + b"\0" * (-len(data) % 4))
        elif stat.S_ISDIR(st.st_mode):
            out.write(header(name, stat.S_IFDIR | stat.S_IMODE(st.st_mode), 0))
        else:
            data = path.read_bytes()
            out.write(header(name, stat.S_IFREG | stat.S_IMODE(st.st_mode), len(data)))
            out.write(data + b"\0" * (-len(data) % 4))
    for name, (kind, major, minor) in sorted(nodes.items()):
        out.write(header(name, kind | 0o600, 0, (major, minor)))
    out.write(header("TRAILER!!!", 0, 0))
