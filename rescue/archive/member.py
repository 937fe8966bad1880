"""One archive member's metadata, shared by the writer, the reader, extraction and the catalog.

Field names are the catalog's JSON keys (see rescue/catalog.py), so a Member round-trips through
`to_json()`/`from_json()` without a mapping table.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

# Member types: the catalog spells them as words, tar as typeflags (see rescue/archive/headers.py).
FILE = "file"
DIR = "dir"
SYMLINK = "symlink"
HARDLINK = "hardlink"
CHARDEV = "chardev"
BLOCKDEV = "blockdev"
FIFO = "fifo"
TYPES = (FILE, DIR, SYMLINK, HARDLINK, CHARDEV, BLOCKDEV, FIFO)


@dataclasses.dataclass
class Member:
    path: str  # relative, "/"-separated, no leading "./" or "/"; directories without a trailing slash
    type: str
    size: int = 0  # bytes of file data (the apparent size for sparse files)
    mode: int = 0o644  # permission bits incl. setuid/setgid/sticky (no S_IFMT bits)
    uid: int = 0
    gid: int = 0
    uname: str = ""
    gname: str = ""
    mtime_ns: int = 0
    linkname: str = ""  # symlink target, or the path of the hard link's first member
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict = dataclasses.field(default_factory=dict)  # name -> bytes (the catalog keeps names only)
    sparse: Optional[list] = None  # [(offset, length), ...] data regions of a sparse file, else None
    sha256: Optional[str] = None  # hex digest of the data (regular files), filled by writer or reader
    record: Optional[int] = None  # record number, relative to the start of the archive, of the first header
    offset: Optional[int] = None  # byte offset in that record where the member's first header block starts

    def to_json(self) -> dict:
        """The catalog's object for this member (xattr values are left out, their names kept)."""
        d = {
            "path": self.path,
            "type": self.type,
            "size": self.size,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "uname": self.uname,
            "gname": self.gname,
            "mtime_ns": self.mtime_ns,
            "sha256": self.sha256,
            "record": self.record,
            "offset": self.offset,
        }
        if self.linkname:
            d["linkname"] = self.linkname
        if self.type in (CHARDEV, BLOCKDEV):
            d["devmajor"] = self.devmajor
            d["devminor"] = self.devminor
        if self.xattrs:
            d["xattrs"] = sorted(self.xattrs)
        if self.sparse is not None:
            d["sparse"] = [list(r) for r in self.sparse]
        return d

    @classmethod
    def from_json(cls, d: dict) -> Member:
        return cls(
            path=d["path"],
            type=d["type"],
            size=d.get("size", 0),
            mode=d.get("mode", 0),
            uid=d.get("uid", 0),
            gid=d.get("gid", 0),
            uname=d.get("uname", ""),
            gname=d.get("gname", ""),
            mtime_ns=d.get("mtime_ns", 0),
            linkname=d.get("linkname", ""),
            devmajor=d.get("devmajor", 0),
            devminor=d.get("devminor", 0),
            xattrs={name: b"" for name in d.get("xattrs", ())},
            sparse=[tuple(r) for r in d["sparse"]] if d.get("sparse") is not None else None,
            sha256=d.get("sha256"),
            record=d.get("record"),
            offset=d.get("offset"),
        )
