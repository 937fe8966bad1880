"""The small rescue ISO boots by BIOS and UEFI; remastered with a changed rescue.pyz (iso.remaster) it boots
both ways again and runs the new pyz from the medium - for an ISO made by grub-mkrescue and for one made with
xorriso's own El Torito options - and the remastered images boot from a USB stick (isohybrid MBR/GPT)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.images import ROOT, boot_and_read_version, pyz_version

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def remastered(build_dir, changed_pyz, iso_grub_mkrescue, iso_xorriso):
    """Both ISOs remastered with the changed pyz: {"grub-mkrescue": path, "xorriso": path}."""
    out = {}
    for method, src in (("grub-mkrescue", iso_grub_mkrescue), ("xorriso", iso_xorriso)):
        dest = build_dir / f"remastered-{method}.iso"
        p = subprocess.run(
            [sys.executable, "-m", "iso.remaster", str(src), str(dest), "--pyz", str(changed_pyz)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert p.returncode == 0, p.stderr
        out[method] = dest
    return out


@pytest.mark.parametrize("how", ["bios", "uefi"])
def test_small_image_boots_and_runs_the_pyz_from_the_medium(iso_grub_mkrescue, pyz, tmp_path, how):
    version, where, efivars = boot_and_read_version(iso_grub_mkrescue, how, tmp_path, "grub-mkrescue image")
    assert version == pyz_version(pyz)
    assert where == "/cdrom/rescue/rescue.pyz"
    # /init mounts the firmware's variables on UEFI boots (grub-install and efibootmgr need them)
    assert efivars == ("efivarfs" if how == "uefi" else "")


@pytest.mark.parametrize("method", ["grub-mkrescue", "xorriso"])
@pytest.mark.parametrize("how", ["bios", "uefi"])
def test_remastered_image_boots_and_runs_the_changed_pyz(remastered, changed_pyz, pyz, tmp_path, method, how):
    version, where, _ = boot_and_read_version(remastered[method], how, tmp_path, f"remastered {method} image")
    assert version == pyz_version(changed_pyz) != pyz_version(pyz)
    assert where == "/cdrom/rescue/rescue.pyz"


@pytest.mark.parametrize("method,how", [("grub-mkrescue", "usb-bios"), ("xorriso", "usb-uefi")])
def test_remastered_image_boots_from_a_usb_stick(remastered, changed_pyz, tmp_path, method, how):
    version, *_ = boot_and_read_version(remastered[method], how, tmp_path, f"remastered {method} image")
    assert version == pyz_version(changed_pyz)
