"""`verify --no-catalog` and `catalog rebuild` on a copy of a set that stopped early (cut inside a record), on
every backend: both read what lies before the cut, say once where the archive ends and which member was the last
complete one, and exit 1 (2 when nothing could be read).  A rebuild killed midway leaves no file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rescue.cli import main
from rescue.tapeset.catalog import open_catalog
from tests.support import need_tool
from tests.support.cuts import RS, complete_before, cut_copy, cut_world
from tests.support.tapes import split_tape

ROOT = Path(__file__).resolve().parent.parent.parent
MAX_LINES = 12


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_tool("tar")
    return cut_world(tmp_path_factory.mktemp("cut"))


def run_cli(capsys, *argv: str):
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out.splitlines(), captured.err.splitlines()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", ["simh", "dir", "stream"])
def test_verify_of_a_cut_copy_reads_to_the_cut_and_reports_it_once(world, tmp_path, capsys, backend):
    device, kept = cut_copy(world, str(tmp_path), backend)
    complete = complete_before(world["members"], kept, RS)
    rc, out, err = run_cli(capsys, "-f", device, "verify", "--no-catalog")
    assert rc == 1, err
    (difference,) = out  # the one difference: where the archive ends
    assert "archive truncated" in difference and f"last complete member: '{complete[-1].path}'" in difference
    assert any(line.startswith(f"verified {len(complete)} members") for line in err), err
    assert len(err) <= MAX_LINES, err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", ["simh", "dir", "stream"])
def test_rebuild_of_a_cut_copy_catalogs_the_members_before_the_cut(world, tmp_path, capsys, backend):
    device, kept = cut_copy(world, str(tmp_path), backend)
    complete = complete_before(world["members"], kept, RS)
    outdir = tmp_path / "out"
    outdir.mkdir()
    rc, _out, err = run_cli(capsys, "-f", device, "catalog", "rebuild", "-o", str(outdir / "c.jsonl.gz"))
    assert rc == 1, err
    header, members = open_catalog(str(outdir / "c.jsonl.gz"))
    size = header["record_size"]  # what the backend returned: dir and stream cut files into their own records
    got = [(m.path, m.record * size + m.offset) for m in members]
    assert got == [(m.path, m.record * RS + m.offset) for m in complete]
    warnings = [line for line in err if line.startswith("rescue: warning:")]
    assert len(warnings) == 1 and f"last complete member: '{complete[-1].path}'" in warnings[0], err
    assert len(err) <= MAX_LINES, err
    assert os.listdir(outdir) == ["c.jsonl.gz"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", [["verify", "--no-catalog"], ["catalog", "rebuild", "-o", "c.jsonl.gz"]])
def test_a_copy_cut_in_the_first_header_reads_nothing_and_exits_2(
    world, tmp_path, capsys, command, monkeypatch
):
    device, _ = cut_copy(world, str(tmp_path), "simh", record=0, kind="length")
    monkeypatch.chdir(tmp_path)
    rc, _out, err = run_cli(capsys, "-f", device, *command)
    assert rc == 2, err
    assert any("last complete member: none" in line for line in err), err
    assert not os.path.exists(tmp_path / "c.jsonl.gz")
    assert [n for n in os.listdir(tmp_path) if n.startswith(".catalog")] == []


def _files_open_in(pid: int, directory: str) -> list:
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(directory + "/"):
            out.append(target)
    return out


@pytest.mark.timeout(60)
def test_a_rebuild_killed_midway_leaves_no_temporary_file(world, tmp_path):
    archive = split_tape(world["tap"], str(tmp_path))[1]
    with open(archive, "rb") as f:
        half = f.read(RS * 30)
    outdir = str(tmp_path / "out")
    os.mkdir(outdir)
    p = subprocess.Popen(
        [sys.executable, "-m", "rescue", "-f", "-", "catalog", "rebuild", "-o", f"{outdir}/c.jsonl.gz"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        p.stdin.write(half)
        p.stdin.flush()
        deadline = time.monotonic() + 30
        while not _files_open_in(p.pid, outdir):  # midway: scanning, its scratch file open, waiting for more
            assert p.poll() is None and time.monotonic() < deadline, "the rebuild never started its scan"
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        p.stdin.close()
    assert os.listdir(outdir) == []
