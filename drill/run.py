"""The recovery drill: a real kernel's st driver, the patched tgt tape, backup, wipe, bare-metal restore, compare.

    python -m drill [--workdir DIR] [--steps smoke,contract,classic,rescue,dd,bios,uefi] [--json FILE]

Steps (each boots the rescue image under QEMU, KVM when it works, else TCG, with the virtual tape attached
through QEMU's iSCSI initiator; every step starts with a new blank cartridge, and between two guests of one
step tgtd is restarted on the same cartridge, as when a tape moves to another machine's drive):
- smoke: st(4) semantics of the patched tgt with mt-st and dd (drill/guest/st-semantics.sh);
- contract: the tape contract suite (tests/tape/test_contract.py) against /dev/nst0, with its own runner;
- classic: the classic mt + GNU tar job (iso/medium/backup-tar.sh) writes the production disk's tree to tape in one
  guest; another guest restores it with `rescue restore` (no catalog: a plain tar tape) onto a new ext4 and
  compares it with the original;
- rescue: the production guest runs `rescue backup` of its disk to tape; the disk is wiped; the rescue guest
  makes a new filesystem by hand, runs `rescue restore`, compares with the original disk (attached read-only),
  then restores two top-level directories that lie apart on tape (picked from the catalog, since ext4 orders
  names by hash), given in reverse tape order, and checks the seeks the plan reported;
- dd: raw dd write and read of as many 256 KiB records as the backup wrote, on the same tape, for the
  throughput comparison;
- bios, uefi: the drill boots what it restored (drill/bootdrill.py): a Debian production system on a BIOS/MBR
  ext4 + swap disk (bios) or a UEFI/GPT ESP + /boot + LVM disk (uefi) boots to its health marker, writes
  MariaDB rows and backs itself up to tape; its disk is zeroed, recovered from the tape and boots healthy with
  the rows back.
The report gives each step's wall time, boot times, throughputs, and PASS/FAIL; exit 0 when all passed.
Everything started (tgtd, QEMU) is ended by its pid; tgtd listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from drill import bootdrill
from drill import qemu as vm
from drill.guestrun import PRELUDE, GuestResult, run_script
from drill.tree import make_disk, make_tree
from drill.vtape import VirtualTape
from rescue.pathmatch import DEFAULT_EXCLUDES

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "out"
TGT = OUT / "tgt"
GUEST = Path(__file__).resolve().parent / "guest"
STEPS = ["smoke", "contract", "classic", "rescue", "dd", "bios", "uefi"]
RECORD = 256 * 1024
TAPE_MB = 2048


@dataclasses.dataclass
class StepResult:
    name: str
    ok: bool
    seconds: float
    summary: str
    details: Dict = dataclasses.field(default_factory=dict)
    guests: List[Dict] = dataclasses.field(default_factory=list)

    def add_guest(self, g: GuestResult) -> None:
        self.guests.append(
            {
                "name": g.name,
                "status": g.status,
                "seconds": round(g.seconds, 1),
                "boot_seconds": round(g.boot_seconds, 1),
            }
        )


class Drill:
    def __init__(self, workdir: Path, image: Path):
        self.workdir = workdir
        self.image = image
        self.tape_path = workdir / "tape.img"
        self.tape: Optional[VirtualTape] = None
        self.prod_disk = workdir / "prod.img"
        self.backup_records = 0
        self.rates: Dict[str, float] = {}

    # -- the cartridge and the drive ---------------------------------------------------------------------------

    def new_tape(self) -> VirtualTape:
        self.stop_tape()
        self.tape = VirtualTape(self.tape_path, TGT)
        self.tape.create(TAPE_MB)
        return self.tape.start()

    def move_tape(self) -> VirtualTape:
        """The same cartridge in a freshly started drive (tgtd restarted: loaded, at BOT)."""
        assert self.tape is not None
        self.tape.stop()
        return self.tape.start()

    def stop_tape(self) -> None:
        if self.tape is not None:
            self.tape.stop()
            self.tape = None

    def guest(self, name: str, script: str, disks=(), files=None, timeout: float = 600) -> GuestResult:
        files = dict(files or {})
        files.setdefault("compare.py", GUEST / "compare.py")
        return run_script(
            name,
            PRELUDE + script,
            self.workdir,
            self.tape,
            disks=disks,
            files=files,
            timeout=timeout,
            image=self.image,
        )

    def blank_disk(self, name: str, size_mb: int = 512) -> Path:
        path = self.workdir / name
        if path.exists():
            path.unlink()
        with open(path, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        return path

    def original_disk(self) -> Path:
        """The production disk (made once per drill run from the generated tree)."""
        if not self.prod_disk.exists():
            tree = self.workdir / "prod-tree"
            if tree.exists():
                shutil.rmtree(tree)
            make_tree(tree)
            make_disk(tree, self.prod_disk)
            shutil.rmtree(tree)
        return self.prod_disk

    def readonly_copy(self, name: str) -> Path:
        """A copy of the production disk to attach (guests never write to the original)."""
        path = self.workdir / name
        subprocess.run(["cp", "--sparse=always", str(self.original_disk()), str(path)], check=True)
        return path

    # -- steps ---------------------------------------------------------------------------------------------------

    def step_smoke(self, r: StepResult) -> None:
        self.new_tape()
        files = {"st-semantics.sh": GUEST / "st-semantics.sh", "read_position.py": GUEST / "read_position.py"}
        g = self.guest("smoke", "sh ./st-semantics.sh\n", files=files)
        r.add_guest(g)
        m = re.search(r"st-semantics: (\d+) passed, (\d+) failed", g.console)
        failures = re.findall(r"^not ok .*$", g.console, re.M)
        r.details = {
            "passed": int(m.group(1)) if m else 0,
            "failed": int(m.group(2)) if m else None,
            "failures": failures,
        }
        r.ok = g.ok and m is not None and m.group(2) == "0"
        r.summary = m.group(0) if m else f"no result (guest status {g.status})"

    def step_contract(self, r: StepResult) -> None:
        self.new_tape()
        files = {
            "src/rescue": ROOT / "rescue",
            "src/tests/__init__.py": ROOT / "tests/__init__.py",
            "src/tests/tape/__init__.py": ROOT / "tests/tape/__init__.py",
            "src/tests/tape/test_contract.py": ROOT / "tests/tape/test_contract.py",
        }
        g = self.guest("contract", "cd src && python3 -m tests.tape.test_contract /dev/nst0\n", files=files)
        r.add_guest(g)
        results = re.findall(r"^(PASS|FAIL|SKIP) (\w+)(?:: (.*))?$", g.console, re.M)
        failed = [f"{name}: {why}" for verdict, name, why in results if verdict == "FAIL"]
        r.details = {
            "tests": len(results),
            "passed": sum(v == "PASS" for v, _, _ in results),
            "skipped": sum(v == "SKIP" for v, _, _ in results),
            "failures": failed,
        }
        r.ok = g.ok and bool(results) and not failed
        r.summary = f"{r.details['passed']} passed, {len(failed)} failed, {r.details['skipped']} skipped"

    def step_classic(self, r: StepResult) -> None:
        self.new_tape()
        source = self.readonly_copy("classic-source.img")
        # The classic nightly job: iso/medium/backup-tar.sh (mt + GNU tar, as the rescue image carries it in /rescue).
        write = self.guest(
            "classic-write",
            """\
