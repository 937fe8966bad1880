"""Constants of the tar formats, shared by the header encoder (headers.py) and the parser (parse.py).

Sources: POSIX.1-2001 pax (ustar header layout and pax keywords), the GNU tar manual's "Standard" and "Sparse
Formats" appendices (GNU typeflags, oldgnu sparse fields, GNU.sparse.* keywords).
"""

from __future__ import annotations

from rescue.errors import UsageError
from rescue.tape.base import DEFAULT_RECORD_SIZE  # noqa: F401 (the set's record, 256 KiB: tar -b 512)

BLOCKSIZE = 512
NUL = b"\0"


class RecordSizeError(UsageError):
    """A record size that is not whole tar blocks."""


def check_record_size(size, what: str = "") -> int:
    """A tar archive's record is whole 512-byte blocks (GNU tar's -b counts them): return `size`, or raise
    naming it (`what` says where it came from, e.g. "record size '1000'")."""
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % BLOCKSIZE:
        raise RecordSizeError(
            f"{what or f'record size {size!r}'}: must be a positive multiple of {BLOCKSIZE} bytes"
        )
    return size


# ustar header fields: name -> (offset, length)
FIELDS = {
    "name": (0, 100),
    "mode": (100, 8),
    "uid": (108, 8),
    "gid": (116, 8),
    "size": (124, 12),
    "mtime": (136, 12),
    "chksum": (148, 8),
    "typeflag": (156, 1),
    "linkname": (157, 100),
    "magic": (257, 6),
    "version": (263, 2),
    "uname": (265, 32),
    "gname": (297, 32),
    "devmajor": (329, 8),
    "devminor": (337, 8),
    "prefix": (345, 155),
}
CHKSUM_OFFSET, CHKSUM_LENGTH = FIELDS["chksum"]

USTAR_MAGIC = b"ustar\x0000"  # POSIX ustar / pax: magic "ustar\0", version "00"
GNU_MAGIC = b"ustar  \x00"  # GNU and oldgnu: magic "ustar " and version " \0"

# Typeflags
REGTYPE = b"0"
AREGTYPE = b"\0"  # pre-POSIX regular file
LNKTYPE = b"1"
SYMTYPE = b"2"
CHRTYPE = b"3"
BLKTYPE = b"4"
DIRTYPE = b"5"
FIFOTYPE = b"6"
CONTTYPE = b"7"  # contiguous file: a regular file
XHDTYPE = b"x"  # pax extended header for the next member
XGLTYPE = b"g"  # pax global extended header
GNUTYPE_LONGNAME = b"L"
GNUTYPE_LONGLINK = b"K"
GNUTYPE_SPARSE = b"S"  # oldgnu sparse file
GNUTYPE_MULTIVOL = b"M"  # continuation of a file started on the previous volume
GNUTYPE_VOLHDR = b"V"  # volume label
GNUTYPE_DUMPDIR = b"D"  # incremental-dump directory
SOLARIS_XHDTYPE = b"X"  # old Solaris/star extended header, same syntax as 'x'

# Member type words (rescue.archive.member) for the typeflags that describe a member.
TYPEFLAG_TO_TYPE = {
    REGTYPE: "file",
    AREGTYPE: "file",
    CONTTYPE: "file",
    GNUTYPE_SPARSE: "file",
    LNKTYPE: "hardlink",
    SYMTYPE: "symlink",
    CHRTYPE: "chardev",
    BLKTYPE: "blockdev",
    DIRTYPE: "dir",
    GNUTYPE_DUMPDIR: "dir",
    FIFOTYPE: "fifo",
}
TYPE_TO_TYPEFLAG = {
    "file": REGTYPE,
    "hardlink": LNKTYPE,
    "symlink": SYMTYPE,
    "chardev": CHRTYPE,
    "blockdev": BLKTYPE,
    "dir": DIRTYPE,
    "fifo": FIFOTYPE,
}

# Largest values the octal fields hold; larger ones go to pax records (or base-256 in GNU headers).
MAX_OCTAL_SIZE = 8**11 - 1  # 12-byte field: 8 GiB - 1
MAX_OCTAL_ID = 8**7 - 1  # 8-byte field: 2097151


def header_checksum(block: bytes) -> int:
    """Sum of the header's bytes with the checksum field counted as spaces (POSIX ustar)."""
    return sum(block[:CHKSUM_OFFSET]) + 8 * 0x20 + sum(block[CHKSUM_OFFSET + CHKSUM_LENGTH : BLOCKSIZE])


def padded(size: int) -> int:
    """Size rounded up to whole 512-byte blocks."""
    return (size + BLOCKSIZE - 1) // BLOCKSIZE * BLOCKSIZE
