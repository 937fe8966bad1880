"""Which drill steps a test session runs: all of drill.run.STEPS, or the comma-separated `RESCUE_DRILL_STEPS`
(.ci/run names all but the md and nvme boot scenarios, for CI's time). A test of a step not selected is skipped, naming it."""

from __future__ import annotations

import os

import pytest

from drill.run import STEPS


def selected_steps() -> list:
    chosen = [s.strip() for s in os.environ.get("RESCUE_DRILL_STEPS", "").split(",") if s.strip()]
    return chosen or list(STEPS)


def need_step(name: str) -> None:
    if name not in selected_steps():
        pytest.skip(
            f"drill step {name} not selected (RESCUE_DRILL_STEPS={os.environ.get('RESCUE_DRILL_STEPS')})"
        )