mkdir -p /mnt/prod && mount -o ro /dev/vda /mnt/prod || exit 2
t0=$(now)
bash /rescue/backup-tar.sh -f /dev/nst0 -C /mnt/prod -l "$PWD/filelist.txt" --eject
echo $? > tar.rc
t1=$(now)
echo "$t0 $t1" > times
grep -vc '^#' filelist.txt > members
""",
            disks=[source],
        )
        r.add_guest(write)
        tar_rc = _read_int(write.share / "tar.rc")
        if not write.ok or tar_rc != 0:
            r.ok, r.summary = False, f"backup-tar.sh failed (exit {tar_rc}, guest status {write.status})"
            return
        self.move_tape()
        target = self.blank_disk("classic-target.img")
        restore = self.guest(
            "classic-restore",
            """\
mkfs.ext4 -q -F /dev/vda || exit 2
mkdir -p /mnt/target /mnt/orig
mount /dev/vda /mnt/target && mount -o ro /dev/vdb /mnt/orig || exit 2
t0=$(now)
rescue -f /dev/nst0 restore -C /mnt/target --json > restore.json 2> restore.err
echo $? > restore.rc
tail -n 3 restore.err
t1=$(now)
echo "$t0 $t1" > times
python3 compare.py /mnt/orig /mnt/target --json compare.json
""",
            disks=[target, source],
        )
        r.add_guest(restore)
        w0, w1 = _times(write.share)
        t0, t1 = _times(restore.share)
        members = _read_int(write.share / "members")
        restored = _json(restore.share / "restore.json")
        compared = _json(restore.share / "compare.json")
        rc = _read_int(restore.share / "restore.rc")
        r.details = {
            "tar_members": members,
            "tar_write_seconds": round(w1 - w0, 2),
            "restore_seconds": round(t1 - t0, 2),
            "restore_exit": rc,
            "restore_mode": restored.get("mode"),
            "restored_files": restored.get("files"),
            "compare": _compare_summary(compared),
        }
        r.ok = restore.ok and rc == 0 and compared.get("differences") == []
        r.summary = (
            f"backup-tar.sh wrote {members} members in {w1 - w0:.1f}s; rescue restore (mode {restored.get('mode')}) "
            f"exit {rc} in {t1 - t0:.1f}s; compare: {_compare_summary(compared)}"
        )
        if rc != 0:
            r.summary += f"; restore said: {_errors(restore.share / 'restore.err')}"

    def step_rescue(self, r: StepResult) -> None:
        self.new_tape()
        prod = self.readonly_copy("rescue-prod.img")
        backup = self.guest(
            "rescue-backup",
            """\
