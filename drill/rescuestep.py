"""The drill's `rescue` step: `rescue backup` of the production disk, the disk wiped, a full restore onto a new
ext4 compared with the original, then a partial restore of two paths that lie apart on tape, its seeks checked
against the plan.

Each phase fills its r.details entry ("backup", "restore", "partial") and returns whether it passed with its
part of the step's summary. `drill` is run.Drill, `r` its StepResult.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

from drill.results import compare_summary, read_int, read_json, read_times, rescue_said
from rescue.pathmatch import DEFAULT_EXCLUDES

GUEST = Path(__file__).resolve().parent / "guest"
RECORD = 256 * 1024

BACKUP = """\
mkdir -p /mnt/prod && mount /dev/vda /mnt/prod || exit 2
t0=$(now)
rescue -f /dev/nst0 backup /mnt/prod --json > backup.json 2> backup.err
echo $? > backup.rc
tail -n 3 backup.err
t1=$(now)
echo "$t0 $t1" > times
umount /mnt/prod
"""

# One guest for both restores: the full one onto vda, compared with the original (vdb, read-only), then two
# top-level directories picked from the catalog (ext4 orders names by hash), given in reverse tape order, onto vdc.
RESTORE = f"""\
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
"""


def run(drill, r) -> None:
    drill.new_tape()
    prod = drill.readonly_copy("rescue-prod.img")
    ok, said = backup(drill, r, prod)
    if not ok:
        r.ok, r.summary = False, said
        return
    # The disaster: the production disk is wiped.
    prod.unlink()
    wiped = drill.blank_disk("rescue-prod.img")
    original = drill.readonly_copy("rescue-original.img")
    drill.move_tape()
    g = drill.guest(
        "rescue-restore",
        RESTORE,
        disks=[wiped, original, drill.blank_disk("rescue-partial.img")],
        files={"pick_paths.py": GUEST / "pick_paths.py"},
    )
    r.add_guest(g)
    full_ok, full = full_restore(drill, r, g.share)
    part_ok, part = partial_restore(r, g.share)
    r.ok = g.ok and full_ok and part_ok
    r.summary = f"{said}; {full}; {part}"


def backup(drill, r, prod: Path) -> Tuple[bool, str]:
    g = drill.guest("rescue-backup", BACKUP, disks=[prod])
    r.add_guest(g)
    b = read_json(g.share / "backup.json")
    brc = read_int(g.share / "backup.rc")
    b0, b1 = read_times(g.share)
    drill.backup_records = int(b.get("records") or 0)
    r.details["backup"] = {
        "exit": brc,
        "files": b.get("files"),
        "bytes": b.get("bytes"),
        "records": b.get("records"),
        "seconds": round(b1 - b0, 2),
        "job_seconds": b.get("elapsed"),
        "warnings": (b.get("warnings") or [])[:10],
    }
    if brc not in (0, 1) or not drill.backup_records:
        return False, f"rescue backup failed (exit {brc}): {rescue_said(g.share / 'backup.err')}"
    # Two rates: the command's wall time (interpreter start, label checks, layout, catalog included) and
    # the job's own elapsed time as it reports it.
    drill.rates["backup_write"] = drill.backup_records * RECORD / max(b1 - b0, 1e-6)
    if b.get("elapsed"):
        drill.rates["backup_job_write"] = drill.backup_records * RECORD / max(float(b["elapsed"]), 1e-6)
    return True, (
        f"backup exit {brc}: {b.get('files')} files, {drill.backup_records} records in {b1 - b0:.1f}s"
    )


def full_restore(drill, r, share: Path) -> Tuple[bool, str]:
    rest = read_json(share / "restore.json")
    rrc = read_int(share / "restore.rc")
    t0, t1 = read_times(share)
    compared = read_json(share / "compare.json")
    if rest.get("records_read") and t1 > t0:
        drill.rates["restore_read"] = rest["records_read"] * RECORD / (t1 - t0)
    r.details["restore"] = {
        "exit": rrc,
        "files": rest.get("files"),
        "bytes": rest.get("bytes"),
        "seconds": round(t1 - t0, 2),
        "records_read": rest.get("records_read"),
        "compare": compare_summary(compared),
        "differences": (compared.get("differences") or [])[:20],
    }
    if rrc != 0:
        r.details["restore"]["said"] = rescue_said(share / "restore.err")
    ok = rrc == 0 and compared.get("differences") == []
    return ok, f"restore exit {rrc} in {t1 - t0:.1f}s, compare: {compare_summary(compared)}"


def partial_restore(r, share: Path) -> Tuple[bool, str]:
    part = read_json(share / "partial.json")
    prc = read_int(share / "partial.rc")
    p0, p1 = read_times(share, "partial.times")
    compared = read_json(share / "partial-compare.json")
    plan = part.get("plan") or {}
    paths = (share / "paths").read_text().split() if (share / "paths").exists() else []
    r.details["partial"] = {
        "exit": prc,
        "paths": paths,
        "files": part.get("files"),
        "seconds": round(p1 - p0, 2),
        "plan_seeks": plan.get("seeks"),
        "seeks": part.get("seeks"),
        "records_read": part.get("records_read"),
        "archive_records": plan.get("archive_records"),
        "compare": compare_summary(compared),
    }
    if prc != 0:
        r.details["partial"]["said"] = rescue_said(share / "partial.err")
    seeks_ok = (
        plan.get("seeks") is not None and plan.get("seeks", 0) >= 1 and part.get("seeks") == plan.get("seeks")
    )
    ok = prc == 0 and compared.get("differences") == [] and seeks_ok
    return ok, (
        f"partial ({' '.join(paths) or 'no paths picked'}) exit {prc}: plan {plan.get('seeks')} seek(s), "
        f"done {part.get('seeks')}, read {part.get('records_read')} of {plan.get('archive_records')} records, "
        f"compare: {compare_summary(compared)}"
    )
