"""The recovery drill end to end (drill/run.py): each step of one drill run is one test here.

The drill boots QEMU guests with the patched tgt tape (minutes under TCG); it runs once for this module, and each
test asserts one step's PASS with the step's own summary as the failure message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drill import qemu as vm
from drill.run import STEPS
from tests.support import need, need_tool

pytestmark = [pytest.mark.drill, pytest.mark.vm]
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def drill_report(tmp_path_factory):
    need(os.geteuid() == 0, "the drill builds tgt and makes device nodes and owners as root")
    need_tool(vm.QEMU, "mkfs.ext4", "gcc", "make", "patch")
    workdir = tmp_path_factory.mktemp("drill")
    log = workdir / "drill.log"
    with open(log, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "drill", "--workdir", str(workdir)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1800,
        )
    report = workdir / "report.json"
    assert report.exists(), f"the drill wrote no report (exit {proc.returncode}):\n{log.read_text()[-3000:]}"
    data = json.loads(report.read_text())
    data["exit"] = proc.returncode
    data["log"] = log.read_text()
    return data


@pytest.mark.timeout(2400)
@pytest.mark.parametrize("step", STEPS)
def test_drill_step_passes(drill_report, step):
    steps = {s["name"]: s for s in drill_report["steps"]}
    assert step in steps, f"step {step} did not run:\n{drill_report['log'][-2000:]}"
    s = steps[step]
    failures = "\n".join(s["details"].get("failures") or [])
    assert s["ok"], f"{step}: {s['summary']}\n{failures}"


def test_drill_report_has_times_and_throughput(drill_report):
    for s in drill_report["steps"]:
        assert s["seconds"] > 0 and all(g["boot_seconds"] > 0 for g in s["guests"])
    rates = drill_report["rates_mib_s"]
    assert rates.get("dd_write", 0) > 0 and rates.get("dd_read", 0) > 0
