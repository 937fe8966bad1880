"""The Linux magnetic tape ioctl interface of <sys/mtio.h> (and <linux/mtio.h>), computed rather than pasted.

Structures (native layout, as the C compiler lays them out on this machine):

    struct mtop  { short mt_op; int mt_count; };
    struct mtget { long mt_type, mt_resid, mt_dsreg, mt_gstat, mt_erreg; __daddr_t mt_fileno, mt_blkno; };
    struct mtpos { long mt_blkno; };

(__daddr_t is a 32-bit int in glibc and the kernel.)  Request numbers follow <asm-generic/ioctl.h>:
_IOC(dir, type, nr, size) = dir << DIRSHIFT | type << 8 | nr | size << 16, with _IOC_WRITE = 1 and
_IOC_READ = 2 and 14 size bits, except on alpha, mips, powerpc and sparc (13 size bits, 3 direction bits,
_IOC_READ = 2, _IOC_WRITE = 4; their asm/ioctl.h).  MTIOCTOP = _IOW('m', 1, struct mtop),
MTIOCGET = _IOR('m', 2, struct mtget), MTIOCPOS = _IOR('m', 3, struct mtpos).

tests/tape/test_mtio_probe.py compiles a C program against <sys/mtio.h> and compares every number here.
"""

from __future__ import annotations

import platform
import struct

# -- <asm-generic/ioctl.h> ---------------------------------------------------------------------------------------

_ALT_IOCTL = platform.machine().lower().startswith(("alpha", "mips", "ppc", "powerpc", "sparc"))
IOC_NRBITS = 8
IOC_TYPEBITS = 8
IOC_SIZEBITS = 13 if _ALT_IOCTL else 14
IOC_NRSHIFT = 0
IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS
IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS
IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS
IOC_WRITE = 4 if _ALT_IOCTL else 1
IOC_READ = 2


