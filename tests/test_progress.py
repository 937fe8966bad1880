"""Progress lines: bytes, files, rate and ETA; rate-limited; plain lines when not a terminal."""

import io

from rescue.progress import Progress, human_bytes, human_duration


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_log_lines_show_bytes_rate_and_eta_and_are_rate_limited():
    out, clock = io.StringIO(), Clock()
    p = Progress("restore", total_bytes=100 * 2**20, total_files=10, stream=out, interval=30, clock=clock)
    clock.now = 10
    p.update(10 * 2**20, 1)  # within the interval: nothing printed
    assert out.getvalue() == ""
    clock.now = 40
    p.update(30 * 2**20, 3)
    line = out.getvalue()
    assert line == "restore: 40.0 MiB of 100.0 MiB (40%), 4/10 files, 1.0 MiB/s, ETA 1:00\n"


def test_done_prints_a_final_line_and_returns_elapsed():
    out, clock = io.StringIO(), Clock()
    p = Progress("backup", stream=out, clock=clock)
    p.update(2048, 2)
    clock.now = 2
    assert p.done() == 2
    assert out.getvalue() == "backup: 2.0 KiB, 2 files, 1.0 KiB/s\n"


def test_humane_units():
    assert human_bytes(512) == "512 B"
    assert human_bytes(3 * 2**30) == "3.0 GiB"
    assert human_duration(3725) == "1:02:05"
