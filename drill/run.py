"""The recovery drill: a real kernel's st driver, the patched tgt tape, backup, wipe, bare-metal restore, compare.

    python -m drill [--workdir DIR] [--steps smoke,contract,classic,rescue,dd,bios,uefi,md,nvme] [--json FILE]

Steps (each boots the rescue image under QEMU, KVM when it works, else TCG, with the virtual tape attached
through QEMU's iSCSI initiator; every step starts with a new blank cartridge, and between two guests of one
step tgtd is restarted on the same cartridge, as when a tape moves to another machine's drive):
- smoke: st(4) semantics of the patched tgt with mt-st and dd (drill/guest/st-semantics.sh);
- contract: the tape contract suite (tests/tape/test_contract.py) against /dev/nst0, with its own runner;
- classic: the classic mt + GNU tar job (iso/medium/backup-tar.sh) writes the production tree (ext4 in a GPT
  partition) to tape in one guest, which also keeps the disk's layout apart (`rescue layout capture`); another
  guest runs `rescue recover --layout layout.json --no-catalog` (a plain tar tape) onto a blank disk of the same
  size and serial and compares what it mounted with the original (drill/classic.py);
- rescue: the production guest runs `rescue backup` of its disk to tape; the disk is wiped; the rescue guest
  makes a new filesystem by hand, runs `rescue restore`, compares with the original disk (attached read-only),
  then restores two top-level directories that lie apart on tape (picked from the catalog, since ext4 orders
  names by hash), given in reverse tape order, and checks the seeks the plan reported;
- dd: raw dd write and read of as many 256 KiB records as the backup wrote, on the same tape, for the
  throughput comparison;
- bios, uefi: the drill boots what it restored (drill/bootdrill.py): a Debian production system on a BIOS/MBR
  ext4 + swap disk (bios) or a UEFI/GPT ESP + /boot + LVM disk (uefi) boots to its health marker, writes
  MariaDB rows and backs itself up to tape; its disk is zeroed, the rescue image boots on the same machine and
  runs `rescue recover` from the tape, and the restored disk boots healthy with the rows back;
- md: the same on two disks (BIOS, an md RAID1 of one partition per disk, LVM with root and swap on it, grub on
  both); the restored system boots healthy with both disks, then again with the first disk removed (degraded);
- nvme: the uefi system recovered onto one bigger NVMe disk with another serial (`--map`), booted from it.
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
from typing import Dict, List, Optional

from drill import bootdrill, classic, layouts, rescuestep
from drill import qemu as vm
from drill.build import prepare
from drill.guestrun import PRELUDE, GuestResult, run_script
from drill.rescuestep import RECORD
from drill.results import StepResult, mib, report
from drill.tree import make_disk, make_tree
from drill.vtape import VirtualTape

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "out"
TGT = OUT / "tgt"
GUEST = Path(__file__).resolve().parent / "guest"
STEPS = ["smoke", "contract", "classic", "rescue", "dd", "bios", "uefi", "md", "nvme"]
TAPE_MB = 2048


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
        classic.run(self, r)

    def step_rescue(self, r: StepResult) -> None:
        rescuestep.run(self, r)

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
            r.details = {"records": records, "dd_write_mib_s": mib(w), "dd_read_mib_s": mib(rd)}
            r.ok = True
            r.summary = f"{records} records of 256 KiB: dd write {mib(w)} MiB/s, dd read {mib(rd)} MiB/s"
        else:
            r.ok = False
            r.summary = f"dd failed (guest status {g.status})"

    def step_bios(self, r: StepResult) -> None:
        # Scenario 1 reloads the databases in the rescue system (the others at first boot).
        bootdrill.scenario(self, r, "bios-mbr", reload="--reload-db-now")

    def step_uefi(self, r: StepResult) -> None:
        bootdrill.scenario(self, r, "uefi-lvm")

    def step_md(self, r: StepResult) -> None:
        bootdrill.scenario(self, r, "bios-md", degraded=True)

    def step_nvme(self, r: StepResult) -> None:
        bootdrill.scenario(
            self, r, "uefi-lvm", target=layouts.NVME_TARGET, maps=layouts.NVME_MAPS, name="uefi-nvme"
        )


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
                "rates_mib_s": {k: mib(v) for k, v in drill.rates.items()},
                "accel": os.environ["RESCUE_QEMU_ACCEL"],
                "seconds": round(total, 1),
            },
            indent=2,
        )
    )
    return 0 if results and all(r.ok for r in results) else 1
