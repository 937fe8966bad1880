"""Encode one archive member (rescue.archive.member.Member) into its tar header blocks, as GNU tar reads them.

Contract: `HeaderEncoder.encode(member)` returns the member's header blocks (a multiple of 512 bytes): an
optional pax extended header ('x' header block plus its records, padded) and the ustar header.  The data, if
any, follows in the archive (for a sparse file, `sparse_map(member.sparse)` and then the data regions).

What goes into a pax record, and nothing else (GNU tar warns once per member about unknown keywords):
- `path` / `linkpath`: the name does not fit the 100-byte ustar field, or is not ASCII (what GNU tar 1.34
  does; the bytes are written as they are in the file system, without `hdrcharset`, as GNU tar does).
- `size`, `uid`, `gid`: the value does not fit the octal field (size >= 8 GiB, ids > 2097151).
- `uname` / `gname`: longer than 32 bytes or not ASCII.
- `mtime`: sub-second part, or out of the octal field's range; written "SEC.FRACTION" with trailing zeros
  dropped, as GNU tar's code_timespec does ("1795674308.68331051"), negative values as "-SEC.FRACTION".
- `SCHILY.acl.access`, `SCHILY.acl.default`, `SCHILY.xattr.NAME` (see rescue.archive.xattrs).
- GNU sparse 1.0 (GNU tar manual, "Sparse Formats"): `GNU.sparse.major=1`, `GNU.sparse.minor=0`,
  `GNU.sparse.name` (the real name), `GNU.sparse.realsize`; the ustar name is "DIR/GNUSparseFile.0/BASE" and
  the data starts with the map (decimal numbers, one per line: count, then offset and length of each region,
  padded to 512 bytes) followed by the data regions.

Directories get a trailing "/" in their header names, as GNU tar writes them.  The ustar header is one
`struct.pack_into`; its checksum is computed with two zlib.adler32 calls (the low 16 bits of Adler-32 are
1 + the byte sum mod 65521, exact for 256 bytes since 256 * 255 < 65521).  `encode_into()` is the writer's fast
path for the common member: the same bytes, written straight into the record buffer from per-owner templates.
"""

from __future__ import annotations

import struct
import sys
import zlib
from typing import List, Optional, Sequence, Tuple

from rescue.archive import tarformat as tf
from rescue.archive.member import DIR, FIFO, FILE, HARDLINK, SYMLINK, Member

_FSENC = sys.getfilesystemencoding()
_FSERR = sys.getfilesystemencodeerrors()

# name mode uid gid size mtime chksum typeflag linkname magic+version uname gname devmajor devminor prefix pad
_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")
assert _USTAR.size == tf.BLOCKSIZE
_CHK_SPACES = b" " * 8
_ZERO_OCTAL7 = b"0000000\0"
_PAX_MODE = b"0000644\0"
_PAX_NAME = b"././@PaxHeader"
_ZERO_BLOCK = bytes(tf.BLOCKSIZE)

_SPARSE_MARK = b"GNUSparseFile.0/"
_FAST_TYPES = (FILE, DIR, SYMLINK, HARDLINK, FIFO)
_adler32 = zlib.adler32


def fsencode(name: str) -> bytes:
    """File-system bytes of a name (surrogate-escaped undecodable bytes come back as they were)."""
    return name.encode(_FSENC, _FSERR)


def pax_record(keyword: bytes, value: bytes) -> bytes:
    """One pax record "LEN KEYWORD=VALUE\\n", LEN counting the whole record including its own digits."""
    body = b" %s=%s\n" % (keyword, value)
    n = len(body)
    digits = len(str(n + 1))
    total = n + digits
    if len(str(total)) != digits:
        total += 1
    return b"%d%s" % (total, body)


def format_mtime(mtime_ns: int) -> bytes:
    """Pax time value: seconds with the fraction's trailing zeros dropped (GNU tar's code_timespec)."""
    sign = b""
    if mtime_ns < 0:
        sign, mtime_ns = b"-", -mtime_ns
    sec, ns = divmod(mtime_ns, 1_000_000_000)
    if not ns:
        return b"%s%d" % (sign, sec)
    return (b"%s%d.%09d" % (sign, sec, ns)).rstrip(b"0")


