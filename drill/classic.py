"""The drill's `classic` step: a tape written by the classic mt + GNU tar job, recovered by `rescue recover`.

The source is the production tree's ext4 in partition 1 of a GPT disk, as on a server.  The first guest keeps
the disk's layout apart (`rescue layout capture -o layout.json`, as an admin keeps it on a USB stick) and runs
iso/medium/backup-tar.sh (mt + GNU tar, as the rescue image carries it in /rescue) to tape.  The second guest
gets a blank disk of the same size with the source's serial (recover finds it by that) and a read-only copy of
the source under another serial, runs `rescue recover --layout layout.json --no-catalog` (a plain tar tape, no
bootloader in the layout) and compares what it mounted with the source.  `drill` is run.Drill, `r` its
StepResult.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Dict

from drill.guestrun import Disk
from drill.results import compare_summary, read_int, read_json, read_times, rescue_said
from rescue.recover.state import STAGES

SERIAL = "classic-disk"
ORIG = "classic-orig"
TARGET = "/mnt/target"
# What recover adds to the target by design (its state and logs), besides the tree from tape.
RECOVER_ADDS = ("var/lib/rescue", "var/log/rescue")

WRITE = """\
mkdir -p /mnt/prod && mount -o ro /dev/vda1 /mnt/prod || exit 2
rescue layout capture --root /mnt/prod --disk /dev/vda -o layout.json 2> capture.err
echo $? > capture.rc
t0=$(now)
bash /rescue/backup-tar.sh -f /dev/nst0 -C /mnt/prod -l "$PWD/filelist.txt" --eject
echo $? > tar.rc
t1=$(now)
echo "$t0 $t1" > times
grep -vc '^#' filelist.txt > members
"""

RECOVER = f"""\
for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = {ORIG} ] && orig=/dev/${{d##*/}}1; done
mkdir -p /mnt/orig && mount -o ro,noload "${{orig:-none}}" /mnt/orig || exit 2
t0=$(now)
rescue -f /dev/nst0 recover --layout layout.json --no-catalog --yes --json > recover.json 2> recover.err
echo $? > recover.rc
tail -n 8 recover.err
t1=$(now)
echo "$t0 $t1" > times
python3 compare.py /mnt/orig {TARGET} {" ".join(f"--added {p}" for p in RECOVER_ADDS)} --json compare.json
"""


def partitioned(fs_image: Path, disk: Path) -> Path:
    """`fs_image` in partition 1 (from 1 MiB) of a GPT disk with 1 MiB spare at the end."""
    size = fs_image.stat().st_size
    if disk.exists():
        disk.unlink()
    with open(disk, "wb") as f:
        f.truncate(size + 2 * 1024 * 1024)
    table = f"label: gpt\nstart=2048, size={size // 512}, type=linux, name=root\n"
    subprocess.run(
        ["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(disk)],
        input=table.encode(),
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    subprocess.run(
        ["dd", f"if={fs_image}", f"of={disk}", "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"],
        check=True,
    )
    return disk


def stage_seconds(summary: dict) -> Dict[str, float]:
    stages = summary.get("stages") or {}
    return {s: round(stages[s].get("seconds", 0.0), 1) for s in STAGES if s in stages}


def run(drill, r) -> None:
    drill.new_tape()
    source = partitioned(drill.original_disk(), drill.workdir / "classic-source.img")
    write = drill.guest("classic-write", WRITE, disks=[Disk(source, serial=SERIAL)])
    r.add_guest(write)
    tar_rc, capture_rc = read_int(write.share / "tar.rc"), read_int(write.share / "capture.rc")
    if not write.ok or tar_rc != 0 or capture_rc != 0:
        r.ok = False
        r.summary = f"capture exit {capture_rc}, backup-tar.sh exit {tar_rc} (guest status {write.status})"
        if capture_rc != 0:
            r.summary += f"; capture said: {rescue_said(write.share / 'capture.err')}"
        return
    drill.move_tape()
    target = drill.blank_disk("classic-target.img", size_mb=source.stat().st_size // (1024 * 1024))
    disks = [Disk(target, serial=SERIAL), Disk(source, serial=ORIG, readonly=True)]
    rec = drill.guest(
        "classic-recover",
        RECOVER,
        disks=disks,
        files={"layout.json": write.share / "layout.json"},
        timeout=1200,
    )
    r.add_guest(rec)
    report(r, write, rec)


def report(r, write, rec) -> None:
    w0, w1 = read_times(write.share)
    t0, t1 = read_times(rec.share)
    members = read_int(write.share / "members")
    summary = read_json(rec.share / "recover.json")
    compared = read_json(rec.share / "compare.json")
    rc = read_int(rec.share / "recover.rc")
    stages = stage_seconds(summary)
    r.details = {
        "tar_members": members,
        "tar_write_seconds": round(w1 - w0, 2),
        "recover_seconds": round(t1 - t0, 2),
        "recover_exit": rc,
        "recover_stages": stages,
        "compare": compare_summary(compared),
    }
    r.ok = rec.ok and rc == 0 and list(stages) == list(STAGES) and compared.get("differences") == []
    split = ", ".join(f"{k} {v:.1f}s" for k, v in stages.items()) or "no stage done"
    r.summary = (
        f"backup-tar.sh wrote {members} members in {w1 - w0:.1f}s; rescue recover --no-catalog exit {rc} "
        f"in {t1 - t0:.1f}s ({split}); compare: {compare_summary(compared)}"
    )
    if rc != 0:
        r.summary += f"; recover said: {rescue_said(rec.share / 'recover.err')}"
