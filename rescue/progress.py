"""Progress of long work: one redrawn line on a terminal, plain periodic log lines otherwise.

Messages and progress go to stderr; stdout is for results.  Jobs call `update()` as often as they like: output
is rate-limited here, so the hot path only adds two integers.  `unit` names what the count counts ("files",
"members"), so a job's progress and its summary use the same word for the same number.  On a terminal the line
fits its width (a line longer than the terminal would wrap and the redraw would scroll): the rate goes first,
then the count; bytes, percentage and ETA stay as long as they fit.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Optional


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Tracks bytes and files against optional totals and reports rate and ETA."""

    def __init__(
        self,
        what: str,
        total_bytes: Optional[int] = None,
        total_files: Optional[int] = None,
        stream: Optional[IO[str]] = None,
        interval: Optional[float] = None,
        clock=time.monotonic,
        unit: str = "files",
        width: Optional[int] = None,
    ):
        self.what = what
        self.total_bytes = total_bytes
        self.total_files = total_files
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.5 if self.tty else 30.0)
        self.clock = clock
        self.unit = unit
        self.width = width  # None: the terminal's width, asked at each redraw (it may be resized)
        self.start = clock()
        self._last = self.start
        self.bytes = 0
        self.files = 0

    def update(self, nbytes: int = 0, nfiles: int = 0) -> None:
        self.bytes += nbytes
        self.files += nfiles
        now = self.clock()
        if now - self._last >= self.interval:
            self._last = now
            self._emit(now, final=False)

    def line(self, now: Optional[float] = None, width: Optional[int] = None) -> str:
        """The progress line; with `width`, at most width - 1 characters (the cursor needs the last column)."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        rate = self.bytes / elapsed
        head = f"{self.what}: {human_bytes(self.bytes)}"
        if self.total_bytes:
            head += f" of {human_bytes(self.total_bytes)} ({100 * self.bytes / self.total_bytes:.0f}%)"
        count = f"{self.files}" if not self.total_files else f"{self.files}/{self.total_files}"
        parts = [head, f"{count} {self.unit}", f"{human_bytes(rate)}/s"]
        if self.total_bytes and rate > 0 and self.bytes < self.total_bytes:
            parts.append(f"ETA {human_duration((self.total_bytes - self.bytes) / rate)}")
        text = ", ".join(parts)
        if width is None:
            return text
        for drop in (2, 1):  # the rate, then the count
            if len(text) < width or len(parts) <= drop:
                break
            del parts[drop]
            text = ", ".join(parts)
        return text[: max(width - 1, 1)]

    def _terminal_width(self) -> int:
        if self.width is not None:
            return self.width
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (OSError, AttributeError, ValueError):
            return 80

    def _emit(self, now: float, final: bool) -> None:
        text = self.line(now, self._terminal_width() if self.tty else None)
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> float:
        """Print the final line; return the elapsed seconds."""
        now = self.clock()
        self._emit(now, final=True)
        return now - self.start
