"""Fixtures for the rescue image tests: the pyz, the kernel + initrd, the two ISOs (built once per test run), and
booting a guest to the rescue shell.

Builds go to a temporary directory of the test run; iso.mkinitramfs keeps its package cache in build/out/ so a second
run downloads nothing. Boot times to the shell are appended to build/out/boot-times.txt (and printed).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support.images import build_image, build_pyz, mkimage


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("iso-build")


@pytest.fixture(scope="session")
def pyz(build_dir) -> Path:
    return build_pyz(build_dir / "rescue.pyz")


@pytest.fixture(scope="session")
def changed_pyz(build_dir) -> Path:
    """A pyz that differs from `pyz` (another recorded commit), to prove a remastered ISO runs the new one."""
    return build_pyz(build_dir / "changed" / "rescue.pyz", commit=f"remaster-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def image(build_dir, pyz) -> Path:
    return build_image(build_dir / "image", pyz)


@pytest.fixture(scope="session")
def iso_grub_mkrescue(build_dir, image, pyz) -> Path:
    return mkimage(build_dir, image, pyz, "grub-mkrescue")


@pytest.fixture(scope="session")
def iso_xorriso(build_dir, image, pyz) -> Path:
    return mkimage(build_dir, image, pyz, "xorriso")
