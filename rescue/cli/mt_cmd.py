"""`rescue [-f DEVICE] mt OP [COUNT]`: the operations of mt-st, on a drive, a .tap image or a directory volume.

`status` prints what mt-st prints (drive type, file and block number, block size, density, soft errors, the
general status bits); `tell` prints "At block N." as mt-st does; `--json` prints the result as one JSON object.
Images and directories remember their position between runs, as the non-rewinding /dev/nst0 does, so
`mt fsf 1` followed by `mt status` reports file 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from rescue.errors import UsageError
from rescue.tape import backend_kind, default_device, mtio, open_tape
from rescue.tape.base import Tape, TapeStatus, UnsupportedError

# Operation -> (method, whether it writes, whether COUNT is used).  Names and aliases as in mt-st.
OPERATIONS = {
    "status": ("status", False, False),
    "rewind": ("rewind", False, False),
    "offline": ("offline", False, False),
    "rewoffl": ("offline", False, False),
    "eject": ("offline", False, False),
    "fsf": ("space_files", False, True),
    "bsf": ("space_files", False, True),
    "fsr": ("space_records", False, True),
    "bsr": ("space_records", False, True),
    "eod": ("seek_eod", False, False),
    "seod": ("seek_eod", False, False),
    "eom": ("seek_eod", False, False),
    "tell": ("tell", False, False),
    "seek": ("seek", False, True),
    "weof": ("write_filemarks", True, True),
    "eof": ("write_filemarks", True, True),
    "erase": ("erase", True, False),
    "setblk": ("set_block_size", False, True),
    "setdensity": ("set_density", False, True),
    "compression": ("set_compression", False, True),
    "load": ("load", False, False),
    "retension": ("retension", False, False),
    "lock": ("lock", False, False),
    "unlock": ("unlock", False, False),
    "fsfm": ("fsfm", False, True),
    "bsfm": ("bsfm", False, True),
    "unload": ("unload", False, False),
    "wset": ("mtop", True, True),
    "fss": ("mtop", False, True),
    "bss": ("mtop", False, True),
    "setpartition": ("mtop", False, True),
    "mkpartition": ("mtop", True, True),
}
NEEDS_COUNT = {"seek", "setblk", "setdensity", "setpartition", "mkpartition"}
# Operations only a drive has (setmarks, partitions): sent to st as they are.
DRIVE_ONLY = {
    "wset": mtio.MTWSM,
    "fss": mtio.MTFSS,
    "bss": mtio.MTBSS,
    "setpartition": mtio.MTSETPART,
    "mkpartition": mtio.MTMKPART,
}

# Density codes mt-st names (SCSI SSC density codes; the common ones).
DENSITIES = {
    0x00: "default",
    0x13: "DDS (61000 bpi)",
    0x24: "DDS-2",
    0x25: "DDS-3",
    0x26: "DDS-4 or QIC-4GB",
    0x40: "DLT1 40 GB, or Ultrium",
    0x42: "LTO-2",
    0x44: "LTO-3",
    0x46: "LTO-4",
    0x58: "LTO-5",
    0x5A: "LTO-6",
    0x5C: "LTO-7",
    0x5D: "LTO-7-M8",
    0x5E: "LTO-8",
    0x60: "LTO-9",
}

_GSTAT_BITS = {
    "eof": mtio.GMT_EOF,
    "bot": mtio.GMT_BOT,
    "eot": mtio.GMT_EOT,
    "eod": mtio.GMT_EOD,
    "write_protected": mtio.GMT_WR_PROT,
    "online": mtio.GMT_ONLINE,
    "door_open": mtio.GMT_DR_OPEN,
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "mt",
        help="tape operations as mt-st: status, rewind, fsf, bsf, fsr, bsr, eod, tell, seek, weof, eject ...",
        description="Magnetic tape operations (those of mt-st) on DEVICE: a tape drive, a .tap image or a "
        "directory volume.  Operations: " + ", ".join(OPERATIONS) + ".",
    )
    p.add_argument("operation", metavar="OP", choices=sorted(OPERATIONS), help="the operation")
    p.add_argument(
        "count", metavar="COUNT", nargs="?", type=_count, help="repeat count or argument (default 1)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _count(text: str) -> int:
    """An integer as mt-st reads it (decimal, 0x hex, 0 octal) with an optional k/M/G multiplier."""
    multiplier = {"k": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    digits = text[:-1] if multiplier != 1 else text
    try:
        value = int(digits, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad count {text!r}; give a number") from None
    return value * multiplier


def gstat_of(status: TapeStatus) -> int:
    if status.gstat is not None:
        return status.gstat
    return sum(bit for name, bit in _GSTAT_BITS.items() if getattr(status, name))


def format_status(status: TapeStatus) -> str:
    """The report mt-st's `status` prints."""
    gstat = gstat_of(status)
    density = DENSITIES.get(status.density, "no translation")
    words = "".join(" " + w for w in mtio.gstat_words(gstat))
    return (
        f"{status.drive_type or status.kind}:\n"
        f"File number={status.file_number}, block number={status.block_number}, partition={status.partition}.\n"
        f"Tape block size {status.block_size} bytes. Density code 0x{status.density:x} ({density}).\n"
        f"Soft error count since last status={status.soft_errors}\n"
        f"General status bits on ({gstat:x}):\n"
        f"{words}\n"
    )


