"""Fixtures of the recover tests: the loop devices of the layout tests (always detached)."""

from tests.layout.conftest import loops  # noqa: F401
