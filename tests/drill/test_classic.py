"""The drill's classic step (drill/classic.py) without a guest: the source disk it builds, and how it judges
what the recover guest left in its share."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

from drill import classic
from drill.results import StepResult


def test_the_source_is_the_filesystem_in_partition_1_of_a_gpt_disk(tmp_path):
    fs = tmp_path / "fs.img"
    fs.write_bytes(b"\x53\xef" * 512 + b"\0" * (4 * 1024 * 1024 - 1024))
    disk = classic.partitioned(fs, tmp_path / "disk.img")
    table = json.loads(
        subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True, check=True).stdout
    )
    (part,) = table["partitiontable"]["partitions"]
    assert table["partitiontable"]["label"] == "gpt"
    assert (part["start"], part["size"]) == (2048, fs.stat().st_size // 512)
    with open(disk, "rb") as f:
        f.seek(1024 * 1024)
        assert f.read(fs.stat().st_size) == fs.read_bytes()


def shares(tmp_path, stages, differences, rc=0):
    write, rec = tmp_path / "w", tmp_path / "r"
    for d in (write, rec):
        d.mkdir(parents=True)
    (write / "times").write_text("10 30.5\n")
    (write / "members").write_text("3303\n")
    (rec / "times").write_text("40 100\n")
    (rec / "recover.rc").write_text(f"{rc}\n")
    summary = {"stages": {s: {"done": True, "seconds": 1.5} for s in stages}}
    (rec / "recover.json").write_text(json.dumps(summary))
    (rec / "compare.json").write_text(
        json.dumps({"entries": 9, "link_groups": 1, "differences": differences})
    )
    return SimpleNamespace(share=write, ok=True), SimpleNamespace(share=rec, ok=True)


def test_the_step_passes_with_every_recover_stage_done_and_no_difference(tmp_path):
    r = StepResult("classic", False, 0.0, "")
    classic.report(r, *shares(tmp_path, ["layout", "restore", "bootloader", "finalize"], []))
    assert r.ok
    assert "rescue recover --no-catalog exit 0 in 60.0s (layout 1.5s, restore 1.5s, bootloader" in r.summary
    assert r.details["recover_stages"] == {s: 1.5 for s in ("layout", "restore", "bootloader", "finalize")}
    assert r.details["tar_members"] == 3303


def test_a_stage_not_done_or_a_difference_fails_the_step(tmp_path):
    r = StepResult("classic", False, 0.0, "")
    classic.report(r, *shares(tmp_path / "a", ["layout", "restore"], []))
    assert not r.ok
    r = StepResult("classic", False, 0.0, "")
    classic.report(r, *shares(tmp_path / "b", ["layout", "restore", "bootloader", "finalize"], ["extra: x"]))
    assert not r.ok
