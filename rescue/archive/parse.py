"""Decoding of tar header blocks and extended headers into `Member`s: pure functions, no I/O.

Every format GNU tar writes is understood (GNU tar manual, "Basic Tar Format", "Sparse Formats"; POSIX.1-2001
pax):
- v7, ustar (name prefix), oldgnu and gnu (magic "ustar  \\0"; atime/ctime/offset and the 'S' sparse fields live
  where ustar keeps its prefix), numbers in octal or GNU base-256;
- GNU 'L'/'K' long names and link names, 'S' sparse members (`parse_oldgnu_sparse`, extension blocks with
  `parse_sparse_extension`), 'M' multi-volume continuations and 'V' volume labels (recognised, left to the
  reader), 'D' dump directories (a directory);
- pax 'x' and 'g' headers and the old Solaris/star 'X' (`parse_pax`), with path, linkpath, size, uid, gid, uname,
  gname, mtime (fractions to nanoseconds), hdrcharset, SCHILY.xattr.*, LIBARCHIVE.xattr.* (bsdtar), SCHILY.acl.*
  (kept as text; extraction turns it into ACL xattrs), and GNU sparse 0.0, 0.1 and 1.0 (`parse_sparse10_map`).

Checksums are accepted when either the unsigned or the signed byte sum matches, as GNU tar does (some old tars
summed signed chars).

Paths are decoded as the file system does (UTF-8 with surrogateescape), so no name is lost; pax values are UTF-8
unless `hdrcharset=BINARY`, which comes to the same bytes here.  `normalize_name` makes a name relative (leading
"/" and "./" dropped) but keeps ".." components: refusing those is extraction's job.  How the decoded parts of a
member's headers combine into a Member is rescue.archive.assemble.

Every header of a restore passes here, so the common cases take short paths that fall back to the general code
and give the same (tests/archive/test_plain_member.py): one struct unpack per block, octal fields ending in a NUL
read by one int(), pax records split at their newlines.
"""

from __future__ import annotations

import struct
import zlib
from typing import List, Optional, Tuple

from rescue.archive import tarformat as tf

# Records accepted in one extended header: GNU sparse 0.0 spends two per data region; far more is hostile (each
# record costs memory, a 16 MiB header of tiny records would cost hundreds of MiB).
MAX_PAX_RECORDS = 250_000


class HeaderError(ValueError):
    """A block is not a valid tar header (bad checksum or unreadable numbers)."""


# name mode uid gid size mtime chksum typeflag linkname magic+version uname gname devmajor devminor prefix:
# one unpack gives every field of a header block (tf.FIELDS).
_FIELDS = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")
assert _FIELDS.size == tf.BLOCKSIZE


class Header:
    """One 512-byte header block.  `typeflag`, `size` and `fmt` ("v7", "ustar" or "gnu") are decoded at once,
    from `fields` (the block's fields, unpacked); the others only when asked (a pax 'x' header needs none)."""

    __slots__ = ("block", "fields", "typeflag", "size", "fmt")

    def __init__(self, block: bytes, fields: Optional[tuple] = None):
        self.block = block
        self.fields = _FIELDS.unpack(block) if fields is None else fields
        self.typeflag = self.fields[7]
        self.size = parse_number(self.fields[4])
        magic = self.fields[9]
        if magic == tf.GNU_MAGIC:
            self.fmt = "gnu"
        elif magic[:6] == b"ustar\0":
            self.fmt = "ustar"
        else:
            self.fmt = "v7"

    def decode(self) -> Tuple[bytes, bytes, int, int, int, int, bytes, bytes, int, int]:
        """(name, linkname, mode, uid, gid, mtime, uname, gname, devmajor, devminor), in one call."""
        name, mode, uid, gid, _, mtime, _, typeflag, link, _, uname, gname, major, minor, prefix = self.fields
        name = cstr(name)
        v7 = self.fmt == "v7"
        if not v7 and self.fmt == "ustar" and prefix[0] != 0:
            name = cstr(prefix) + b"/" + name
        if typeflag in (tf.CHRTYPE, tf.BLKTYPE) and not v7:
            devmajor, devminor = parse_number(major), parse_number(minor)
        else:
            devmajor = devminor = 0
        return (
            name,
            cstr(link),
            parse_number(mode),
            parse_number(uid),
            parse_number(gid),
            parse_number(mtime),
            b"" if v7 else cstr(uname),
            b"" if v7 else cstr(gname),
            devmajor,
            devminor,
        )

    @property
    def name(self) -> bytes:
        return self.decode()[0]


def cstr(field: bytes) -> bytes:
    end = field.find(0)
    return field if end < 0 else field[:end]


