"""The command line's promises, checked the same way against the source tree (`python -m rescue`) and against
the built rescue.pyz: --version, --help, exit codes, one-line errors, and `mt` on a SIMH .tap image."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pyz import ROOT

pytestmark = pytest.mark.pyz


@pytest.fixture(params=["source", "pyz"])
def rescue(request, tmp_path):
    """A function running the CLI: rescue(*args) -> CompletedProcess (text)."""
    if request.param == "pyz":
        pyz = request.getfixturevalue("pyz")
        cmd = [sys.executable, "-I", str(pyz)]
        env = dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv"))
    else:
        cmd = [sys.executable, "-m", "rescue"]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TAPE", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*cmd, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )

    return run


def one_line_error(p: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def write_tap(path: Path, files: list[list[bytes]]) -> None:
    """A SIMH tape image: each record as <len32le> data <len32le>, a tape mark as a zero length word."""
    with path.open("wb") as f:
        for records in files:
            for rec in records:
                f.write(struct.pack("<I", len(rec)) + rec + struct.pack("<I", len(rec)))
            f.write(struct.pack("<I", 0))


def test_version_exits_0_on_stdout(rescue):
    p = rescue("--version")
    assert p.returncode == 0
    assert p.stdout.startswith("rescue ") and "(commit " in p.stdout


def test_help_lists_the_commands_and_exit_codes(rescue):
    p = rescue("--help")
    assert p.returncode == 0
    assert "Exit codes" in p.stdout
    for command in ("mt",):
        assert f"\n    {command} " in p.stdout


def test_no_command_is_a_usage_error_exit_2(rescue):
    p = rescue()
    assert p.returncode == 2
    assert "usage: rescue" in p.stderr


def test_missing_tape_image_is_a_one_line_error_exit_2(rescue, tmp_path):
    p = rescue("-f", str(tmp_path / "nowhere" / "night.tap"), "mt", "status")
    assert p.returncode == 2
    assert str(tmp_path / "nowhere" / "night.tap") in one_line_error(p)


def test_mt_spaces_files_on_a_tap_image(rescue, tmp_path):
    tap = tmp_path / "night.tap"
    write_tap(tap, [[b"L" * 512], [b"A" * 1024, b"B" * 1024], [b"C" * 512]])
    assert rescue("-f", str(tap), "mt", "fsf", "1").returncode == 0
    p = rescue("-f", str(tap), "mt", "status")
    assert p.returncode == 0
    assert "File number=1, block number=0" in p.stdout
    assert rescue("-f", str(tap), "mt", "fsr", "1").returncode == 0
    p = rescue("-f", str(tap), "mt", "tell")
    assert p.returncode == 0 and p.stdout.strip() == "At block 3."


def test_mt_spacing_past_the_data_is_a_one_line_error_exit_2(rescue, tmp_path):
    tap = tmp_path / "night.tap"
    write_tap(tap, [[b"L" * 512]])
    p = rescue("-f", str(tap), "mt", "fsf", "5")
    assert p.returncode == 2
    assert str(tap) in one_line_error(p)
