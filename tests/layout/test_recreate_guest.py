"""md RAID1 + LVM, LUKS2 + LVM, GPT + ESP + /boot + LVM root: captured, refused while active, wiped, recreated
and captured again inside a rescue-image guest (the host kernel has neither md nor device-mapper).

One guest boot runs tests/layout/data/guest-stacks.sh on four virtual disks; the host compares the captures with
`model.identity` (partition tables, md, LUKS, PV/VG/LV UUIDs and sizes, filesystems and their parameters).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drill import guestrun
from drill import qemu as vm
from rescue.layout import model
from tests.support import need_tool
from tests.support.images import sparse_disks

pytestmark = pytest.mark.vm
SCRIPT = Path(__file__).resolve().parent / "data" / "guest-stacks.sh"
DISKS = {"vda": 256, "vdb": 256, "vdc": 256, "vdd": 512}  # MiB


@pytest.fixture(scope="module")
def rounds(image, tmp_path_factory):
    need_tool(vm.QEMU)
    work = tmp_path_factory.mktemp("layout-guest")
    disks = sparse_disks(work, [mib << 20 for mib in DISKS.values()])
    result = guestrun.run_script("stacks", SCRIPT.read_text(), work, None, disks, timeout=1500, image=image)
    assert result.status == 0, result.console[-5000:]
    return result.share


def captures(share: Path, name: str):
    before = json.loads((share / f"{name}-before.json").read_text())
    after = json.loads((share / f"{name}-after.json").read_text())
    return before, after


@pytest.mark.parametrize("name", ["md", "luks", "gpt"])
def test_the_recreated_stack_equals_the_captured_one(rounds, name):
    before, after = captures(rounds, name)
    assert model.identity(after) == model.identity(before)
    assert not before["missing"], before["missing"]


def test_md_raid1_with_lvm_keeps_the_array_and_volume_uuids(rounds):
    before, _ = captures(rounds, "md")
    (md,) = before["md"]
    assert (md["level"], md["metadata"], md["name"], md["bitmap"]) == (
        "raid1",
        "1.2",
        "rescue:root",
        "internal",
    )
    assert [m["device"] for m in md["members"]] == ["/dev/vda1", "/dev/vdb1"]
    assert sorted(lv["lv_name"] for lv in before["lvm"]["lvs"]) == ["root", "swap"]
    assert "mdvg {" in before["lvm"]["vgcfgbackup"]["mdvg"]
    assert "--assume-clean" in (rounds / "md.log").read_text()


def test_luks2_is_recreated_with_its_uuid_and_parameters_and_no_secret_is_kept(rounds):
    before, after = captures(rounds, "luks")
    (luks,) = before["luks"]
    assert (luks["version"], luks["cipher"], luks["pbkdf"], luks["mapping"]) == (
        2,
        "aes-xts-plain64",
        "pbkdf2",
        "cryptlvm",
    )
    text = (rounds / "luks-before.json").read_text() + (rounds / "luks.log").read_text()
    assert "secret passphrase" not in text and "Salt" not in text and "Digest" not in text


def test_gpt_with_esp_boot_and_lvm_root_mounts_in_mount_point_order(rounds):
    _, after = captures(rounds, "gpt")
    assert [m["mount_point"] for m in after["mounts"]] == ["/", "/boot", "/boot/efi"]
    assert [e["mount_point"] for e in after["boot"]["esp"]] == ["/boot/efi"]


@pytest.mark.parametrize("name", ["md", "luks", "gpt"])
def test_an_active_stack_is_refused_before_anything_is_touched(rounds, name):
    refused = (rounds / f"{name}-refused.txt").read_text()
    assert "refused, nothing was touched" in refused and "in use by" in refused
