"""The drill's production layouts and what a healthy boot of each looks like (used by drill/bootdrill.py).

- `LAYOUTS`: name -> Layout (firmware, disks as `DiskSpec`: serial, size, bus virtio or nvme); drill/guest/prodsys.sh
  makes each. `NVME_TARGET` and `NVME_MAPS`: scenario 4's new disk and its `--map`.
- `health_problems(health, layout, rows=None, disk=None)`: what is wrong with a system's health line
  (drill/prodroot/rescue-health), empty when healthy.
- `MD_JOB` (a job for a boot of the md layout: each array's state from sysfs into md.state) and
  `md_problems(text, members)`: what is wrong with that state when `members` of the two disks are attached.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional


@dataclasses.dataclass
class DiskSpec:
    serial: str  # the guest finds the disk by it: /dev/disk/by-id/virtio-SERIAL (nvme-QEMU_NVMe_Ctrl_SERIAL)
    mb: int
    bus: str = "virtio"  # or "nvme"


@dataclasses.dataclass
class Layout:
    name: str
    firmware: str  # "bios" or "uefi"
    disks: List[DiskSpec]


LAYOUTS = {
    "bios-mbr": Layout("bios-mbr", "bios", [DiskSpec("prod0", 3072)]),
    "uefi-lvm": Layout("uefi-lvm", "uefi", [DiskSpec("prod0", 3584)]),
    "bios-md": Layout("bios-md", "bios", [DiskSpec("prod0", 3072), DiskSpec("prod1", 3072)]),
}
# Scenario 4: scenario 2's system recovered onto one NVMe disk, 1 GiB bigger, with another serial; the
# production disk was /dev/vda when it was captured (its only virtio disk).
NVME_TARGET = [DiskSpec("nvme1", 3584 + 1024, "nvme")]
NVME_MAPS = {"/dev/vda": "/dev/nvme0n1"}


def health_problems(
    health: Optional[dict],
    layout_name: str,
    rows: Optional[list] = None,
    disk: Optional[str] = None,
) -> List[str]:
    """What is wrong with a health line for this layout (empty: healthy). `disk`: the kernel name of the disk
    the partitions mounted must be on (nvme0n1). No unit may fail, also when the md layout boots with a disk
    missing: Debian's initramfs starts the array degraded itself (scripts/local-block/mdadm runs `mdadm --run`
    after two thirds of its wait for the root), so mdadm-last-resort has nothing left to do, and mdmonitor
    reports the missing member without failing."""
    if health is None:
        return ["no health marker"]
    layout = LAYOUTS[layout_name]
    problems = []
    if health.get("firmware") != layout.firmware:
        problems.append(f"firmware {health.get('firmware')}, expected {layout.firmware}")
    if health.get("failed"):
        problems.append("failed units: " + " ".join(health["failed"]))
    mounts = {where for _, where, _ in health.get("mounts", [])}
    want = {"/", "/boot", "/boot/efi"} if layout.name == "uefi-lvm" else {"/"}
    if not want <= mounts:
        problems.append(f"mounts {sorted(mounts)}, expected {sorted(want)}")
    if not health.get("swaps"):
        problems.append("no swap active")
    if layout.name != "bios-mbr" and "mapper" not in health.get("root", ""):
        problems.append(f"root on {health.get('root')}, expected the LVM volume")
    if disk is not None:
        parts = [
            dev for dev, _, _ in health.get("mounts", []) if not dev.startswith(("/dev/mapper/", "/dev/md"))
        ]
        elsewhere = [dev for dev in parts if not dev.startswith(f"/dev/{disk}")]
        if elsewhere or not parts and layout.name == "uefi-lvm":
            problems.append(
                f"partitions mounted from {', '.join(elsewhere) or 'nothing'}, expected /dev/{disk}"
            )
    if rows is not None and health.get("rows") != rows:
        problems.append(f"MariaDB rows {health.get('rows')} ({health.get('db_error')}), expected {rows}")
    return problems


# A job for a boot of the md layout: each array's state from sysfs, one line each, into the share's md.state:
# NAME ARRAY_STATE DEGRADED RAID_DISKS IN_SYNC_MEMBERS SYNC_ACTION
MD_JOB = """\
for md in /sys/block/md*/md; do
  [ -d "$md" ] || continue
  n=0
  for m in "$md"/dev-*/state; do grep -q in_sync "$m" && n=$((n + 1)); done
  echo "$(basename "$(dirname "$md")") $(cat "$md/array_state") $(cat "$md/degraded") $(cat "$md/raid_disks") \
$n $(cat "$md/sync_action")"
done > md.state
"""


def md_problems(text: Optional[str], members: int) -> List[str]:
    """What is wrong with MD_JOB's md.state for one RAID1 of two disks of which `members` are attached: the array
    runs (clean or active: active only means a write is in flight), `members` members in sync, degraded by
    exactly the missing ones, no resync or recovery running."""
    lines = [line.split() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return ["no md array running"]
    problems = []
    for fields in lines:
        if len(fields) != 6:
            problems.append(f"md state line {' '.join(fields)!r} unreadable")
            continue
        name, state, degraded, disks, in_sync, action = fields
        if (state, disks, in_sync, degraded, action) not in (
            (ok, "2", str(members), str(2 - members), "idle") for ok in ("clean", "active")
        ):
            problems.append(
                f"{name}: {state}, {in_sync} of {disks} members in sync, degraded {degraded}, {action}; "
                f"expected clean with {members} of 2 in sync"
            )
    return problems