def parse_number(field: bytes) -> int:
    """An octal field (leading spaces, NUL or space terminated) or a GNU base-256 one (first byte 0x80/0xff)."""
    if field[-1:] == b"\0":
        try:  # the common case: digits and a NUL (a NUL among the digits is a ValueError: the general code)
            return int(field[:-1], 8)
        except ValueError:
            pass
    return _general_number(field)


def _general_number(field: bytes) -> int:
    if not field:
        return 0
    lead = field[0]
    if lead == 0x80 or lead == 0xFF:
        # GNU tar: base-256, two's complement, the marker bit being the sign (0xff: negative).
        value = int.from_bytes(field[1:], "big")
        if lead == 0xFF:
            value -= 1 << (8 * (len(field) - 1))
        return value
    end = field.find(0)
    if end >= 0:
        field = field[:end]
    try:
        return int(field, 8)  # int() itself skips the spaces around the digits
    except ValueError:
        if not field.strip(b" "):
            return 0
        raise HeaderError(f"bad number field {bytes(field)!r}") from None


def is_zero_block(block) -> bool:
    return block[0] == 0 and block.count(0) == len(block)


def checksum_ok(block: bytes) -> bool:
    """Whether the stored checksum matches the unsigned or the signed sum of the block (GNU tar's tar_checksum),
    the checksum field counting as eight spaces."""
    field = block[tf.CHKSUM_OFFSET : tf.CHKSUM_OFFSET + tf.CHKSUM_LENGTH]
    try:
        stored = parse_number(field)
    except HeaderError:
        return False
    unsigned = sum(block) - sum(field) + 8 * 0x20
    if stored == unsigned:
        return True
    # Signed sum: bytes >= 128 count as negative (256 less each).
    high = sum(1 for b in block if b >= 128) - sum(1 for b in field if b >= 128)
    return stored == unsigned - 256 * high


def parse_header(block: bytes) -> Header:
    """Decode one header block; raises HeaderError when it is not one (checksum or numbers wrong)."""
    if len(block) != tf.BLOCKSIZE:
        raise HeaderError("short header block")
    # The common case inline: a plain octal checksum matching the unsigned sum.
    fields = _FIELDS.unpack(block)
    field = fields[6]
    end = field.find(0)
    try:
        stored = int(field[:end] if end >= 0 else field, 8)
    except ValueError:
        stored = -1
    if stored != _byte_sum(block) - sum(field) + 256 and not checksum_ok(block):
        raise HeaderError("header checksum mismatch")
    return Header(block, fields)


def _byte_sum(block: bytes) -> int:
    """sum(block) for a 512-byte block.  Adler-32's low half is 1 + the byte sum modulo 65521 (RFC 1950, 2.2),
    and is computed in C far faster than sum(); with at least 256 NUL bytes (every real header: its name,
    link and prefix fields are NUL-padded) the sum is at most 256 * 255 < 65521, so the modulus never wraps."""
    if block.count(0) >= 256:
        return ((zlib.adler32(block) & 0xFFFF) - 1) % 65521
    return sum(block)


def parse_oldgnu_sparse(block: bytes) -> Tuple[List[Tuple[int, int]], bool, int]:
    """The 4 sparse entries of an oldgnu 'S' header, its isextended flag and realsize."""
    entries = _sparse_entries(block, 386, 4)
    return entries, block[482] != 0, parse_number(block[483:495])


def parse_sparse_extension(block: bytes) -> Tuple[List[Tuple[int, int]], bool]:
    """A GNU sparse extension block: 21 (offset, numbytes) entries and the isextended flag at byte 504."""
    return _sparse_entries(block, 0, 21), block[504] != 0


def _sparse_entries(block: bytes, start: int, count: int) -> List[Tuple[int, int]]:
    out = []
    for i in range(count):
        base = start + 24 * i
        if block[base] == 0:
            break
        out.append((parse_number(block[base : base + 12]), parse_number(block[base + 12 : base + 24])))
    return out


def parse_pax(data: bytes) -> List[Tuple[str, bytes]]:
    """Records "LEN KEY=VALUE\\n" of a pax extended header, in order (GNU sparse 0.0 repeats keys).

    Raises HeaderError on a malformed record; values stay bytes (xattr values are binary)."""
    return _plain_pax(data) or _general_pax(data)


