"""Fixtures of the layout tests: the rescue image for the guest tests (md, LVM, LUKS need its kernel). The loop
devices (`loops`) are tests/conftest.py's, shared with the recover tests."""

from __future__ import annotations

import pytest

from tests.support.images import build_image, build_pyz


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    """The rescue image (kernel + initrd) with this tree's rescue.pyz, built once per test run."""
    build = tmp_path_factory.mktemp("layout-image")
    return build_image(build / "image", build_pyz(build / "rescue.pyz"))