mkdir -p /mnt/prod && mount /dev/vda /mnt/prod || exit 2
t0=$(now)
rescue -f /dev/nst0 backup /mnt/prod --json > backup.json 2> backup.err
echo $? > backup.rc
tail -n 3 backup.err
t1=$(now)
echo "$t0 $t1" > times
umount /mnt/prod
""",
            disks=[prod],
        )
        r.add_guest(backup)
        b = _json(backup.share / "backup.json")
        brc = _read_int(backup.share / "backup.rc")
        b0, b1 = _times(backup.share)
        self.backup_records = int(b.get("records") or 0)
        r.details["backup"] = {
            "exit": brc,
            "files": b.get("files"),
            "bytes": b.get("bytes"),
            "records": b.get("records"),
            "seconds": round(b1 - b0, 2),
            "job_seconds": b.get("elapsed"),
            "warnings": (b.get("warnings") or [])[:10],
        }
        if brc not in (0, 1) or not self.backup_records:
            r.ok = False
            r.summary = f"rescue backup failed (exit {brc}): {_errors(backup.share / 'backup.err')}"
            return
        # Two rates: the command's wall time (interpreter start, label checks, layout, catalog included) and
        # the job's own elapsed time as it reports it.
        self.rates["backup_write"] = self.backup_records * RECORD / max(b1 - b0, 1e-6)
        if b.get("elapsed"):
            self.rates["backup_job_write"] = self.backup_records * RECORD / max(float(b["elapsed"]), 1e-6)

        # The disaster: the production disk is wiped.
        prod.unlink()
        wiped = self.blank_disk("rescue-prod.img")
        original = self.readonly_copy("rescue-original.img")
        self.move_tape()
        restore = self.guest(
            "rescue-restore",
            f"""\
