"""Fixture of the tests of the built rescue.pyz: `pyz`, built once per test run by build/pyz.py into a temporary
directory. The builders and the list of Pythons to try are in tests/support/pyz.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.pyz import build_pyz


@pytest.fixture(scope="session")
def pyz(tmp_path_factory) -> Path:
    return build_pyz(tmp_path_factory.mktemp("pyz") / "rescue.pyz")
