"""Fixtures of the archive tests; the builders they use live in tests/support/archive.py."""

from __future__ import annotations

import pytest

from tests.support.archive import MemoryTape


@pytest.fixture
def memory_tape():
    return MemoryTape()