def encode_xattr_keyword(name: str) -> bytes:
    """SCHILY.xattr keyword for an xattr name: "%" and "=" percent-encoded (GNU tar xattr_encode_keyword)."""
    raw = fsencode(name)
    if b"%" in raw or b"=" in raw:
        raw = raw.replace(b"%", b"%25").replace(b"=", b"%3D")
    return b"SCHILY.xattr." + raw


def sparse_map(regions: Sequence[Tuple[int, int]]) -> bytes:
    """The GNU sparse 1.0 map that starts a sparse member's data, padded to whole blocks."""
    text = b"%d\n" % len(regions) + b"".join(b"%d\n%d\n" % (off, length) for off, length in regions)
    return text + bytes(tf.padded(len(text)) - len(text))


def sparse_stored_size(regions: Sequence[Tuple[int, int]]) -> int:
    """Bytes of archive data for a sparse member: the padded map plus its data regions."""
    return len(sparse_map(regions)) + sum(length for _, length in regions)


def _checksum_into(block, offset: int) -> None:
    """Fill in the checksum of the header at block[offset:offset+512] (checksum field holds spaces)."""
    mv = memoryview(block)
    total = (zlib.adler32(mv[offset : offset + 256]) & 0xFFFF) + (
        zlib.adler32(mv[offset + 256 : offset + 512]) & 0xFFFF
    )
    block[offset + tf.CHKSUM_OFFSET : offset + tf.CHKSUM_OFFSET + 8] = b"%06o\0 " % (total - 2)


def _pax_header_block(size: int) -> bytes:
    """The 'x' header block announcing `size` bytes of pax records.  Its name is the constant "././@PaxHeader"
    (as Python's tarfile and libarchive write it): readers that know pax ignore it, and it lets the block be
    cached per size."""
    block = bytearray(tf.BLOCKSIZE)
    _USTAR.pack_into(
        block,
        0,
        _PAX_NAME,
        _PAX_MODE,
        _ZERO_OCTAL7,
        _ZERO_OCTAL7,
        b"%011o\0" % size,
        b"00000000000\0",
        _CHK_SPACES,
        tf.XHDTYPE,
        b"",
        tf.USTAR_MAGIC,
        b"",
        b"",
        _ZERO_OCTAL7,
        _ZERO_OCTAL7,
        b"",
    )
    _checksum_into(block, 0)
    return bytes(block)