mkfs.ext4 -q -F -L prod /dev/vda || exit 2
mkdir -p /mnt/target /mnt/orig /mnt/partial
mount /dev/vda /mnt/target && mount -o ro /dev/vdb /mnt/orig || exit 2
t0=$(now)
rescue -f /dev/nst0 restore -C /mnt/target --json > restore.json 2> restore.err
echo $? > restore.rc
tail -n 3 restore.err
t1=$(now)
echo "$t0 $t1" > times
python3 compare.py /mnt/orig /mnt/target --json compare.json
mkfs.ext4 -q -F /dev/vdc && mount /dev/vdc /mnt/partial || exit 2
rescue -f /dev/nst0 list --json > catalog.jsonl 2> list.err
python3 pick_paths.py {RECORD} 4 {" ".join(DEFAULT_EXCLUDES)} < catalog.jsonl > paths || exit 2
read -r later earlier < paths
p0=$(now)
rescue -f /dev/nst0 restore -C /mnt/partial --seek-threshold 4 --json "$later" "$earlier" > partial.json 2> partial.err
echo $? > partial.rc
tail -n 3 partial.err
p1=$(now)
echo "$p0 $p1" > partial.times
python3 compare.py /mnt/orig /mnt/partial --only "$earlier" --only "$later" --json partial-compare.json
rm -f catalog.jsonl
""",
            disks=[wiped, original, self.blank_disk("rescue-partial.img")],
            files={"pick_paths.py": GUEST / "pick_paths.py"},
        )
        r.add_guest(restore)
        rest = _json(restore.share / "restore.json")
        rrc = _read_int(restore.share / "restore.rc")
        t0, t1 = _times(restore.share)
        cmp_full = _json(restore.share / "compare.json")
        part = _json(restore.share / "partial.json")
        prc = _read_int(restore.share / "partial.rc")
        p0, p1 = _times(restore.share, "partial.times")
        cmp_part = _json(restore.share / "partial-compare.json")
        plan = part.get("plan") or {}
        paths = (restore.share / "paths").read_text().split() if (restore.share / "paths").exists() else []
        if rest.get("records_read") and t1 > t0:
            self.rates["restore_read"] = rest["records_read"] * RECORD / (t1 - t0)
        r.details["restore"] = {
            "exit": rrc,
            "files": rest.get("files"),
            "bytes": rest.get("bytes"),
            "seconds": round(t1 - t0, 2),
            "records_read": rest.get("records_read"),
            "compare": _compare_summary(cmp_full),
            "differences": (cmp_full.get("differences") or [])[:20],
        }
        r.details["partial"] = {
            "exit": prc,
            "paths": paths,
            "files": part.get("files"),
            "seconds": round(p1 - p0, 2),
            "plan_seeks": plan.get("seeks"),
            "seeks": part.get("seeks"),
            "records_read": part.get("records_read"),
            "archive_records": plan.get("archive_records"),
            "compare": _compare_summary(cmp_part),
        }
        seeks_ok = (
            plan.get("seeks") is not None
            and plan.get("seeks", 0) >= 1
            and part.get("seeks") == plan.get("seeks")
        )
        if rrc != 0:
            r.details["restore"]["said"] = _errors(restore.share / "restore.err")
        if prc != 0:
            r.details["partial"]["said"] = _errors(restore.share / "partial.err")
        full_ok = rrc == 0 and cmp_full.get("differences") == []
        part_ok = prc == 0 and cmp_part.get("differences") == [] and seeks_ok
        r.ok = restore.ok and full_ok and part_ok
        r.summary = (
            f"backup exit {brc}: {b.get('files')} files, {self.backup_records} records in {b1 - b0:.1f}s; "
            f"restore exit {rrc} in {t1 - t0:.1f}s, compare: {_compare_summary(cmp_full)}; "
            f"partial ({' '.join(paths) or 'no paths picked'}) exit {prc}: plan {plan.get('seeks')} seek(s), done {part.get('seeks')}, "
            f"read {part.get('records_read')} of {plan.get('archive_records')} records, "
            f"compare: {_compare_summary(cmp_part)}"
        )

    def step_dd(self, r: StepResult) -> None:
        records = self.backup_records or 256
        if self.tape is None:
            self.new_tape()
        else:
            self.move_tape()
        g = self.guest(
            "dd",
            f"""\
