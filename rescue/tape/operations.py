"""The operations of mt-st on any tape backend: the operation table, `run_operation()`, the status report.

    open_drive(device, write=False) -> Tape
    run_operation(device, op, count=None) -> OperationResult
    format_status(status) -> str          # what mt-st's `status` prints
    OperationResult.to_json() -> dict     # what `rescue mt --json` prints

`open_drive` opens a device as a drive behaves: `.tap` images and directory volumes remember their position and
an `mt offline` between runs (keep_position), as the non-rewinding /dev/nst0 does by itself.  Every command
opens its device through it, and the jobs with `online=True`: a tape taken offline with `rescue mt offline` is
refused by the next backup, restore, verify or list ("drive offline"), until `rescue mt load`.

COUNT is read as mt-st reads it (`parse_count`: decimal, 0x hex, 0 octal, a k/M/G multiplier).  Bad arguments
raise UsageError naming the operation; the backends raise TapeError subclasses naming the device.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

from rescue.errors import UsageError
from rescue.tape import backend_kind, mtio, open_tape
from rescue.tape.base import NoMediumError, Tape, TapeStatus, UnsupportedError

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
_COUNTED = ("space_files", "space_records", "write_filemarks", "seek", "set_block_size", "set_density")

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


@dataclasses.dataclass
class OperationResult:
    device: str
    operation: str
    count: Optional[int]  # as given; None when the operation ran with its default
    value: Union[TapeStatus, int, None]  # the status, the block of `tell`, or nothing

    def to_json(self) -> dict:
        out: dict = {"device": self.device, "operation": self.operation}
        if self.count is not None:
            out["count"] = self.count
        if isinstance(self.value, TapeStatus):
            out["status"] = status_json(self.value)
        elif self.value is not None:
            out["block"] = self.value
        return out

    def text(self) -> str:
        """What mt-st prints for it: the status report, "At block N." for tell, else nothing."""
        if isinstance(self.value, TapeStatus):
            return format_status(self.value)
        if self.operation == "tell":
            return f"At block {self.value}.\n"
        return ""


def parse_count(text: str) -> int:
    """An integer as mt-st reads it (decimal, 0x hex, 0 octal) with an optional k/M/G multiplier."""
    multiplier = {"k": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    digits = text[:-1] if multiplier != 1 else text
    try:
        # strtol(..., 0) as mt-st uses it: a leading 0 is octal (Python's base 0 refuses "010").
        octal = len(digits) > 1 and digits[0] == "0" and digits[1:].isdigit()
        value = int(digits, 8) if octal else int(digits, 0)
    except ValueError:
        raise ValueError(f"bad count {text!r}; give a number") from None
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


def open_drive(device: str, write: bool = False, online: bool = False) -> Tape:
    """Open `device` as a drive: images and directory volumes keep their position and offline state.
    With `online`, a drive that is offline (no tape, or an image taken offline by `mt offline`) is refused."""
    if backend_kind(device, write) not in ("simh", "dir"):
        # A drive reports a missing tape itself (st: ENOMEDIUM on the first access); a stream has no status.
        return open_tape(device, write=write)
    tape = open_tape(device, write=write, keep_position=True)
    if online:
        try:
            up = tape.status().online
        except BaseException:
            tape.close()
            raise
        if not up:
            tape.close()
            raise NoMediumError(
                f"{device}: drive offline (no tape loaded, or taken offline with `mt offline`); load the tape "
                "(`rescue mt load` for an image or directory) and retry"
            )
    return tape


def run_operation(device: str, op: str, count: Optional[int] = None) -> OperationResult:
    """Open `device`, apply mt operation `op` (COUNT times, or with argument COUNT), close it."""
    if op not in OPERATIONS:
        raise UsageError(f"mt {op}: unknown operation (known: {', '.join(OPERATIONS)})")
    method, writes, uses_count = OPERATIONS[op]
    if op in NEEDS_COUNT and count is None:
        raise UsageError(f"mt {op}: give the {'block number' if op == 'seek' else 'value'}")
    if count is not None and not uses_count:
        raise UsageError(f"mt {op}: takes no count")
    n = 1 if count is None else count
    if n < 0:
        raise UsageError("mt: negative repeat count")
    with open_drive(device, write=writes) as tape:
        value = apply(tape, op, n)
    return OperationResult(device, op, count, value)


def apply(tape: Tape, op: str, count: int):
    """Operation `op` on an open tape; returns the status, the block of `tell`, or None."""
    method = OPERATIONS[op][0]
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
    if method in _COUNTED:
        return fn(count)
    if method == "set_compression":
        return fn(bool(count))
    return fn()
