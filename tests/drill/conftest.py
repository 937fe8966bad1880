"""Fixtures of the drill tests: one drill run (python -m drill) per test session.

It runs every step, or the comma-separated `RESCUE_DRILL_STEPS` (.ci/run names every step, both boot scenarios
included). A test of a step that was not selected is skipped, naming it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drill import qemu as vm
from tests.support import need, need_tool
from tests.support.drill import selected_steps

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="session")
def drill_report(tmp_path_factory):
    """The drill's report.json (plus its exit code and log); the drill runs once for all drill tests."""
    need(os.geteuid() == 0, "the drill builds tgt and makes device nodes and owners as root")
    need_tool(vm.QEMU, "mkfs.ext4", "gcc", "make", "patch", "mmdebstrap")
    workdir = tmp_path_factory.mktemp("drill")
    log = workdir / "drill.log"
    with open(log, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "drill", "--workdir", str(workdir), "--steps", ",".join(selected_steps())],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=4800,
        )
    report = workdir / "report.json"
    assert report.exists(), f"the drill wrote no report (exit {proc.returncode}):\n{log.read_text()[-3000:]}"
    data = json.loads(report.read_text())
    data["exit"] = proc.returncode
    data["log"] = log.read_text()
    return data
