"""The drill boots what it restored (drill/bootdrill.py): scenario 1 (bios: SeaBIOS, MBR, ext4 + swap) and
scenario 2 (uefi: OVMF, GPT, ESP, /boot, LVM root + swap).

The drill tests read the session's one drill run (conftest.drill_report): the installed production system boots
to its health marker, `rescue recover` in the rescue image brings the wiped disk back, the restored disk boots by
itself with no failed unit and the MariaDB rows back, and every stage (and each of recover's) is timed. The health-line checks themselves are tested without a guest.
"""

from __future__ import annotations

import pytest

from drill.bootdrill import LAYOUTS, health_problems, recover_seconds
from tests.support.drill import need_step

SCENARIOS = {"bios": "bios-mbr", "uefi": "uefi-lvm"}
ROWS = [["1", "before the disaster"], ["2", "drill-1"]]


def healthy(layout: str) -> dict:
    mounts = [["/dev/vda1", "/", "ext4"]]
    root = "/dev/vda1"
    if layout == "uefi-lvm":
        root = "/dev/mapper/vg0-root"
        mounts = [[root, "/", "ext4"], ["/dev/vda2", "/boot", "ext4"], ["/dev/vda1", "/boot/efi", "vfat"]]
    return {
        "firmware": LAYOUTS[layout].firmware,
        "root": root,
        "mounts": mounts,
        "swaps": ["/dev/vda2"],
        "failed": [],
        "rows": ROWS,
        "db_error": "",
    }


def step(report: dict, name: str) -> dict:
    need_step(name)
    steps = {s["name"]: s for s in report["steps"]}
    assert name in steps, f"step {name} did not run:\n{report['log'][-2000:]}"
    return steps[name]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_healthy_line_has_no_problems(layout):
    assert health_problems(healthy(layout), layout, ROWS) == []


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"failed": ["mdmonitor.service"]}, "failed units: mdmonitor.service"),
        ({"firmware": "bios"}, "firmware bios, expected uefi"),
        ({"root": "/dev/vda3"}, "expected the LVM volume"),
        ({"swaps": []}, "no swap active"),
        ({"rows": None, "db_error": "Unknown database 'drill'"}, "Unknown database 'drill'"),
        ({"mounts": [["/dev/mapper/vg0-root", "/", "ext4"]]}, "expected ['/', '/boot', '/boot/efi']"),
    ],
)
def test_a_sick_line_names_what_is_wrong(change, problem):
    health = {**healthy("uefi-lvm"), **change}
    assert any(problem in p for p in health_problems(health, "uefi-lvm", ROWS))


def test_the_recover_stages_are_read_from_its_json_in_stage_order():
    summary = {
        "exit_code": 0,
        "stages": {
            "restore": {"done": True, "seconds": 130.7},
            "layout": {"done": True, "seconds": 4.4},
            "bootloader": {"done": False, "seconds": 2.0, "error": "grub-install: exit 1"},
        },
    }
    got = recover_seconds(summary)
    assert got == {"layout": 4.4, "restore": 130.7, "bootloader": 2.0}
    assert list(got) == ["layout", "restore", "bootloader"]
    assert recover_seconds({}) == {}


def test_no_marker_is_a_problem():
    assert health_problems(None, "bios-mbr") == ["no health marker"]


@pytest.mark.drill
@pytest.mark.vm
@pytest.mark.timeout(5400)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_installed_production_system_boots_to_its_marker(drill_report, name):
    s = step(drill_report, name)
    assert health_problems(s["details"].get("prod_health"), SCENARIOS[name]) == [], s["summary"]


@pytest.mark.drill
@pytest.mark.vm
@pytest.mark.timeout(5400)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_restored_disk_boots_by_itself_with_the_rows_back(drill_report, name):
    s = step(drill_report, name)
    rows = s["details"].get("rows")
    assert rows and health_problems(s["details"].get("restored_health"), SCENARIOS[name], rows) == [], s[
        "summary"
    ]


@pytest.mark.drill
@pytest.mark.vm
@pytest.mark.timeout(5400)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_stage_of_a_scenario_is_timed(drill_report, name):
    seconds = step(drill_report, name)["details"].get("seconds", {})
    for stage in ("install", "prod_boot", "backup", "recover", "restored_boot"):
        assert seconds.get(stage, 0) > 0, f"{name}: stage {stage} not timed: {seconds}"


@pytest.mark.drill
@pytest.mark.vm
@pytest.mark.timeout(5400)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_rescue_recover_times_each_of_its_stages(drill_report, name):
    stages = step(drill_report, name)["details"].get("recover", {})
    assert list(stages) == ["layout", "restore", "bootloader", "finalize"], stages
    assert all(stages[s] > 0 for s in ("layout", "restore", "bootloader")), stages