$MT -f /dev/nst0 rewind || exit 2
t0=$(now)
dd if=/dev/zero of=/dev/nst0 bs=262144 count={records} 2>dd-write.log || exit 3
t1=$(now)
$MT -f /dev/nst0 rewind
t2=$(now)
dd if=/dev/nst0 of=/dev/null bs=262144 2>dd-read.log || exit 4
t3=$(now)
echo "$t0 $t1 $t2 $t3" > times
""",
        )
        r.add_guest(g)
        t = (g.share / "times").read_text().split() if (g.share / "times").exists() else []
        if len(t) == 4 and g.ok:
            w = records * RECORD / max(float(t[1]) - float(t[0]), 1e-6)
            rd = records * RECORD / max(float(t[3]) - float(t[2]), 1e-6)
            self.rates["dd_write"], self.rates["dd_read"] = w, rd
            r.details = {"records": records, "dd_write_mib_s": _mib(w), "dd_read_mib_s": _mib(rd)}
            r.ok = True
            r.summary = f"{records} records of 256 KiB: dd write {_mib(w)} MiB/s, dd read {_mib(rd)} MiB/s"
        else:
            r.ok = False
            r.summary = f"dd failed (guest status {g.status})"

    def step_bios(self, r: StepResult) -> None:
        bootdrill.scenario(self, r, "bios-mbr")

    def step_uefi(self, r: StepResult) -> None:
        bootdrill.scenario(self, r, "uefi-lvm")


def _times(share: Path, name: str = "times") -> tuple:
    try:
        a, b = (share / name).read_text().split()[:2]
        return float(a), float(b)
    except (OSError, ValueError):
        return 0.0, 0.0


def _read_int(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _errors(path: Path) -> str:
    """What rescue said on stderr: its one-line errors (`rescue: ...`), else its last line (a traceback's)."""
    try:
        lines = path.read_text(errors="replace").replace("\r", "\n").splitlines()
    except OSError:
        return "no stderr"
    errors = [line.strip() for line in lines if line.startswith("rescue: ")]
    if errors:
        return "; ".join(errors[-3:])
    tail = [line.strip() for line in lines if line.strip()]
    return tail[-1] if tail else "nothing"


def _compare_summary(c: dict) -> str:
    if not c:
        return "no comparison"
    return f"{c.get('entries')} entries, {c.get('link_groups')} hard-link groups, {len(c.get('differences', []))} differences"


def _mib(rate: float) -> float:
    return round(rate / (1024 * 1024), 1)


def prepare(workdir: Path, log: Callable[[str], None]) -> Path:
    """Build what the drill needs: the patched tgt, rescue.pyz, the rescue image with that pyz."""
    subprocess.run(["bash", str(ROOT / "drill" / "build-tgt.sh")], check=True)
    log("building dist/rescue.pyz")
    subprocess.run([sys.executable, str(ROOT / "build" / "pyz.py")], check=True, stdout=subprocess.DEVNULL)
    image = workdir / "image"
    log("building the rescue image (iso.mkinitramfs)")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "iso.mkinitramfs",
            "--out",
            str(image),
            "--pyz",
            str(ROOT / "dist" / "rescue.pyz"),
        ],
        check=True,
        cwd=ROOT,
    )
    return image


