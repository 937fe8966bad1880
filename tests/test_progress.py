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


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_terminal_lines_fit_the_width_dropping_rate_then_count_first():
    clock = Clock()
    for width in (80, 60, 40, 20):
        out = Terminal()
        p = Progress("verify", 100 * 2**30, 1_000_000, stream=out, clock=clock, unit="members", width=width)
        clock.now += 10
        p.update(3 * 2**30, 12345)
        clock.now += 1
        p.update(0, 0)
        line = out.getvalue().split("\r\x1b[K")[-1]
        assert 0 < len(line) < width, (width, line)
    wide = Progress("verify", 100 * 2**30, 1_000_000, stream=Terminal(), clock=clock, unit="members")
    wide.update(2**30, 10)
    full = wide.line(width=200)
    assert "members" in full and "/s" in full and "ETA" in full
    narrow = wide.line(width=len(full) - 5)
    assert "/s" not in narrow and "ETA" in narrow and "members" in narrow


def test_the_unit_names_what_is_counted():
    out, clock = io.StringIO(), Clock()
    p = Progress("backup", total_files=5, stream=out, clock=clock, unit="members")
    p.update(1024, 2)
    clock.now = 1
    p.done()
    assert out.getvalue() == "backup: 1.0 KiB, 2/5 members, 1.0 KiB/s\n"
