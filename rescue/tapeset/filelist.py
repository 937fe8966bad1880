"""One line per member in the style of `tar --list --verbose` (filelist.txt, and `rescue list`).

GNU tar's list.c (print_header): mode string, "user/group", the size right-aligned so that "user/group size"
fills a column that starts 19 wide and only grows, the local time as "YYYY-MM-DD HH:MM", the name, then
" -> target" for symlinks or " link to target" for hard links.  Devices show "major,minor" in place of the size.
Names are escaped as tar prints them (rescue.names.list_name: `\n`, `\t`, `\\`, octal for other bytes).
"""

from __future__ import annotations

import time

from rescue.archive.member import BLOCKDEV, CHARDEV, DIR, FIFO, FILE, HARDLINK, SYMLINK, Member
from rescue.names import list_name

_TYPE_CHAR = {DIR: "d", SYMLINK: "l", HARDLINK: "h", CHARDEV: "c", BLOCKDEV: "b", FIFO: "p"}


def mode_string(type_: str, mode: int) -> str:
    """`-rwxr-xr-x` with s/S and t/T for setuid, setgid and sticky, as ls(1) and tar print them."""
    chars = [_TYPE_CHAR.get(type_, "-")]
    for shift, special, letter in ((6, 0o4000, "s"), (3, 0o2000, "s"), (0, 0o1000, "t")):
        bits = (mode >> shift) & 7
        chars.append("r" if bits & 4 else "-")
        chars.append("w" if bits & 2 else "-")
        if mode & special:
            chars.append(letter if bits & 1 else letter.upper())
        else:
            chars.append("x" if bits & 1 else "-")
    return "".join(chars)


class VerboseLister:
    """Formats members like `tar -tv`; keeps tar's growing column width across lines."""

    def __init__(self):
        self.ugswidth = 19  # list.c: static int ugswidth = 19
        # Per-member work is the ceiling on trees of small files: mode strings and minutes repeat a lot.
        self._modes: dict = {}
        self._minutes: dict = {}

    def _stamp(self, mtime_ns: int) -> str:
        minute = mtime_ns // 60_000_000_000
        text = self._minutes.get(minute)
        if text is None:
            if len(self._minutes) > 4096:
                self._minutes.clear()
            text = time.strftime("%Y-%m-%d %H:%M", time.localtime(minute * 60))
            self._minutes[minute] = text
        return text

    def line(self, m: Member) -> str:
        user = m.uname or str(m.uid)
        group = m.gname or str(m.gid)
        if m.type in (CHARDEV, BLOCKDEV):
            size = f"{m.devmajor},{m.devminor}"
        elif m.type == FILE:
            size = str(m.size)
        else:
            size = "0"
        pad = len(user) + 1 + len(group) + 1 + len(size)
        if pad > self.ugswidth:
            self.ugswidth = pad
        modes = self._modes.get((m.type, m.mode))
        if modes is None:
            modes = self._modes[(m.type, m.mode)] = mode_string(m.type, m.mode)
        stamp = self._stamp(m.mtime_ns)
        text = f"{modes} {user}/{group} {size:>{self.ugswidth - pad + len(size)}} {stamp} "
        text += list_name(m.path) + ("/" if m.type == DIR else "")
        if m.type == SYMLINK:
            text += f" -> {list_name(m.linkname)}"
        elif m.type == HARDLINK:
            text += f" link to {list_name(m.linkname)}"
        return text
