"""The recovery drill end to end (drill/run.py): each step of one drill run is one test here.

The drill boots QEMU guests with the patched tgt tape (minutes under TCG); it runs once per session (the
drill_report fixture, tests/drill/conftest.py), and each test asserts one step's PASS with the step's own summary
as the failure message.
"""

from __future__ import annotations

import pytest

from drill.run import STEPS
from tests.support.drill import need_step

pytestmark = [pytest.mark.drill, pytest.mark.vm]


@pytest.mark.timeout(5400)
@pytest.mark.parametrize("step", STEPS)
def test_drill_step_passes(drill_report, step):
    need_step(step)
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
