"""The drill boots what it restored: the production system on a disk layout, booted by its firmware to its marker.

The production system is a Debian tree (drill/build-prodroot.sh, cached in build/out/prodroot/). Its disks are
first made in the installer guest: that same tree booted straight from its kernel with
init=/sbin/drill-installer-init (udev, lvm2, mdadm, grub: it builds the machine the drill later destroys).
The recovery is the product's: the rescue image boots with the wiped disk and the tape and runs `rescue recover`,
which takes the layout from the tape's label. Disks are found by virtio serial, never by kernel name. The layouts
(drill/guest/prodsys.sh):

- bios-mbr: SeaBIOS, MBR, ext4 root and a swap partition (scenario 1);
- uefi-lvm: OVMF, GPT with ESP, /boot and an LVM volume group with root and swap (scenario 2).

Contract:
- `build()` -> the directory holding root.tar, installer.ext4, vmlinuz, initrd.img (builds when stale).
- `install(layout, disk, workdir, files)` lays the layout out on the raw image `disk`, extracts root.tar onto
  it, writes fstab, copies `files` ({path in the tree: host path}) in and installs grub; -> GuestResult whose
  share holds `times` (layout, fill, bootloader, done; guest uptime seconds).
- `recover(layout, disk, workdir, tape, image, variables=None)` boots the rescue `image` by the layout's firmware
  (OVMF with the NVRAM store `variables`: the same machine) with `disk` attached by the production disk's serial
  and runs `rescue -f /dev/nst0 recover --yes --reload-db --json`; -> GuestResult whose share holds
  recover.json (`recover_seconds()` reads each stage's seconds from it), recover.rc, recover.err and the logs.
- `boot(name, layout, disk, workdir, tape=None, job=None, variables=None)` boots the disk by its firmware and
  waits for the health line the system prints on its second serial port (drill/prodroot/rescue-health); with a
  `job` (shell script) the system runs it from a 9p share (drill-job.service), which powers it off afterwards.
  -> Boot.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional

from drill import qemu as vm
from drill.guestrun import PRELUDE, Disk, GuestResult, run_script
from drill.results import read_int, read_json, read_times, rescue_said
from drill.vtape import VirtualTape
from rescue.recover.state import STAGES

ROOT = Path(__file__).resolve().parent.parent
PRODROOT = ROOT / "build" / "out" / "prodroot"
GUEST = Path(__file__).resolve().parent / "guest"
SERIAL = "prod0"  # the production disk's virtio serial: /dev/disk/by-id/virtio-prod0
DISK = f"/dev/disk/by-id/virtio-{SERIAL}"
TREE = "/dev/disk/by-id/virtio-roottar"
TARGET = "/mnt/target"  # rescue recover's default target
INSTALLER_APPEND = "console=ttyS0 panic=-1 root=LABEL=drill-inst rw init=/sbin/drill-installer-init"
HEALTH = re.compile(r"RESCUE-HEALTH (\{.*\})\s*$", re.M)


@dataclasses.dataclass
class Layout:
    name: str
    firmware: str  # "bios" or "uefi"
    disk_mb: int


LAYOUTS = {
    "bios-mbr": Layout("bios-mbr", "bios", 3072),
    "uefi-lvm": Layout("uefi-lvm", "uefi", 3584),
}


@dataclasses.dataclass
class Boot:
    name: str
    health: Optional[dict]
    marker_seconds: float
    seconds: float
    exit_code: Optional[int]
    share: Optional[Path]
    why: str = ""

    @property
    def job_rc(self) -> Optional[int]:
        try:
            return int((self.share / "job.rc").read_text().split()[0]) if self.share else None
        except (OSError, ValueError, IndexError):
            return None


def build() -> Path:
    subprocess.run(["bash", str(ROOT / "drill" / "build-prodroot.sh")], check=True)
    return PRODROOT


def installer_disks(layout: Layout, disk: Path) -> List[Disk]:
    return [
        Disk(PRODROOT / "installer.ext4", serial="inst", snapshot=True),
        Disk(PRODROOT / "root.tar", serial="roottar", readonly=True),
        Disk(disk, serial=SERIAL),
    ]


def _installer(name, script, workdir, disks, files=None, timeout=900) -> GuestResult:
    files = dict(files or {})
    files["prodsys.sh"] = GUEST / "prodsys.sh"
    return run_script(
        name,
        PRELUDE + "set -e\n" + script,
        workdir,
        None,
        disks=disks,
        files=files,
        timeout=timeout,
        image=PRODROOT,
        append=INSTALLER_APPEND,
        boot_timeout=300,  # a full Debian initramfs (md's raid6 benchmark, udev) under a loaded TCG host
    )


def install(layout_name: str, disk: Path, workdir: Path, files: Dict[str, Path]) -> GuestResult:
    layout = LAYOUTS[layout_name]
    copies = "".join(
        f'mkdir -p "$(dirname /target/{dest})" && cp files/{i} /target/{dest}\n'
        for i, dest in enumerate(files)
    )
    script = f"""\