class HeaderEncoder:
    """Encodes members; keeps small caches (octal ids, owner names) across calls."""

    def __init__(self):
        self._owners: dict = {}  # (uid, gid, uname, gname) -> _owner_fields()
        self._modes: dict = {}
        self._xheaders: dict = {}  # pax data size -> 'x' header block
        # (type, mode, uid, gid, uname, gname) -> (ustar block, its byte sum, {pax size: header blocks}) or None
        self._templates: dict = {}

    def _owner_fields(self, uid: int, gid: int, uname: str, gname: str):
        """(uid field, gid field, uname field, gname field, pax records) for an owner (cached per owner)."""
        records = b""
        if 0 <= uid <= tf.MAX_OCTAL_ID:
            uid_field = b"%07o\0" % uid
        else:
            uid_field = _ZERO_OCTAL7
            records += pax_record(b"uid", b"%d" % uid)
        if 0 <= gid <= tf.MAX_OCTAL_ID:
            gid_field = b"%07o\0" % gid
        else:
            gid_field = _ZERO_OCTAL7
            records += pax_record(b"gid", b"%d" % gid)
        fields = []
        for keyword, name in ((b"uname", uname), (b"gname", gname)):
            raw = fsencode(name)
            if len(raw) > 32 or not raw.isascii():
                records += pax_record(keyword, raw)
            fields.append(raw[:32])
        return uid_field, gid_field, fields[0], fields[1], records

    def _template(self, key):
        """The ustar block of a fast-path member with empty name, size, mtime and linkname (checksum field as
        spaces) and its byte sum; None when the owner needs pax records or the type has device numbers."""
        mtype, mode, uid, gid, uname, gname = key
        if mtype not in _FAST_TYPES:
            return None
        uid_field, gid_field, uname_field, gname_field, records = self._owner_fields(uid, gid, uname, gname)
        if records:
            return None
        block = bytearray(tf.BLOCKSIZE)
        _USTAR.pack_into(
            block,
            0,
            b"",
            b"%07o\0" % (mode & 0o7777),
            uid_field,
            gid_field,
            b"",
            b"",
            _CHK_SPACES,
            tf.TYPE_TO_TYPEFLAG[mtype],
            b"",
            tf.USTAR_MAGIC,
            uname_field,
            gname_field,
            _ZERO_OCTAL7,
            _ZERO_OCTAL7,
            b"",
        )
        return bytes(block), sum(block), {}

    def encode_into(self, buf, pos: int, m: Member) -> int:
        """The bytes `encode(m)` returns, written straight into `buf` at `pos`, for the common member: no
        xattrs, ACLs or sparse map, ASCII names that fit the ustar fields, an owner that fits, a size and mtime
        in octal range, not a device.  Returns the number of bytes written (512, or 1536 with the mtime pax
        record); 0, having written nothing, for any other member (then use encode()).  The caller makes sure
        1536 bytes fit at `pos`.

        Why: the writer's per-member cost is dominated by Python work; this path fills a cached per-owner
        template (one slice copy, pax header blocks included) and sets name, size and mtime, with the checksum
        from the template's byte sum plus the Adler-32 sums of the variable fields."""
        if m.xattrs or m.sparse is not None:
            return 0
        mtype = m.type
        key = (mtype, m.mode, m.uid, m.gid, m.uname, m.gname)
        try:
            template = self._templates[key]
        except KeyError:
            template = self._templates[key] = self._template(key)
        if template is None:
            return 0
        name = m.path.encode(_FSENC, _FSERR)
        if mtype == DIR:
            if not name.endswith(b"/"):
                name += b"/"
            size = 0
        elif mtype == FILE:
            size = m.size
            if size > tf.MAX_OCTAL_SIZE:
                return 0
        else:
            size = 0
        if len(name) > 100 or not name.isascii():
            return 0
        linkname = b""
        if mtype in (SYMLINK, HARDLINK):
            linkname = m.linkname.encode(_FSENC, _FSERR)
            if len(linkname) > 100 or not linkname.isascii():
                return 0
        sec, ns = divmod(m.mtime_ns, 1_000_000_000)
        if not 0 <= sec <= tf.MAX_OCTAL_SIZE:
            return 0
        block, base, prefixes = template
        numbers = b"%011o\0%011o\0" % (size, sec)
        if ns:
            if ns % 10 and 999_999_999 < sec < 10_000_000_000:  # 2001-2286, no trailing zero to drop
                record = b"30 mtime=%d.%09d\n" % (sec, ns)
            else:
                value = (b"%d.%09d" % (sec, ns)).rstrip(b"0")
                record = b"%d mtime=%s\n" % (len(value) + 10, value)  # at most 21 digits: the length has two
            n = len(record)
            # 'x' block, zeroed record block and the ustar template in one copy, then the record on top
            prefix = prefixes.get(n)
            if prefix is None:
                prefix = prefixes[n] = _pax_header_block(n) + _ZERO_BLOCK + block
            h = pos + 2 * tf.BLOCKSIZE
            buf[pos : h + tf.BLOCKSIZE] = prefix
            buf[pos + tf.BLOCKSIZE : pos + tf.BLOCKSIZE + n] = record
        else:
            h = pos
            buf[h : h + tf.BLOCKSIZE] = block
        buf[h : h + len(name)] = name
        buf[h + 124 : h + 148] = numbers  # size and mtime fields
        # Adler-32's low half is 1 + the byte sum (mod 65521): exact here, name and numbers sum to < 32000
        total = base + (_adler32(numbers, _adler32(name)) & 0xFFFF) - 1
        if linkname:
            buf[h + 157 : h + 157 + len(linkname)] = linkname
            total += (_adler32(linkname) & 0xFFFF) - 1
        buf[h + tf.CHKSUM_OFFSET : h + tf.CHKSUM_OFFSET + 8] = b"%06o\0 " % total
        return h + tf.BLOCKSIZE - pos

    def encode(
        self,
        m: Member,
        acl_access: Optional[str] = None,
        acl_default: Optional[str] = None,
    ) -> bytes:
        """Header blocks (pax 'x' header if needed, then the ustar header) for member `m`.

        For a sparse file (`m.sparse` set) the ustar size is the stored size (map + regions) and the data the
        caller writes next must be `sparse_map(m.sparse)` followed by the regions.
        """
        records: List[bytes] = []
        mtype = m.type
        name, linkname, size = _names(m, records)
        if size > tf.MAX_OCTAL_SIZE:
            records.append(pax_record(b"size", b"%d" % size))
            size_field = b"00000000000\0"
        else:
            size_field = b"%011o\0" % size

        owner_key = (m.uid, m.gid, m.uname, m.gname)
        owner = self._owners.get(owner_key)
        if owner is None:
            owner = self._owners[owner_key] = self._owner_fields(*owner_key)
        uid_field, gid_field, uname, gname, owner_records = owner
        if owner_records:
            records.append(owner_records)
        mtime_field = _mtime_field(m.mtime_ns, records)
        if acl_access is not None:
            records.append(pax_record(b"SCHILY.acl.access", fsencode(acl_access)))
        if acl_default is not None:
            records.append(pax_record(b"SCHILY.acl.default", fsencode(acl_default)))
        if m.xattrs:
            for xname, value in m.xattrs.items():
                records.append(pax_record(encode_xattr_keyword(xname), value))

        if mtype in ("chardev", "blockdev"):
            devmajor = b"%07o\0" % m.devmajor
            devminor = b"%07o\0" % m.devminor
        else:
            devmajor = devminor = _ZERO_OCTAL7
        mode_field = self._modes.get(m.mode)
        if mode_field is None:
            mode_field = self._modes[m.mode] = b"%07o\0" % (m.mode & 0o7777)
        block = bytearray(tf.BLOCKSIZE)
        _USTAR.pack_into(
            block,
            0,
            name,
            mode_field,
            uid_field,
            gid_field,
            size_field,
            mtime_field,
            _CHK_SPACES,
            tf.TYPE_TO_TYPEFLAG[mtype],
            linkname,
            tf.USTAR_MAGIC,
            uname,
            gname,
            devmajor,
            devminor,
            b"",
        )
        _checksum_into(block, 0)
        if not records:
            return bytes(block)
        pax = b"".join(records)
        n = len(pax)
        xhdr = self._xheaders.get(n)
        if xhdr is None:
            xhdr = self._xheaders[n] = _pax_header_block(n)
        return b"".join((xhdr, pax, _ZERO_BLOCK[: -n % tf.BLOCKSIZE], block))


