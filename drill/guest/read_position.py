"""READ POSITION, long form (SSC-3 7.5, service action 06h), sent to a tape through SG_IO; runs in the guest.

    python3 read_position.py /dev/nst0      -> prints "object=N file=F bop=0|1"

st(4) forgets its file number after MTSEEK (it reports -1); the long form returns the drive's own logical file
identifier next to the logical object number, which is how a program can know both after seeking.  SG_IO on
an st device needs CAP_SYS_RAWIO (root).  Standard library only (ctypes for struct sg_io_hdr, <scsi/sg.h>).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import sys

SG_IO = 0x2285
SG_DXFER_FROM_DEV = -3


class SgIoHdr(ctypes.Structure):
    _fields_ = [
        ("interface_id", ctypes.c_int),
        ("dxfer_direction", ctypes.c_int),
        ("cmd_len", ctypes.c_ubyte),
        ("mx_sb_len", ctypes.c_ubyte),
        ("iovec_count", ctypes.c_ushort),
        ("dxfer_len", ctypes.c_uint),
        ("dxferp", ctypes.c_void_p),
        ("cmdp", ctypes.c_void_p),
        ("sbp", ctypes.c_void_p),
        ("timeout", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("pack_id", ctypes.c_int),
        ("usr_ptr", ctypes.c_void_p),
        ("status", ctypes.c_ubyte),
        ("masked_status", ctypes.c_ubyte),
        ("msg_status", ctypes.c_ubyte),
        ("sb_len_wr", ctypes.c_ubyte),
        ("host_status", ctypes.c_ushort),
        ("driver_status", ctypes.c_ushort),
        ("resid", ctypes.c_int),
        ("duration", ctypes.c_uint),
        ("info", ctypes.c_uint),
    ]


def read_position_long(fd: int) -> dict:
    cdb = (ctypes.c_ubyte * 10)(0x34, 0x06, 0, 0, 0, 0, 0, 0, 0, 0)
    data = (ctypes.c_ubyte * 32)()
    sense = (ctypes.c_ubyte * 32)()
    hdr = SgIoHdr(
        interface_id=ord("S"),
        dxfer_direction=SG_DXFER_FROM_DEV,
        cmd_len=10,
        mx_sb_len=32,
        dxfer_len=32,
        dxferp=ctypes.addressof(data),
        cmdp=ctypes.addressof(cdb),
        sbp=ctypes.addressof(sense),
        timeout=30000,
    )
    fcntl.ioctl(fd, SG_IO, hdr)
    if hdr.status != 0 or hdr.host_status or hdr.driver_status:
        raise OSError(f"READ POSITION failed: status {hdr.status:#x}, sense {bytes(sense)[:18].hex()}")
    raw = bytes(data)
    return {
        "bop": raw[0] >> 7,
        "object": int.from_bytes(raw[8:16], "big"),
        "file": int.from_bytes(raw[16:24], "big"),
    }


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fd = os.open(args[0] if args else "/dev/nst0", os.O_RDONLY | os.O_NONBLOCK)
    try:
        pos = read_position_long(fd)
    finally:
        os.close(fd)
    print(f"object={pos['object']} file={pos['file']} bop={pos['bop']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
