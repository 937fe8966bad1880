"""The drill boots what it restored: the production system on a disk layout, booted by its firmware to its marker.

The production system is a Debian tree (drill/build-prodroot.sh, cached in build/out/prodroot/). Its disks are
first made in the installer guest: that same tree booted straight from its kernel with
init=/sbin/drill-installer-init (udev, lvm2, mdadm, grub: it builds the machine the drill later destroys).
The recovery is the product's: the rescue image boots with the wiped disks and the tape and runs `rescue recover`,
which takes the layout from the tape's label. Disks are found by serial (their by-id names), never by kernel
name. The layouts (drill/guest/prodsys.sh), each a list of disks (`DiskSpec`: serial, size, bus virtio or nvme):

- bios-mbr: SeaBIOS, MBR, ext4 root and a swap partition (scenario 1);
- uefi-lvm: OVMF, GPT with ESP, /boot and an LVM volume group with root and swap (scenario 2; scenario 4
  recovers it onto one bigger NVMe disk with another serial, `--map`);
- bios-md: SeaBIOS, two disks, each MBR with one partition; an md RAID1 (metadata 1.2) of the two, LVM on it
  with root and swap, grub on both disks (scenario 3; the restored system also boots from the second disk alone).

Contract:
- `build()` -> the directory holding root.tar, installer.ext4, vmlinuz, initrd.img (builds when stale).
- `images(specs, workdir, prefix)` -> blank raw images (guestrun.Disk) for disk specs.
- `install(layout, disks, workdir, files, name=None)` lays the layout out on the raw images `disks`
  (guestrun.Disk), extracts root.tar onto them, writes fstab (and mdadm.conf), copies `files` ({path in the tree:
  host path}) in and installs grub; -> GuestResult whose share holds `times` (layout, fill, bootloader, done;
  guest uptime seconds).
- `recover(layout, disks, workdir, tape, image, variables=None, maps=None, name=None, reload="--reload-db")`
  runs `rescue recover --yes RELOAD` (with `--map OLD=NEW` for each of `maps`; RELOAD `--reload-db`, at first
  boot, or `--reload-db-now`, by the target's server in the finalize stage) in the rescue image booted by the
  layout's firmware (OVMF with the NVRAM store `variables`: the same machine), the wiped or new `disks` attached;
  -> GuestResult whose share holds recover.json (`recover_seconds()` reads each stage's seconds from it),
  recover.rc, recover.err and the logs.
- `boot(name, layout, disks, workdir, tape=None, job=None, variables=None)` boots the disks by the layout's
  firmware and waits for the health line the system prints on its second serial port
  (drill/prodroot/rescue-health); with a `job` (shell script) the system runs it from a 9p share
  (drill-job.service), which powers it off afterwards. -> Boot.
- `scenario(drill, r, layout, target=None, maps=None, degraded=False, name=None)`: one drill step.
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
from drill.layouts import (
    LAYOUTS,
    MD_JOB,
    DiskSpec,
    Layout,
    health_problems,
    md_problems,
)
from drill.results import read_int, read_json, read_times, rescue_said
from drill.vtape import VirtualTape
from rescue.recover.state import STAGES

ROOT = Path(__file__).resolve().parent.parent
PRODROOT = ROOT / "build" / "out" / "prodroot"
GUEST = Path(__file__).resolve().parent / "guest"
TREE = "/dev/disk/by-id/virtio-roottar"
TARGET = "/mnt/target"  # rescue recover's default target
INSTALLER_APPEND = "console=ttyS0 panic=-1 root=LABEL=drill-inst rw init=/sbin/drill-installer-init"
HEALTH = re.compile(r"RESCUE-HEALTH (\{.*\})\s*$", re.M)


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


def images(specs: List[DiskSpec], workdir: Path, prefix: str) -> List[Disk]:
    """Blank (sparse, zero) raw images for the disks `specs`, named PREFIX-SERIAL.img."""
    disks = []
    for spec in specs:
        path = _blank(Path(workdir) / f"{prefix}-{spec.serial}.img", spec.mb)
        disks.append(Disk(path, serial=spec.serial, bus=spec.bus))
    return disks


def by_ids(disks: List[Disk]) -> str:
    """The disks' by-id names joined by commas, as prodsys.sh takes them."""
    return ",".join(d.by_id for d in disks)


