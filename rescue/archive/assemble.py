"""How the decoded headers of one member combine into a `Member`: pure functions, no I/O.

`build_member(hdr, pax, longname, longlink, oldgnu_map, oldgnu_realsize)` takes what rescue.archive.parse
decoded (the header block, the pax records in force: global ones first, then the member's; GNU 'L'/'K' long
names; an oldgnu 'S' sparse map) and returns a `Parsed`: the Member and how its data is stored.  Precedence is
GNU tar's: pax > L/K > header fields.  Pax keywords this reader does not know are listed in `unknown_keys` (the
reader reports each once); an unknown typeflag is a regular file, as POSIX says.  A sparse member's map is
checked against its sizes (rescue.archive.parse.check_sparse_map); a hostile one raises HeaderError.
The common member (a plain file, directory or link header whose pax records are only mtime, atime and ctime: what
GNU tar's posix format and rescue's writer write for nearly every file) is built by `_plain` in one function,
about a third cheaper; anything else goes to the general code, and both give the same (tests/archive).
"""

from __future__ import annotations

import base64
import functools
import urllib.parse
from typing import Dict, List, Optional, Tuple

from rescue.archive import member as m
from rescue.archive import tarformat as tf
from rescue.archive.parse import (
    Header,
    HeaderError,
    check_sparse_map,
    cstr,
    decode_name,
    normalize_name,
    parse_number,
    pax_time_ns,
)

# Extended-header keywords this reader applies or knowingly ignores (anything else is reported once).
_KNOWN_PAX = {
    "path",
    "linkpath",
    "size",
    "uid",
    "gid",
    "uname",
    "gname",
    "mtime",
    "atime",
    "ctime",
    "hdrcharset",
    "charset",
    "comment",
    "GNU.sparse.size",
    "GNU.sparse.realsize",
    "GNU.sparse.numblocks",
    "GNU.sparse.offset",
    "GNU.sparse.numbytes",
    "GNU.sparse.map",
    "GNU.sparse.name",
    "GNU.sparse.major",
    "GNU.sparse.minor",
    "GNU.volume.label",
    "GNU.volume.filename",
    "GNU.volume.size",
    "GNU.volume.offset",
    "GNU.dumpdir",
    "SCHILY.acl.access",
    "SCHILY.acl.default",
    "SCHILY.acl.ace",
    "SCHILY.dev",
    "SCHILY.ino",
    "SCHILY.nlink",
    "SCHILY.filetype",
    "SCHILY.realsize",
    "SCHILY.fflags",
    "LIBARCHIVE.creationtime",
    "LIBARCHIVE.symlinktype",
    "RHT.security.selinux",
}
_KNOWN_PREFIXES = ("SCHILY.xattr.", "LIBARCHIVE.xattr.")
# Known keywords that carry nothing a restore uses (atime: GNU tar leaves the restore time, as we do).
_SKIP_PAX = frozenset(
    {"atime", "ctime", "comment", "charset", "hdrcharset", "SCHILY.dev", "SCHILY.ino", "SCHILY.nlink"}
)