t0=$(now)
sh ./prodsys.sh layout {layout.name} {DISK}
t1=$(now)
sh ./prodsys.sh mount {layout.name} {DISK} /target
tar -C /target --numeric-owner --xattrs --xattrs-include='*' -xpf {TREE}
sh ./prodsys.sh fstab {layout.name} {DISK} /target
{copies}t2=$(now)
sh ./prodsys.sh bootloader {layout.name} {DISK} /target
t3=$(now)
cat /target/etc/fstab
grep -m1 -o 'linux[^ ]* [^ ]* root=[^ ]*' /target/boot/grub/grub.cfg || true
sh ./prodsys.sh umount /target
echo "$t0 $t1 $t2 $t3 $(now)" > times
"""
    shared = {f"files/{i}": src for i, src in enumerate(files.values())}
    return _installer(f"{layout.name}-install", script, workdir, installer_disks(layout, disk), files=shared)


RECOVER = f"""\
for i in $(seq 60); do [ -e /dev/nst0 ] && break; sleep 1; done
rescue -f /dev/nst0 recover --yes --reload-db --json > recover.json 2> recover.err
echo $? > recover.rc
cp /run/rescue/recover.log /run/rescue/layout.log . 2>/dev/null
tail -n 12 recover.err
grep -m1 -o 'linux[^ ]* [^ ]* root=[^ ]*' {TARGET}/boot/grub/grub.cfg || true
umount -R {TARGET} 2>/dev/null
lvm vgchange -q -a n 2>/dev/null
exit 0
"""


def recover(
    layout_name: str,
    disk: Path,
    workdir: Path,
    tape: VirtualTape,
    image: Path,
    variables: Optional[Path] = None,
) -> GuestResult:
    """`rescue recover` in the rescue image, by the layout's firmware (OVMF with the machine's NVRAM
    `variables`): the wiped disk attached with the production disk's serial, the layout from the tape's label."""
    layout = LAYOUTS[layout_name]
    machine = vm.uefi_args(workdir, variables) if layout.firmware == "uefi" else []
    return run_script(
        f"{layout.name}-recover",
        PRELUDE + RECOVER,
        workdir,
        tape,
        disks=[Disk(disk, serial=SERIAL)],
        timeout=2400,
        image=image,
        machine=machine,
    )


def recover_seconds(summary: dict) -> Dict[str, float]:
    """Seconds per stage from `rescue recover --json`."""
    stages = summary.get("stages") or {}
    return {name: stages[name].get("seconds", 0.0) for name in STAGES if name in stages}


def guest_times(g: GuestResult, names: List[str]) -> Dict[str, float]:
    """Seconds per stage from the `times` file a script wrote (uptimes at each stage's start and the end)."""
    try:
        t = [float(x) for x in (g.share / "times").read_text().split()]
    except (OSError, ValueError):
        return {}
    return {name: round(b - a, 1) for name, a, b in zip(names, t, t[1:])}


def boot(
    name: str,
    layout_name: str,
    disk: Path,
    workdir: Path,
    tape: Optional[VirtualTape] = None,
    job: Optional[str] = None,
    files: Optional[Dict[str, Path]] = None,
    timeout: float = 900,
    variables: Optional[Path] = None,
) -> Boot:
    layout = LAYOUTS[layout_name]
    workdir = Path(workdir)
    args = ["-smp", "2"]
    if layout.firmware == "uefi":
        args += vm.uefi_args(workdir, variables)
    health_log = workdir / f"{name}.health.log"
    health_log.unlink(missing_ok=True)
    args += ["-chardev", f"file,id=health,path={health_log}", "-serial", "chardev:health"]
    args += Disk(disk, serial=SERIAL).qemu_args(0)
    share = None
    if job is not None:
        share = workdir / name
        subprocess.run(["rm", "-rf", str(share)], check=True)
        share.mkdir(parents=True)
        (share / "run.sh").write_text(PRELUDE + job)
        for dest, src in (files or {}).items():
            subprocess.run(["cp", str(src), str(share / dest)], check=True)
        args += ["-virtfs", f"local,path={share},mount_tag=drill,security_model=none"]
    if tape is not None:
        args += tape.qemu_args()
    guest = vm.Guest(args, workdir, name=name, memory="1024M")
    health, marker, code, why = None, 0.0, None, ""
    with guest:
        deadline = guest.started_at + timeout
        while time.monotonic() < deadline and guest.proc.poll() is None:
            m = HEALTH.search(health_log.read_text(errors="replace")) if health_log.exists() else None
            if m:
                health, marker = json.loads(m.group(1)), time.monotonic() - guest.started_at
                break
            time.sleep(0.5)
        if health is None:
            why = (
                "QEMU exited" if guest.proc.poll() is not None else f"no health marker within {timeout:.0f}s"
            )
        elif job is not None:
            try:
                code = guest.wait_exit(max(deadline - time.monotonic(), 1))
            except vm.GuestTimeout:
                why = f"the job did not power the system off within {timeout:.0f}s"
    return Boot(name, health, marker, time.monotonic() - guest.started_at, code, share, why)


def health_problems(health: Optional[dict], layout_name: str, rows: Optional[list] = None) -> List[str]:
    """What is wrong with a health line for this layout (empty: healthy)."""
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
    if layout.name == "uefi-lvm" and "mapper" not in health.get("root", ""):
        problems.append(f"root on {health.get('root')}, expected the LVM volume")
    if rows is not None and health.get("rows") != rows:
        problems.append(f"MariaDB rows {health.get('rows')} ({health.get('db_error')}), expected {rows}")
    return problems


def _blank(path: Path, size_mb: int) -> Path:
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    return path


def recover_step(drill, r, layout: Layout, disk: Path, variables: Path) -> bool:
    """`rescue recover` onto the wiped disk, timed: r.details["seconds"]["recover"] in all, and per stage in
    r.details["recover"]. False (with r's summary saying why) when it failed."""
    drill.move_tape()
    t = time.monotonic()
    rec = recover(layout.name, disk, drill.workdir, drill.tape, drill.image, variables)
    r.add_guest(rec)
    r.details["seconds"]["recover"] = round(time.monotonic() - t, 1)
    summary = read_json(rec.share / "recover.json")
    r.details["recover"] = recover_seconds(summary)
    code = read_int(rec.share / "recover.rc")
    if rec.ok and code == 0:
        return True
    said = summary.get("error") or rescue_said(rec.share / "recover.err")
    r.ok = False
    r.summary = f"recover failed (guest status {rec.status}, rescue recover exit {code}): {said}"
    return False


def scenario(drill, r, layout_name: str) -> None:
    """One scenario as a drill step (`drill` is run.Drill, `r` its StepResult): install, boot, rows, backup,
    wipe, recover, boot the restored disk; r.details["seconds"] holds each stage's wall time."""
    layout = LAYOUTS[layout_name]
    build()
    pyz = ROOT / "dist" / "rescue.pyz"
    secs: Dict[str, float] = {}
    r.details["seconds"] = secs
    disk = _blank(drill.workdir / f"{layout.name}.img", layout.disk_mb)
    variables = drill.workdir / f"{layout.name}.OVMF_VARS.fd"  # the machine's NVRAM, kept across its boots
    variables.unlink(missing_ok=True)
    t = time.monotonic()
    inst = install(layout.name, disk, drill.workdir, {"usr/local/sbin/rescue": pyz})
    r.add_guest(inst)
    secs["install"] = round(time.monotonic() - t, 1)
    r.details["install"] = guest_times(inst, ["layout", "fill", "bootloader", "umount"])
    if not inst.ok:
        r.ok, r.summary = False, f"install failed (status {inst.status}); see {inst.name}.serial.log"
        return
    token = f"drill-{time.time_ns():x}"
    rows = [["1", "before the disaster"], ["2", token]]
    r.details["rows"] = rows
    drill.new_tape()
    job = f"""\
export RESCUE_PYZ=/usr/local/sbin/rescue
mariadb -e "CREATE DATABASE drill; CREATE TABLE drill.health (id INT PRIMARY KEY, note VARCHAR(80));
INSERT INTO drill.health VALUES (1, '{rows[0][1]}'), (2, '{token}');" || exit 3
for i in $(seq 60); do [ -e /dev/nst0 ] && break; sleep 1; done
t0=$(now)
rescue -f /dev/nst0 backup / --db mariadb --json > backup.json 2> backup.err
echo $? > backup.rc
t1=$(now)
echo "$t0 $t1" > times
"""
    prod = boot(
        f"{layout.name}-prod", layout.name, disk, drill.workdir, tape=drill.tape, job=job, variables=variables
    )
    secs["prod_boot"] = round(prod.marker_seconds, 1)
    secs["prod_total"] = round(prod.seconds, 1)
    first = health_problems(prod.health, layout.name)
    brc = read_int(prod.share / "backup.rc") if prod.share else None
    b0, b1 = read_times(prod.share) if prod.share else (0.0, 0.0)
    secs["backup"] = round(b1 - b0, 1)
    backup = read_json(prod.share / "backup.json") if prod.share else {}
    r.details["backup"] = {k: backup.get(k) for k in ("files", "bytes", "records", "elapsed")}
    r.details["prod_health"] = prod.health
    if first or prod.why or brc not in (0, 1):
        said = rescue_said(prod.share / "backup.err") if prod.share else ""
        r.ok = False
        r.summary = f"production system: {'; '.join(first) or prod.why or 'ok'}; backup exit {brc} {said}"
        return
    # The disaster: the disk is zeroed. The rescue image boots on the same machine (disk serial, NVRAM).
    _blank(disk, layout.disk_mb)
    if not recover_step(drill, r, layout, disk, variables):
        return
    drill.stop_tape()
    after = boot(f"{layout.name}-restored", layout.name, disk, drill.workdir, variables=variables)
    secs["restored_boot"] = round(after.marker_seconds, 1)
    r.details["restored_health"] = after.health
    problems = health_problems(after.health, layout.name, rows) + ([after.why] if after.why else [])
    r.ok = not problems
    split = ", ".join(f"{k} {v}s" for k, v in r.details["recover"].items())
    stages = ", ".join(f"{k} {v}s" + (f" ({split})" if k == "recover" else "") for k, v in secs.items())
    r.summary = (
        f"{layout.name} ({layout.firmware}): "
        + ("; ".join(problems) if problems else "restored disk booted healthy, rows back")
        + f"; {stages}"
    )