def installer_disks(disks: List[Disk]) -> List[Disk]:
    return [
        Disk(PRODROOT / "installer.ext4", serial="inst", snapshot=True),
        Disk(PRODROOT / "root.tar", serial="roottar", readonly=True),
        *disks,
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


def install(
    layout_name: str, disks: List[Disk], workdir: Path, files: Dict[str, Path], name: Optional[str] = None
) -> GuestResult:
    layout = LAYOUTS[layout_name]
    ids = by_ids(disks)
    copies = "".join(
        f'mkdir -p "$(dirname /target/{dest})" && cp files/{i} /target/{dest}\n'
        for i, dest in enumerate(files)
    )
    script = f"""\
t0=$(now)
sh ./prodsys.sh layout {layout.name} {ids}
t1=$(now)
sh ./prodsys.sh mount {layout.name} {ids} /target
tar -C /target --numeric-owner --xattrs --xattrs-include='*' -xpf {TREE}
sh ./prodsys.sh fstab {layout.name} {ids} /target
{copies}t2=$(now)
sh ./prodsys.sh bootloader {layout.name} {ids} /target
t3=$(now)
cat /target/etc/fstab
grep -m1 -o 'linux[^ ]* [^ ]* root=[^ ]*' /target/boot/grub/grub.cfg || true
sh ./prodsys.sh umount /target
echo "$t0 $t1 $t2 $t3 $(now)" > times
"""
    shared = {f"files/{i}": src for i, src in enumerate(files.values())}
    return _installer(f"{name or layout.name}-install", script, workdir, installer_disks(disks), files=shared)


RECOVER = """\
for i in $(seq 60); do [ -e /dev/nst0 ] && break; sleep 1; done
rescue -f /dev/nst0 recover --yes {reload} --json {maps} > recover.json 2> recover.err
echo $? > recover.rc
cp /run/rescue/recover.log /run/rescue/layout.log . 2>/dev/null
tail -n 12 recover.err
grep -m1 -o 'linux[^ ]* [^ ]* root=[^ ]*' {target}/boot/grub/grub.cfg || true
umount -R {target} 2>/dev/null
lvm vgchange -q -a n 2>/dev/null
# An md array left running at power-off is dirty: its next start would resync the whole mirror.
mdadm --stop --scan 2>/dev/null
exit 0
"""


def recover(
    layout_name: str,
    disks: List[Disk],
    workdir: Path,
    tape: VirtualTape,
    image: Path,
    variables: Optional[Path] = None,
    maps: Optional[Dict[str, str]] = None,
    name: Optional[str] = None,
    reload: str = "--reload-db",
) -> GuestResult:
    """`rescue recover` in the rescue image, by the layout's firmware (OVMF with the machine's NVRAM
    `variables`): the wiped `disks` attached (with the production disks' serials unless `maps` names the
    replacements: `--map OLD=NEW`), the layout from the tape's label."""
    layout = LAYOUTS[layout_name]
    machine = vm.uefi_args(workdir, variables) if layout.firmware == "uefi" else []
    script = RECOVER.format(
        maps=" ".join(f"--map {old}={new}" for old, new in (maps or {}).items()), target=TARGET, reload=reload
    )
    return run_script(
        f"{name or layout.name}-recover",
        PRELUDE + script,
        workdir,
        tape,
        disks=disks,
        timeout=2400,
        image=image,
        machine=machine,
    )


def recover_seconds(summary: dict) -> Dict[str, float]:
    """Seconds per stage from `rescue recover --json`."""
    stages = summary.get("stages") or {}
    return {name: stages[name].get("seconds", 0.0) for name in STAGES if name in stages}


def reloaded_now(err: Path) -> List[str]:
    """The dumps recover's finalize stage reloaded (`--reload-db-now`), from its stderr."""
    try:
        lines = err.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if line.startswith("finalize: reloaded ")]


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
    disks: List[Disk],
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
    for i, disk in enumerate(disks):
        args += disk.qemu_args(i)
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


def _blank(path: Path, size_mb: int) -> Path:
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    return path


@dataclasses.dataclass
class Machine:
    """One scenario's machine: its name (guests, images and logs are named after it), layout and NVRAM."""

    name: str
    layout: Layout
    variables: Path  # OVMF's variable store, kept across the machine's boots (unused by SeaBIOS)
    secs: Dict[str, float]