def _int(value: bytes, key: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise HeaderError(f"bad pax value for {key}: {value[:40]!r}") from None


class Parsed:
    """What the reader needs beyond the Member: how many data bytes follow the header, and how to read them."""

    __slots__ = ("member", "data_size", "sparse_format", "acls", "absolute", "unknown_keys", "skip_reason")

    def __init__(self, member: m.Member, data_size: int):
        self.member = member
        self.data_size = data_size  # bytes stored after the header (before padding)
        self.sparse_format = None  # None, "old" (map complete), "1.0" (map at the start of the data)
        self.acls: Dict[str, str] = {}  # "access"/"default" -> ACL text (SCHILY.acl.*)
        self.absolute = False
        self.unknown_keys: List[str] = []
        self.skip_reason: Optional[str] = None  # set for headers that are recognised but not restorable


class _Fields:
    """A member's fields as the header gives them, then as its pax records override them."""

    __slots__ = (
        "name", "link", "mode", "uid", "gid", "mtime_ns", "uname", "gname", "devmajor", "devminor", "size",
        "xattrs", "acls", "unknown", "sparse_name", "sparse_real", "sparse_map", "sparse_major",
    )  # fmt: skip

    def __init__(self, hdr: Header, longname: Optional[bytes], longlink: Optional[bytes]):
        (
            name,
            link,
            self.mode,
            self.uid,
            self.gid,
            mtime,
            self.uname,
            self.gname,
            self.devmajor,
            self.devminor,
        ) = hdr.decode()
        self.name = name if longname is None else longname
        self.link = link if longlink is None else longlink
        self.size = hdr.size
        self.mtime_ns = mtime * 1_000_000_000
        self.xattrs: Dict[str, bytes] = {}
        self.acls: Dict[str, str] = {}
        self.unknown: List[str] = []
        self.sparse_name: Optional[bytes] = None
        self.sparse_real: Optional[int] = None
        self.sparse_map: Optional[List[Tuple[int, int]]] = None
        self.sparse_major: Optional[int] = None

    def apply(self, key: str, value: bytes) -> None:
        """One pax record (keys in _SKIP_PAX are dropped before)."""
        if key == "mtime":
            self.mtime_ns = pax_time_ns(value)
        elif key == "path":
            self.name = value
        elif key == "linkpath":
            self.link = value
        elif key == "size":
            self.size = _int(value, key)
        elif key == "uid":
            self.uid = _int(value, key)
        elif key == "gid":
            self.gid = _int(value, key)
        elif key == "uname":
            self.uname = value
        elif key == "gname":
            self.gname = value
        elif key.startswith("SCHILY.xattr."):
            # GNU tar escapes "=" and "%" in xattr names (xheader.c, xattr_encode_keyword).
            self.xattrs[key[13:].replace("%3D", "=").replace("%25", "%")] = value
        elif key.startswith("LIBARCHIVE.xattr."):
            # bsdtar: URL-encoded name, base64 value (libarchive archive_write_set_format_pax.c).
            xname = urllib.parse.unquote(key[17:], errors="surrogateescape")
            if xname not in self.xattrs:
                try:
                    self.xattrs[xname] = base64.b64decode(value + b"=" * (-len(value) % 4))
                except ValueError:
                    self.unknown.append(key)
        elif key == "SCHILY.acl.access":
            self.acls["access"] = decode_name(value)
        elif key == "SCHILY.acl.default":
            self.acls["default"] = decode_name(value)
        elif key.startswith("GNU.sparse."):
            self.apply_sparse(key, value)
        elif key not in _KNOWN_PAX and not key.startswith(_KNOWN_PREFIXES):
            self.unknown.append(key)

    def apply_sparse(self, key: str, value: bytes) -> None:
        """GNU sparse 0.0 (offset/numbytes pairs), 0.1 (map) and 1.0 (major/minor, map in the data) keywords."""
        if key in ("GNU.sparse.size", "GNU.sparse.realsize"):
            self.sparse_real = _int(value, key)
        elif key == "GNU.sparse.name":
            self.sparse_name = value
        elif key == "GNU.sparse.major":
            self.sparse_major = _int(value, key)
        elif key == "GNU.sparse.numblocks":
            self.sparse_map = [] if self.sparse_map is None else self.sparse_map
        elif key == "GNU.sparse.offset":
            self.sparse_map = [] if self.sparse_map is None else self.sparse_map
            self.sparse_map.append((_int(value, key), 0))
        elif key == "GNU.sparse.numbytes":
            if not self.sparse_map:
                raise HeaderError("GNU.sparse.numbytes without GNU.sparse.offset")
            self.sparse_map[-1] = (self.sparse_map[-1][0], _int(value, key))
        elif key == "GNU.sparse.map":
            nums = [_int(v, key) for v in value.split(b",") if v.strip()]
            if len(nums) % 2:
                raise HeaderError("odd number of values in GNU.sparse.map")
            self.sparse_map = [(nums[i], nums[i + 1]) for i in range(0, len(nums), 2)]
        elif key not in _KNOWN_PAX:
            self.unknown.append(key)


def _kind(typeflag: bytes, text: str, unknown: List[str]) -> Tuple[str, Optional[str]]:
    """The member type for a typeflag, and why the member cannot be restored when it cannot."""
    kind = tf.TYPEFLAG_TO_TYPE.get(typeflag)
    skip_reason = None
    if kind is None:
        if typeflag == tf.GNUTYPE_MULTIVOL:
            skip_reason = "continues a file from the previous volume; not restorable from this volume alone"
        else:
            # POSIX: an unknown typeflag is extracted as a regular file (GNU tar does the same, with a warning).
            unknown.append(f"typeflag {typeflag!r}")
        kind = m.FILE
    if kind == m.FILE and typeflag in (tf.REGTYPE, tf.AREGTYPE) and text.endswith("/"):
        kind = m.DIR  # pre-POSIX archives mark directories with a trailing slash only
    return kind, skip_reason


def _set_sparse(parsed: Parsed, typeflag: bytes, f: _Fields, oldgnu_map, oldgnu_realsize: int) -> None:
    """Which sparse format the member uses, its map when the headers hold it, and its apparent size."""
    member = parsed.member
    if typeflag == tf.GNUTYPE_SPARSE:
        member.sparse = list(oldgnu_map or [])
        member.size = oldgnu_realsize
        parsed.sparse_format = "old"
    elif f.sparse_major is not None and f.sparse_major >= 1:
        member.sparse = []
        member.size = f.sparse_real if f.sparse_real is not None else f.size
        parsed.sparse_format = "1.0"
    elif f.sparse_map is not None:
        member.sparse = f.sparse_map
        member.size = f.sparse_real if f.sparse_real is not None else f.size
        parsed.sparse_format = "old"
    if member.sparse is not None and parsed.sparse_format == "old":
        check_sparse_map(member.sparse, member.size, parsed.data_size)


# The common member, built by `_plain`: what GNU tar and rescue's writer write for nearly every file.
_PLAIN_TYPES = {tf.REGTYPE: m.FILE, tf.DIRTYPE: m.DIR, tf.SYMTYPE: m.SYMLINK, tf.LNKTYPE: m.HARDLINK}
_PLAIN_STORED = (m.FILE, m.HARDLINK)  # kinds whose header size counts data bytes that follow
# Owner names repeat in every header: decoded once each (C-level cache, bounded).
_owner_name = functools.lru_cache(maxsize=1024)(decode_name)


def _plain(hdr: Header, pax: List[Tuple[str, bytes]]) -> Optional[Parsed]:
    """The Member of a ustar or GNU header of a regular file, directory, symlink or hard link whose name fits
    the name field and whose only pax records are mtime, atime and ctime; None for anything else, which the
    general code builds (the two agree, errors included: tests/archive/test_plain_member.py)."""
    kind = _PLAIN_TYPES.get(hdr.typeflag)
    if kind is None or hdr.fmt == "v7":
        return None
    name, mode, uid, gid, _, mtime, _, _, link, _, uname, gname, _, _, prefix = hdr.fields
    if hdr.fmt == "ustar" and prefix[0] != 0:
        return None
    # Numbers first, then the pax records, as _Fields decodes them (a bad one is the same HeaderError).
    mode, uid, gid, mtime_ns = parse_number(mode), parse_number(uid), parse_number(gid), parse_number(mtime)
    mtime_ns *= 1_000_000_000
    for key, value in pax:
        if key == "mtime":
            mtime_ns = pax_time_ns(value)
        elif key != "atime" and key != "ctime":
            return None
    text = decode_name(cstr(name))
    if kind == m.FILE and text.endswith("/"):
        return None  # a directory by its trailing slash (_kind)
    path, absolute = normalize_name(text)
    linkname = ""
    if kind == m.SYMLINK:
        linkname = decode_name(cstr(link))
    elif kind == m.HARDLINK:
        linkname = normalize_name(decode_name(cstr(link)))[0]
    size = hdr.size
    member = m.Member(
        path,
        kind,
        0 if kind == m.DIR else size,
        mode & 0o7777,
        uid,
        gid,
        _owner_name(cstr(uname)),
        _owner_name(cstr(gname)),
        mtime_ns,
        linkname,
    )
    parsed = Parsed(member, size if kind in _PLAIN_STORED else 0)
    parsed.absolute = absolute
    return parsed


def build_member(
    hdr: Header,
    pax: List[Tuple[str, bytes]],
    longname: Optional[bytes] = None,
    longlink: Optional[bytes] = None,
    oldgnu_map: Optional[List[Tuple[int, int]]] = None,
    oldgnu_realsize: int = 0,
) -> Parsed:
    """Combine a header with its pax records (global ones first, then the member's), GNU long names and an oldgnu
    sparse map into a Member.  Precedence as GNU tar: pax > L/K > header fields."""
    if longname is None and longlink is None and oldgnu_map is None:
        parsed = _plain(hdr, pax)
        if parsed is not None:
            return parsed
    return _general(hdr, pax, longname, longlink, oldgnu_map, oldgnu_realsize)


def _general(hdr, pax, longname, longlink, oldgnu_map, oldgnu_realsize) -> Parsed:
    f = _Fields(hdr, longname, longlink)
    for key, value in pax:
        if key not in _SKIP_PAX:
            f.apply(key, value)
    if f.sparse_name is not None:
        f.name = f.sparse_name
    typeflag = hdr.typeflag
    text = decode_name(f.name)
    kind, skip_reason = _kind(typeflag, text, f.unknown)
    path, absolute = normalize_name(text)
    linkname = decode_name(f.link)
    if kind == m.HARDLINK:
        linkname = normalize_name(linkname)[0]
    member = m.Member(
        path=path,
        type=kind,
        size=0 if kind == m.DIR else f.size,
        mode=f.mode & 0o7777,
        uid=f.uid,
        gid=f.gid,
        uname=decode_name(f.uname),
        gname=decode_name(f.gname),
        mtime_ns=f.mtime_ns,
        linkname=linkname if kind in (m.SYMLINK, m.HARDLINK) else "",
        devmajor=f.devmajor,
        devminor=f.devminor,
        xattrs=f.xattrs,
    )
    stored = kind in (m.FILE, m.HARDLINK) or typeflag == tf.GNUTYPE_DUMPDIR
    parsed = Parsed(member, f.size if stored else 0)
    parsed.acls = f.acls
    parsed.absolute = absolute
    parsed.unknown_keys = f.unknown
    parsed.skip_reason = skip_reason
    _set_sparse(parsed, typeflag, f, oldgnu_map, oldgnu_realsize)
    return parsed