def _names(m: Member, records: List[bytes]) -> Tuple[bytes, bytes, int]:
    """The ustar name and linkname fields and the stored size; pax records (appended to `records`) for what
    does not fit, and the GNU sparse 1.0 records of a sparse file."""
    mtype = m.type
    name = m.path.encode(_FSENC, _FSERR)
    if mtype == DIR and not name.endswith(b"/"):
        name += b"/"
    size = m.size if mtype == FILE else 0
    if m.sparse is not None and mtype == FILE:
        records.append(b"22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n")
        records.append(pax_record(b"GNU.sparse.name", name))
        records.append(pax_record(b"GNU.sparse.realsize", b"%d" % m.size))
        head, _, tail = name.rpartition(b"/")
        name = (head + b"/" + _SPARSE_MARK + tail if head else _SPARSE_MARK + tail)[:100]
        size = sparse_stored_size(m.sparse)
    elif len(name) > 100 or not name.isascii():
        records.append(pax_record(b"path", name))
    linkname = b""
    if mtype in (SYMLINK, HARDLINK):
        linkname = fsencode(m.linkname)
        if len(linkname) > 100 or not linkname.isascii():
            records.append(pax_record(b"linkpath", linkname))
    return name, linkname, size


def _mtime_field(mtime_ns: int, records: List[bytes]) -> bytes:
    """The ustar mtime field; a pax mtime record (appended to `records`) for nanoseconds or an out-of-range time."""
    sec, ns = divmod(mtime_ns, 1_000_000_000)
    if not 0 <= sec <= tf.MAX_OCTAL_SIZE:
        records.append(pax_record(b"mtime", format_mtime(mtime_ns)))
        return b"00000000000\0"
    if ns:
        value = (b"%d.%09d" % (sec, ns)).rstrip(b"0")
        if len(value) < 90:  # the record's length has two digits
            records.append(b"%d mtime=%s\n" % (len(value) + 10, value))
        else:
            records.append(pax_record(b"mtime", value))
    return b"%011o\0" % sec


def end_of_archive() -> bytes:
    """The two zero blocks that end a tar archive."""
    return _ZERO_BLOCK * 2