def status_json(status: TapeStatus) -> dict:
    out = dataclasses.asdict(status)
    out["gstat"] = gstat_of(status)
    out["flags"] = mtio.gstat_words(out["gstat"])
    return out


def run(args) -> int:
    op = args.operation
    method, writes, uses_count = OPERATIONS[op]
    if op in NEEDS_COUNT and args.count is None:
        raise UsageError(f"mt {op}: give the {'block number' if op == 'seek' else 'value'}")
    if args.count is not None and not uses_count:
        raise UsageError(f"mt {op}: takes no count")
    count = 1 if args.count is None else args.count
    if count < 0:
        raise UsageError("mt: negative repeat count")
    device = args.device or default_device()
    # Images and directory volumes remember their position between runs, as /dev/nst0 does by itself.
    if backend_kind(device, writes) in ("simh", "dir"):
        tape = open_tape(device, write=writes, keep_position=True)
    else:
        tape = open_tape(device, write=writes)
    try:
        result = _apply(tape, op, method, count)
    finally:
        tape.close()
    if args.json:
        out = {"device": device, "operation": op}
        if args.count is not None:
            out["count"] = count
        if isinstance(result, TapeStatus):
            out["status"] = status_json(result)
        elif result is not None:
            out["block"] = result
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
    elif isinstance(result, TapeStatus):
        sys.stdout.write(format_status(result))
    elif op == "tell":
        print(f"At block {result}.")
    return 0


def _apply(tape: Tape, op: str, method: str, count: int):
    if tape.kind == "st" and op in ("fsfm", "bsfm", "unload"):
        return tape.mtop({"fsfm": mtio.MTFSFM, "bsfm": mtio.MTBSFM, "unload": mtio.MTUNLOAD}[op], count)
    if op in DRIVE_ONLY:
        if tape.kind != "st":
            raise UnsupportedError(f"{tape.name}: mt {op} needs a tape drive (setmarks and partitions)")
        return tape.mtop(DRIVE_ONLY[op], count)
    if op == "fsfm":  # st(4): forward over COUNT filemarks, then stop on the BOT side of the last one
        tape.space_files(count)
        return tape.space_files(-1)
    if op == "bsfm":  # backward over COUNT filemarks, then stop on their EOT side
        tape.space_files(-count)
        return tape.space_files(1)
    if op == "unload":
        return tape.offline()
    fn = getattr(tape, method)
    if op in ("bsf", "bsr"):
        return fn(-count)
    if method in ("space_files", "space_records", "write_filemarks", "seek", "set_block_size", "set_density"):
        return fn(count)
    if method == "set_compression":
        return fn(bool(count))
    return fn()