def IOC(direction: int, kind: str, nr: int, size: int) -> int:
    return (
        (direction << IOC_DIRSHIFT)
        | (ord(kind) << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | (size << IOC_SIZESHIFT)
    )


def IOW(kind: str, nr: int, size: int) -> int:
    return IOC(IOC_WRITE, kind, nr, size)


def IOR(kind: str, nr: int, size: int) -> int:
    return IOC(IOC_READ, kind, nr, size)


# -- the structures ------------------------------------------------------------------------------------------------

MTOP = struct.Struct("@hi")  # short mt_op; int mt_count
MTGET = struct.Struct("@lllllii")  # long x5; __daddr_t (int) x2
MTPOS = struct.Struct("@l")  # long mt_blkno
MTGET_FIELDS = ("mt_type", "mt_resid", "mt_dsreg", "mt_gstat", "mt_erreg", "mt_fileno", "mt_blkno")


def _offsets(fmt: str, names: tuple) -> dict:
    """offsetof() of each field: the size of the native struct up to it, aligned for it."""
    out = {}
    for i, name in enumerate(names):
        out[name] = struct.calcsize("@" + fmt[:i] + "0" + fmt[i])  # "0x" pads to x's alignment
    return out


MTOP_OFFSETS = _offsets("hi", ("mt_op", "mt_count"))
MTGET_OFFSETS = _offsets("lllllii", MTGET_FIELDS)
MTPOS_OFFSETS = _offsets("l", ("mt_blkno",))

MTIOCTOP = IOW("m", 1, MTOP.size)
MTIOCGET = IOR("m", 2, MTGET.size)
MTIOCPOS = IOR("m", 3, MTPOS.size)

# -- mt_op codes (<sys/mtio.h>; MTWEOFI only in <linux/mtio.h>) -------------------------------------------------

MTRESET = 0  # reset drive
MTFSF = 1  # forward space over filemark, position at first record of next file
MTBSF = 2  # backward space filemark (position before FM)
MTFSR = 3  # forward space record
MTBSR = 4  # backward space record
MTWEOF = 5  # write an end-of-file record (mark)
MTREW = 6  # rewind
MTOFFL = 7  # rewind and put the drive offline (eject)
MTNOP = 8  # no op, set status only (read with MTIOCGET)
MTRETEN = 9  # retension tape
MTBSFM = 10  # backward space filemark, position at FM
MTFSFM = 11  # forward space filemark, position at FM
MTEOM = 12  # goto end of recorded media (for appending files)
MTERASE = 13  # erase tape
MTRAS1 = 14
MTRAS2 = 15
MTRAS3 = 16
MTSETBLK = 20  # set block length (SCSI)
MTSETDENSITY = 21  # set tape density (SCSI)
MTSEEK = 22  # seek to block
MTTELL = 23  # tell block
MTSETDRVBUFFER = 24  # set the drive buffering / st options
MTFSS = 25  # space forward over setmarks
MTBSS = 26  # space backward over setmarks
MTWSM = 27  # write setmarks
MTLOCK = 28  # lock the drive door
MTUNLOCK = 29  # unlock the drive door
MTLOAD = 30  # execute the SCSI load command
MTUNLOAD = 31  # execute the SCSI unload command
MTCOMPRESSION = 32  # control compression with SCSI mode page 15
MTSETPART = 33  # change the active tape partition
MTMKPART = 34  # format the tape with one or two partitions
MTWEOFI = 35  # write an end-of-file record (mark) in immediate mode

OP_NAMES = {
    v: k
    for k, v in dict(globals()).items()
    if k.startswith("MT") and not k.startswith(("MTIOC", "MT_")) and isinstance(v, int)
}

# -- mt_type ---------------------------------------------------------------------------------------------------------

MT_ISSCSI1 = 0x71  # generic ANSI SCSI-1 tape unit
MT_ISSCSI2 = 0x72  # generic ANSI SCSI-2 tape unit (what st reports)

# -- mt_gstat: generic status bits (GMT_xxx(x) = x & bit) ------------------------------------------------------------

GMT_EOF = 0x80000000
GMT_BOT = 0x40000000
GMT_EOT = 0x20000000
GMT_SM = 0x10000000  # DDS setmark
GMT_EOD = 0x08000000  # DDS EOD
GMT_WR_PROT = 0x04000000
GMT_ONLINE = 0x01000000
GMT_D_6250 = 0x00800000
GMT_D_1600 = 0x00400000
GMT_D_800 = 0x00200000
GMT_DR_OPEN = 0x00040000  # door open (no tape)
GMT_IM_REP_EN = 0x00010000  # immediate report mode
GMT_CLN = 0x00008000  # cleaning requested

# The words mt-st prints for the bits, in its order.
GMT_WORDS = (
    ("EOF", GMT_EOF),
    ("BOT", GMT_BOT),
    ("EOT", GMT_EOT),
    ("SM", GMT_SM),
    ("EOD", GMT_EOD),
    ("WR_PROT", GMT_WR_PROT),
    ("ONLINE", GMT_ONLINE),
    ("D_6250", GMT_D_6250),
    ("D_1600", GMT_D_1600),
    ("D_800", GMT_D_800),
    ("DR_OPEN", GMT_DR_OPEN),
    ("IM_REP_EN", GMT_IM_REP_EN),
    ("CLN", GMT_CLN),
)

# -- mt_dsreg and mt_erreg of the SCSI tape driver -------------------------------------------------------------------

MT_ST_BLKSIZE_SHIFT = 0
MT_ST_BLKSIZE_MASK = 0xFFFFFF
MT_ST_DENSITY_SHIFT = 24
MT_ST_DENSITY_MASK = 0xFF000000
MT_ST_SOFTERR_SHIFT = 0
MT_ST_SOFTERR_MASK = 0xFFFF


def pack_mtop(op: int, count: int) -> bytes:
    return MTOP.pack(op, count)


def unpack_mtget(raw: bytes) -> dict:
    return dict(zip(MTGET_FIELDS, MTGET.unpack(raw)))


def gstat_words(gstat: int) -> list:
    return [word for word, bit in GMT_WORDS if gstat & bit]