def _plain_pax(data: bytes) -> Optional[List[Tuple[str, bytes]]]:
    """The records when no value holds a newline and no NUL padding follows (all but binary xattrs), else None.
    Split at the newlines, each line must be one record of its stated length: the records then tile the data
    as _general_pax reads them, and both give the same."""
    if data[-1:] != b"\n" or len(data) > 4096:  # 4 KiB hold far fewer than MAX_PAX_RECORDS records
        return None
    out = []
    for line in data[:-1].split(b"\n"):
        length, _, rest = line.partition(b" ")
        key, eq, value = rest.partition(b"=")
        if not eq or len(length) > 23 or not length.isdigit() or int(length) != len(line) + 1:
            return None
        out.append((key.decode("utf-8", "surrogateescape"), value))
    return out


def _general_pax(data: bytes) -> List[Tuple[str, bytes]]:
    out = []
    pos, n = 0, len(data)
    while pos < n:
        if data[pos] == 0:  # NUL padding after the last record
            break
        sp = data.find(b" ", pos, pos + 24)
        if sp < 0:
            raise HeaderError("malformed pax record (no length)")
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise HeaderError("malformed pax record length") from None
        end = pos + length
        if length <= sp - pos + 1 or end > n or data[end - 1] != 0x0A:
            raise HeaderError("malformed pax record (bad length)")
        eq = data.find(b"=", sp + 1, end)
        if eq < 0:
            raise HeaderError("malformed pax record (no '=')")
        key = data[sp + 1 : eq].decode("utf-8", "surrogateescape")
        out.append((key, data[eq + 1 : end - 1]))
        if len(out) > MAX_PAX_RECORDS:
            raise HeaderError(f"more than {MAX_PAX_RECORDS} records in one extended header")
        pos = end
    return out


def parse_sparse10_map(text: bytes) -> Optional[Tuple[List[Tuple[int, int]], int]]:
    """The GNU sparse 1.0 map at the start of a member's data: decimal numbers, one a line (count, then offset
    and size pairs), padded to a block.  Returns (map, bytes used incl. padding), or None if `text` does not hold
    it all yet."""
    fields = []
    pos = 0
    need = None
    while need is None or len(fields) < need:
        nl = text.find(b"\n", pos)
        if nl < 0:
            return None
        try:
            value = int(text[pos:nl])
        except ValueError:
            raise HeaderError("malformed GNU sparse 1.0 map") from None
        if value < 0:
            raise HeaderError("malformed GNU sparse 1.0 map (negative number)")
        pos = nl + 1
        if need is None:
            need = 1 + 2 * value
        fields.append(value)
    pairs = [(fields[i], fields[i + 1]) for i in range(1, len(fields), 2)]
    return pairs, tf.padded(pos)


def pax_time_ns(value: bytes) -> int:
    """A pax time ("1700000000.123456789", possibly negative) in nanoseconds."""
    whole, dot, frac = value.partition(b".")
    if whole.isdigit() and (frac.isdigit() or not dot) and len(frac) <= 9:
        # The common case, decided on the bytes (what GNU tar writes for every member).
        return int(whole) * 1_000_000_000 + (int(frac.ljust(9, b"0")) if frac else 0)
    text = value.decode("ascii", "replace").strip()
    neg = text.startswith("-")
    if neg:
        text = text[1:]
    whole, _, frac = text.partition(".")
    try:
        ns = int(whole or "0") * 1_000_000_000 + int((frac + "000000000")[:9] or "0")
    except ValueError:
        raise HeaderError(f"bad pax time {value!r}") from None
    return -ns if neg else ns


def decode_name(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def normalize_name(name: str) -> Tuple[str, bool]:
    """Archive name -> relative form ("a/b"), and whether a leading "/" was removed.  ".." stays."""
    if (
        name
        and not name.startswith(("/", "./"))
        and not name.endswith(("/", "/."))
        and name != "."
        and "//" not in name
        and "/./" not in name
    ):
        return name, False  # already in archive form (the common case)
    if name.startswith("./") and len(name) > 2:
        rest = name[2:]  # GNU tar's "tar -C dir ." names: "./a/b"
        if (
            not rest.startswith(("/", "./"))
            and not rest.endswith(("/", "/."))
            and rest != "."
            and "//" not in rest
            and "/./" not in rest
        ):
            return rest, False
    absolute = name.startswith("/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts), absolute


def check_sparse_map(regions: List[Tuple[int, int]], realsize: int, stored: int) -> None:
    """A sparse map must be ascending, inside the file, and add up to the stored bytes (else it is hostile)."""
    total = 0
    last = 0
    for off, length in regions:
        if off < last or length < 0 or off + length > realsize:
            raise HeaderError("sparse map out of order or beyond the file size")
        last = off + length
        total += length
    if total != stored:
        raise HeaderError(f"sparse map holds {total} bytes, the member stores {stored}")