def report(results: List[StepResult], rates: Dict[str, float], total: float, accel: str = "?") -> str:
    lines = ["", f"drill report (QEMU {accel})", "-" * 100]
    for r in results:
        boots = ", ".join(f"{g['name']} boot {g['boot_seconds']}s" for g in r.guests)
        lines.append(f"{'PASS' if r.ok else 'FAIL'}  {r.name:<9} {r.seconds:7.1f}s  {r.summary}")
        if boots:
            lines.append(f"      {'':<9} {'':>8}  ({boots})")
        for f in (r.details.get("failures") or [])[:10]:
            lines.append(f"      {'':<9} {'':>8}  {f}")
    if rates:
        lines.append("-" * 100)
        for k in ("backup_write", "backup_job_write", "dd_write", "restore_read", "dd_read"):
            if k in rates:
                lines.append(f"throughput {k:<16} {_mib(rates[k]):8.1f} MiB/s")
        if "backup_write" in rates and "dd_write" in rates:
            lines.append(
                f"backup / dd write: {rates['backup_write'] / rates['dd_write']:.2f} (command wall time)"
            )
        if "backup_job_write" in rates and "dd_write" in rates:
            lines.append(
                f"backup / dd write: {rates['backup_job_write'] / rates['dd_write']:.2f} (job's own time)"
            )
        if "restore_read" in rates and "dd_read" in rates:
            lines.append(f"restore / dd read: {rates['restore_read'] / rates['dd_read']:.2f}")
        if accel == "tcg":
            lines.append(
                "(TCG: the guest CPU is emulated; rescue's rates are bound by emulated Python, dd's are not)"
            )
    passed = sum(r.ok for r in results)
    lines.append("-" * 100)
    lines.append(f"drill: {passed} passed, {len(results) - passed} failed in {total:.0f}s")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m drill", description=__doc__.split("\n")[0])
    p.add_argument("--workdir", type=Path, default=OUT / "drill")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    p.add_argument("--image", type=Path, help="use this built rescue image directory (vmlinuz, initrd.img)")
    p.add_argument(
        "--json",
        type=Path,
        help="write the report as JSON here (default WORKDIR/report.json; text: report.txt)",
    )
    args = p.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(steps) - set(STEPS)
    if unknown:
        p.error(f"unknown step(s): {', '.join(sorted(unknown))}")

    def log(msg: str) -> None:
        print(f"drill: {msg}", file=sys.stderr, flush=True)

    started = time.monotonic()
    args.workdir.mkdir(parents=True, exist_ok=True)
    image = args.image or prepare(args.workdir, log)
    if os.environ.get("RESCUE_QEMU_ACCEL") not in ("kvm", "tcg"):
        # drill/qemu.py tests KVM with build/out/image's kernel; the drill has its own image: test with that.
        os.environ["RESCUE_QEMU_ACCEL"] = "kvm" if vm.kvm_works(image / "vmlinuz") else "tcg"
    log(f"QEMU acceleration: {os.environ['RESCUE_QEMU_ACCEL']}")
    drill = Drill(args.workdir, image)
    results: List[StepResult] = []
    try:
        for name in steps:
            log(f"step {name}")
            r = StepResult(name, False, 0.0, "")
            t0 = time.monotonic()
            try:
                getattr(drill, f"step_{name}")(r)
            except Exception as e:  # a broken step is a FAIL with its cause; the others still run
                r.ok = False
                r.summary = f"{type(e).__name__}: {e}"
            r.seconds = time.monotonic() - t0
            results.append(r)
            log(f"{'PASS' if r.ok else 'FAIL'} {name} ({r.seconds:.0f}s): {r.summary}")
    finally:
        drill.stop_tape()
    total = time.monotonic() - started
    text = report(results, drill.rates, total, os.environ["RESCUE_QEMU_ACCEL"])
    print(text)
    (args.workdir / "report.txt").write_text(text.lstrip("\n") + "\n")
    out = args.json or args.workdir / "report.json"
    out.write_text(
        json.dumps(
            {
                "steps": [dataclasses.asdict(r) for r in results],
                "rates_mib_s": {k: _mib(v) for k, v in drill.rates.items()},
                "accel": os.environ["RESCUE_QEMU_ACCEL"],
                "seconds": round(total, 1),
            },
            indent=2,
        )
    )
    return 0 if results and all(r.ok for r in results) else 1
