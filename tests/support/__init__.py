"""Helpers shared by the tests."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI") == "true"


def need_tool(*names: str) -> None:
    """Skip the test when a system tool is missing; under CI=true a missing tool is a failure."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        message = f"missing system tool(s): {', '.join(missing)}"
        if IN_CI:
            pytest.fail(message + " (CI=true: install it in build/system-deps.sh)")
        pytest.skip(message)


def need(condition: bool, message: str) -> None:
    """Like need_tool, for other preconditions (root, a device, KVM ...)."""
    if not condition:
        if IN_CI:
            pytest.fail(message + " (CI=true)")
        pytest.skip(message)
