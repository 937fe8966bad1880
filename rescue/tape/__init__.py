"""Tape devices: `open_tape()` picks the backend for a device name.

The name is what `-f DEVICE` gives, else $TAPE, else /dev/nst0 (`default_device()`):

- a character device                                   -> st (Linux SCSI tape through ioctl)
- an existing directory, or a name ending in "/" when writing -> dir (one file per tape file)
- a name ending in ".tap", or a regular file whose first bytes parse as SIMH records -> simh
- "-", any other regular file or a pipe, or a new name ending in ".tar" when writing -> stream

Options are passed to the backend: `capacity` (simh, dir), `write_protected` (all), `record_size` (dir and
stream cut their byte streams into records of this size; simh and st keep each record's own size and ignore it),
`keep_position` (simh and dir remember the position across close and open, as /dev/nst0 does by itself; st
always keeps it, a stream cannot).
"""

from __future__ import annotations

import os
import stat
from typing import Optional

from rescue.tape.base import NoMediumError, Tape, TapeError

DEFAULT_DEVICE = "/dev/nst0"


def default_device() -> str:
    """$TAPE, else /dev/nst0 (what mt-st and GNU tar use on Linux)."""
    return os.environ.get("TAPE") or DEFAULT_DEVICE


def backend_kind(device: str, write: bool = False) -> str:
    """Which backend `open_tape` uses for this name: "st", "simh", "dir" or "stream"."""
    from rescue.tape.simh_format import looks_like_simh

    if device == "-":
        return "stream"
    try:
        st = os.stat(device)
    except FileNotFoundError:
        if device.endswith(".tap"):
            return "simh"
        if write and device.endswith("/"):
            return "dir"
        if write and (device.endswith(".tar") or ".tar." in os.path.basename(device)):
            return "stream"
        if device.startswith("/dev/"):
            raise NoMediumError(f"{device}: no such device; give -f DEVICE or set $TAPE") from None
        if write:
            raise TapeError(
                f"{device}: does not exist; name a new tape image *.tap, an archive file *.tar, or a directory "
                "ending in /"
            ) from None
        raise NoMediumError(f"{device}: no such file or device; give -f DEVICE or set $TAPE") from None
    except OSError as e:
        raise TapeError(f"{device}: {e.strerror}") from None
    if stat.S_ISCHR(st.st_mode):
        return "st"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        if device.endswith(".tap"):
            return "simh"
        if write and device.endswith(".tar"):
            return "stream"
        return "simh" if looks_like_simh(device) else "stream"
    if stat.S_ISFIFO(st.st_mode):
        return "stream"
    raise TapeError(f"{device}: not a tape device, tape image, directory or archive file")


def open_tape(device: Optional[str] = None, *, write: bool = False, **options) -> Tape:
    """Open a tape by name (None: $TAPE, then /dev/nst0); `write` opens it for writing."""
    name = device or default_device()
    kind = backend_kind(name, write)
    if kind == "simh":
        from rescue.tape.simh import SimhTape

        return SimhTape(name, write=write, **options)
    if kind == "dir":
        from rescue.tape.directory import DirectoryTape

        return DirectoryTape(name, write=write, **options)
    if kind == "stream":
        from rescue.tape.stream import StreamTape

        return StreamTape(name, write=write, **options)
    from rescue.tape.st import StTape

    return StTape(name, write=write, **options)


__all__ = ["DEFAULT_DEVICE", "backend_kind", "default_device", "open_tape"]
