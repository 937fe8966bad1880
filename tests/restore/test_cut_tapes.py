"""A copy of a tape that stopped early (cut inside a record), on every backend: the restore keeps what lies before
the cut, says once where the archive ends and which member was the last complete one, and ends with exit 1; a
copy with nothing readable ends with exit 2.  Never a loop, never a flood of warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rescue.archive.member import FILE
from rescue.cli import main
from rescue.pathmatch import DEFAULT_EXCLUDES, PathMatcher
from tests.support import need_tool
from tests.support.cuts import (
    CUT_KINDS,
    RS,
    complete_before,
    cut_copy,
    cut_directory,
    cut_simh,
    cut_stream,
    cut_world,
)

ROOT = Path(__file__).resolve().parent.parent.parent
MAX_LINES = 15  # label, catalog note, plan, one warning, summary, journal note: far fewer than a loop prints


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_tool("tar")
    return cut_world(tmp_path_factory.mktemp("cut"))


def cut_tape(world, tmp_path, backend: str, kind: str = "data"):
    return cut_copy(world, str(tmp_path), backend.split("+")[0], kind=kind)


def run_cli(capsys, *argv: str):
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.err.splitlines()


def restored_files(target) -> set:
    out = set()
    for dirpath, _dirs, files in os.walk(target):
        for name in files:
            out.add(os.path.relpath(os.path.join(dirpath, name), target))
    return out


def check_partial_restore(world, target, kept: int, lines) -> None:
    complete = complete_before(world["members"], kept, RS)
    assert complete, "the cut must leave some members whole"
    matcher = PathMatcher([], [], DEFAULT_EXCLUDES)
    want = {m.path for m in complete if m.type == FILE and matcher.selected(m.path)}
    got = restored_files(target) - {".rescue-restore.journal"}
    assert got == want  # everything before the cut, nothing half-written after it
    for path in want:
        with open(os.path.join(world["tree"], path), "rb") as a, open(os.path.join(target, path), "rb") as b:
            assert a.read() == b.read(), path
    ends = [line for line in lines if "archive truncated" in line]
    assert len(ends) == 1, lines
    assert f"last complete member: '{complete[-1].path}'" in ends[0]
    warnings = [line for line in lines if line.startswith("rescue: warning:")]
    assert len(warnings) <= 2 and len(lines) <= MAX_LINES, lines


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", ["simh", "simh+catalog", "dir", "stream"])
def test_a_cut_copy_restores_everything_before_the_cut_and_exits_1(world, tmp_path, capsys, backend):
    device, kept = cut_tape(world, tmp_path, backend)
    target = tmp_path / "t"
    target.mkdir()
    # +catalog: the catalog kept from the backup drives the restore (the planned pass), else the streaming pass
    catalog = ["--catalog", world["catalog"]] if backend.endswith("+catalog") else []
    rc, lines = run_cli(capsys, "-f", device, "restore", "-C", str(target), "--yes", *catalog)
    assert rc == 1, lines
    check_partial_restore(world, target, kept, lines)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", CUT_KINDS)
def test_a_tap_image_cut_anywhere_in_a_record_ends_with_one_message(world, tmp_path, capsys, kind):
    device, kept = cut_tape(world, tmp_path, "simh", kind=kind)
    target = tmp_path / "t"
    target.mkdir()
    rc, lines = run_cli(capsys, "-f", device, "restore", "-C", str(target), "--yes")
    assert rc == 1, lines
    check_partial_restore(world, target, kept, lines)


def test_a_stream_that_ends_mid_record_on_a_pipe_restores_what_came(world, tmp_path):
    device, kept = cut_tape(world, tmp_path, "stream")
    target = tmp_path / "t"
    target.mkdir()
    with open(device, "rb") as f:
        data = f.read()
    p = subprocess.run(
        [sys.executable, "-m", "rescue", "-f", "-", "restore", "-C", str(target), "--yes"],
        input=data,
        capture_output=True,
        timeout=60,
        cwd=ROOT,
    )
    lines = p.stderr.decode().splitlines()
    assert p.returncode == 1, lines
    check_partial_restore(world, target, kept, lines)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", ["simh", "dir", "stream"])
def test_a_copy_cut_in_the_first_header_reads_nothing_and_exits_2(world, tmp_path, capsys, backend):
    if backend == "simh":
        device, _ = cut_simh(world["tap"], str(tmp_path / "cut.tap"), 0, "length")
    elif backend == "dir":
        device, _ = cut_directory(world["tap"], str(tmp_path / "vol"), 100)
    else:
        device, _ = cut_stream(world["tap"], str(tmp_path / "cut.tar"), 100)
    target = tmp_path / "t"
    target.mkdir()
    rc, lines = run_cli(capsys, "-f", device, "restore", "-C", str(target), "--yes")
    assert rc == 2, lines
    assert any("last complete member: none" in line for line in lines), lines
    assert restored_files(target) <= {".rescue-restore.journal"}
    assert len(lines) <= MAX_LINES, lines
