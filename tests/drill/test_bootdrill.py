"""The drill boots what it restored (drill/bootdrill.py): scenario 1 (bios: SeaBIOS, MBR, ext4 + swap),
scenario 2 (uefi: OVMF, GPT, ESP, /boot, LVM root + swap), scenario 3 (md: SeaBIOS, two disks, md RAID1, LVM;
also booted with one disk removed) and scenario 4 (nvme: scenario 2 recovered onto a bigger NVMe disk).

The drill tests read the session's one drill run (conftest.drill_report): the installed production system boots
to its health marker, `rescue recover` in the rescue image brings the wiped disks back, the restored disks boot
by themselves with no failed unit and the MariaDB rows back (the md system also from one disk, the NVMe system
from its new disk), and every stage (and each of recover's) is timed. The health-line checks themselves are
tested without a guest.
"""

from __future__ import annotations

import pytest

from drill.bootdrill import recover_seconds, reloaded_now
from drill.guestrun import Disk
from drill.layouts import LAYOUTS, health_problems, md_problems
from tests.support.drill import need_step

SCENARIOS = {"bios": "bios-mbr", "uefi": "uefi-lvm", "md": "bios-md", "nvme": "uefi-lvm"}
ROWS = [["1", "before the disaster"], ["2", "drill-1"]]


def healthy(layout: str) -> dict:
    mounts = [["/dev/vda1", "/", "ext4"]]
    root = "/dev/vda1"
    if layout == "uefi-lvm":
        root = "/dev/mapper/vg0-root"
        mounts = [[root, "/", "ext4"], ["/dev/vda2", "/boot", "ext4"], ["/dev/vda1", "/boot/efi", "vfat"]]
    if layout == "bios-md":
        root = "/dev/mapper/vg0-root"
        mounts = [[root, "/", "ext4"]]
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


def test_the_nvme_scenario_wants_its_partitions_on_the_nvme_disk():
    health = healthy("uefi-lvm")
    assert any(
        "expected /dev/nvme0n1" in p for p in health_problems(health, "uefi-lvm", ROWS, disk="nvme0n1")
    )
    health["mounts"] = [[d.replace("/dev/vda", "/dev/nvme0n1p"), w, t] for d, w, t in health["mounts"]]
    assert health_problems(health, "uefi-lvm", ROWS, disk="nvme0n1") == []


def test_the_md_root_must_be_the_lvm_volume():
    health = {**healthy("bios-md"), "root": "/dev/md127"}
    assert any("expected the LVM volume" in p for p in health_problems(health, "bios-md", ROWS))


def test_the_degraded_md_system_may_have_no_failed_unit_either():
    health = {**healthy("bios-md"), "failed": ["mdadm-last-resort@md127.service"]}
    assert health_problems(health, "bios-md", ROWS) == ["failed units: mdadm-last-resort@md127.service"]


@pytest.mark.parametrize(
    "state, members, wrong",
    [
        ("md127 clean 0 2 2 idle\n", 2, False),
        ("md127 active 0 2 2 idle\n", 2, False),
        ("md127 clean 1 2 1 idle\n", 1, False),
        ("md127 clean 1 2 1 idle\n", 2, True),  # degraded with both disks attached
        ("md127 clean 0 2 2 resync\n", 2, True),
        ("md127 inactive 0 2 0 idle\n", 2, True),
        ("md127 clean 0 2\n", 2, True),
        ("", 2, True),
        (None, 1, True),
    ],
)
def test_md_state_lines(state, members, wrong):
    assert bool(md_problems(state, members)) == wrong


def test_an_nvme_disk_is_an_nvme_controller_with_its_serial():
    disk = Disk("d.img", serial="nvme1", bus="nvme")
    assert disk.qemu_args(3)[-1] == "nvme,drive=disk3,serial=nvme1"
    assert disk.by_id == "/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_nvme1"
    assert Disk("d.img", serial="prod0").qemu_args(0)[-1] == "virtio-blk-pci,drive=disk0,serial=prod0"
    with pytest.raises(ValueError):
        Disk("d.img", bus="ide").qemu_args(0)


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


def test_the_dumps_reloaded_now_are_read_from_recovers_stderr(tmp_path):
    err = tmp_path / "recover.err"
    err.write_text(
        "finalize: log copied to /var/log/rescue/recover.log\n"
        "finalize: reloaded /var/lib/rescue/dumps/mariadb.sql into the target's MariaDB (2.1 s)\n"
    )
    assert reloaded_now(err) == [
        "finalize: reloaded /var/lib/rescue/dumps/mariadb.sql into the target's MariaDB (2.1 s)"
    ]
    assert reloaded_now(tmp_path / "missing") == []


@pytest.mark.drill
@pytest.mark.vm
@pytest.mark.timeout(5400)
def test_the_bios_system_got_its_rows_back_by_a_reload_in_the_rescue_system(drill_report):
    """Scenario 1 recovers with --reload-db-now: the dump was loaded before the first boot, no unit did it."""
    s = step(drill_report, "bios")
    d = s["details"]
    assert d.get("reload") == "--reload-db-now"
    assert [line.split()[2] for line in d.get("reloaded_now", [])] == ["/var/lib/rescue/dumps/mariadb.sql"], (
        s["summary"]
    )


@pytest.mark.drill
@pytest.mark.vm
@pytest.mark.timeout(5400)
def test_the_md_system_boots_with_both_disks_clean_and_with_one_disk_removed(drill_report):
    s = step(drill_report, "md")
    d = s["details"]
    assert md_problems(d.get("restored_md"), 2) == [], s["summary"]
    assert md_problems(d.get("degraded_md"), 1) == [], s["summary"]
    problems = health_problems(d.get("degraded_health"), "bios-md", d.get("rows"))
    assert d.get("rows") and problems == [], s["summary"]


@pytest.mark.drill
@pytest.mark.vm
@pytest.mark.timeout(5400)
def test_the_system_recovered_onto_nvme_boots_from_it(drill_report):
    s = step(drill_report, "nvme")
    d = s["details"]
    assert (
        d.get("rows") and health_problems(d.get("restored_health"), "uefi-lvm", d["rows"], "nvme0n1") == []
    ), s["summary"]