def _production(drill, r, m: Machine, disks: List[Disk], pyz: Path) -> Optional[list]:
    """Install, boot, write rows, back up: the rows written, or None with r failed."""
    secs = m.secs
    t = time.monotonic()
    inst = install(m.layout.name, disks, drill.workdir, {"usr/local/sbin/rescue": pyz}, name=m.name)
    r.add_guest(inst)
    secs["install"] = round(time.monotonic() - t, 1)
    r.details["install"] = guest_times(inst, ["layout", "fill", "bootloader", "umount"])
    if not inst.ok:
        r.ok, r.summary = False, f"install failed (status {inst.status}); see {inst.name}.serial.log"
        return None
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
rescue layout capture > layout.json 2> layout.err
"""
    prod = boot(
        f"{m.name}-prod", m.layout.name, disks, drill.workdir, tape=drill.tape, job=job, variables=m.variables
    )
    secs["prod_boot"] = round(prod.marker_seconds, 1)
    secs["prod_total"] = round(prod.seconds, 1)
    first = health_problems(prod.health, m.layout.name)
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
        return None
    return rows


def _boot_checked(drill, r, m: Machine, name: str, disks: List[Disk], rows, members: int, **check) -> list:
    """Boot the restored disks (an md layout with MD_JOB, checked with md_problems): the problems found."""
    job = MD_JOB if m.layout.name == "bios-md" else None
    after = boot(f"{m.name}-{name}", m.layout.name, disks, drill.workdir, job=job, variables=m.variables)
    m.secs[f"{name}_boot"] = round(after.marker_seconds, 1)
    r.details[f"{name}_health"] = after.health
    problems = health_problems(after.health, m.layout.name, rows, **check) + (
        [after.why] if after.why else []
    )
    if job is not None:
        state = (after.share / "md.state").read_text() if (after.share / "md.state").exists() else None
        r.details[f"{name}_md"] = state
        problems += md_problems(state, members)
    return problems


def recover_step(
    drill, r, m: Machine, disks: List[Disk], maps: Optional[Dict[str, str]], reload: str = "--reload-db"
) -> bool:
    """`rescue recover` onto the wiped or new disks, timed: r.details["seconds"]["recover"] in all, and per stage
    in r.details["recover"]; r.details["reload"] says how the databases come back and
    r.details["reloaded_now"] what the finalize stage reloaded. False (with r's summary saying why) when it
    failed."""
    drill.move_tape()
    t = time.monotonic()
    rec = recover(
        m.layout.name, disks, drill.workdir, drill.tape, drill.image, m.variables, maps, m.name, reload
    )
    r.add_guest(rec)
    r.details["seconds"]["recover"] = round(time.monotonic() - t, 1)
    summary = read_json(rec.share / "recover.json")
    r.details["recover"] = recover_seconds(summary)
    r.details["reload"] = reload
    r.details["reloaded_now"] = reloaded_now(rec.share / "recover.err")
    code = read_int(rec.share / "recover.rc")
    if rec.ok and code == 0:
        return True
    said = summary.get("error") or rescue_said(rec.share / "recover.err")
    r.ok = False
    r.summary = f"recover failed (guest status {rec.status}, rescue recover exit {code}): {said}"
    return False


def scenario(
    drill,
    r,
    layout_name: str,
    target: Optional[List[DiskSpec]] = None,
    maps: Optional[Dict[str, str]] = None,
    degraded: bool = False,
    name: Optional[str] = None,
    reload: str = "--reload-db",
) -> None:
    """One scenario as a drill step (`drill` is run.Drill, `r` its StepResult): install, boot, rows, backup,
    wipe, recover (onto `target` disks with `maps` when given, else onto the same disks; the databases
    reloaded as `reload` says), boot the restored disks (and, with `degraded`, once more with only the last of
    them); r.details["seconds"] holds each stage's wall time. `name` names the machine (default: the layout's
    name)."""
    layout = LAYOUTS[layout_name]
    build()
    m = Machine(name or layout.name, layout, drill.workdir / f"{name or layout.name}.OVMF_VARS.fd", {})
    m.variables.unlink(missing_ok=True)
    r.details["seconds"] = m.secs
    rows = _production(drill, r, m, images(layout.disks, drill.workdir, m.name), ROOT / "dist" / "rescue.pyz")
    if rows is None:
        return
    # The disaster: the disks are zeroed (or replaced by the target's blank disks). The rescue image boots on
    # the same machine (its NVRAM).
    disks = images(target or layout.disks, drill.workdir, m.name)
    if not recover_step(drill, r, m, disks, maps, reload):
        return
    drill.stop_tape()
    on = "nvme0n1" if target and target[0].bus == "nvme" else None
    problems = _boot_checked(drill, r, m, "restored", disks, rows, len(disks), disk=on)
    said = "restored disks booted healthy, rows back"
    if degraded and not problems:
        problems = _boot_checked(drill, r, m, "degraded", disks[-1:], rows, 1)
        said += f"; booted again from {disks[-1].serial} alone (degraded)"
    r.ok = not problems
    split = ", ".join(f"{k} {v}s" for k, v in r.details["recover"].items())
    stages = ", ".join(f"{k} {v}s" + (f" ({split})" if k == "recover" else "") for k, v in m.secs.items())
    r.summary = (
        f"{m.name} ({layout.firmware}): " + ("; ".join(problems) if problems else said) + f"; {stages}"
    )
