"""`rescue backup` end to end on SIMH images: three tape files GNU tar reads, catalog positions and checksums,
the kept catalog, verify, and files that vanish or change during the walk."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess

import pytest

from rescue.archive.member import FILE
from rescue.backup.job import run_backup
from rescue.scan.verify import VerifyOptions, run_verify
from rescue.tape.simh import SimhTape
from rescue.tapeset.catalog import open_catalog
from rescue.tapeset.label import read_label
from tests.support import need_tool
from tests.support.backups import RECORD, backup, header_name, make_tree, options
from tests.support.tapes import split_tape


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    make_tree(root)
    return root


def test_backup_gives_three_tape_files_that_gnu_tar_lists(tmp_path, tree):
    need_tool("tar")
    tap = tmp_path / "night.tap"
    result = backup(tmp_path, tree, tap)
    assert result.exit_code == 0, result.warnings
    pieces = split_tape(str(tap), str(tmp_path))
    assert len(pieces) == 3
    listings = []
    for piece in pieces:
        proc = subprocess.run(["tar", "-tvf", piece, "-b", "20"], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        listings.append([line.split()[-1] for line in proc.stdout.splitlines()])
    assert listings[0] == ["rescue-label.json", "layout.json", "RESTORE.txt"]
    assert listings[2] == ["catalog.jsonl.gz", "filelist.txt", "summary.json"]
    names = [n.rstrip("/") for n in listings[1]]
    # Priority order: etc, boot, root first; default excludes archived as empty directories.
    assert names[:6] == [
        "etc",
        "etc/ssh",
        "etc/ssh/sshd_config",
        "etc/hostname",
        "boot",
        "boot/vmlinuz",
    ] or names[:6] == ["etc", "etc/hostname", "etc/ssh", "etc/ssh/sshd_config", "boot", "boot/vmlinuz"]
    assert names[6:8] == ["root", "root/.bashrc"]
    assert "proc" in names and "proc/1/status" not in names
    assert "home/ann/notes.txt" in names


def test_catalog_positions_point_at_the_headers_and_checksums_match(tmp_path, tree):
    tap = tmp_path / "night.tap"
    result = backup(tmp_path, tree, tap)
    pieces = split_tape(str(tap), str(tmp_path))
    archive = open(pieces[1], "rb").read()
    header, members = open_catalog(result.catalog_path)
    assert header["backup_id"] == result.backup_id and header["record_size"] == RECORD
    members = list(members)
    assert len(members) >= 15
    for m in members:
        assert header_name(archive, m.record * RECORD + m.offset).rstrip("/") == m.path
        if m.type == FILE:
            assert m.sha256 == hashlib.sha256((tree / m.path).read_bytes()).hexdigest()
    assert any(m.record > 0 for m in members)
    long = [m for m in members if m.path.endswith("long-name-" * 12)]
    assert long and header_name(archive, long[0].record * RECORD + long[0].offset).endswith("long-name-")


def test_catalog_is_kept_private_with_filelist_and_summary(tmp_path, tree):
    result = backup(tmp_path, tree, tmp_path / "night.tap")
    kept = os.path.dirname(result.catalog_path)
    assert os.path.dirname(kept) == str(tmp_path / "catalogs")
    assert os.path.basename(kept).endswith(result.backup_id[:8])
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o700
    for name in ("catalog.jsonl.gz", "filelist.txt", "summary.json"):
        assert stat.S_IMODE(os.stat(os.path.join(kept, name)).st_mode) == 0o600
    filelist = open(os.path.join(kept, "filelist.txt")).read().splitlines()
    assert any(line.startswith("-rw-r--r-- ") and line.endswith(" etc/hostname") for line in filelist)
    assert any(line.endswith("var/hostname-link -> ../etc/hostname") for line in filelist)
    assert any(line.endswith("var/hostname-hard link to etc/hostname") for line in filelist)
    summary = json.load(open(os.path.join(kept, "summary.json")))
    assert summary["files"] == result.files and summary["bytes"] == result.bytes
    assert summary["warnings"] == [] and summary["plan"]["per_top"]["etc"][0] == 4
    with gzip.open(result.catalog_path, "rt") as f:
        assert json.loads(f.readline())["format"] == "rescue-catalog"
    assert not [n for n in os.listdir(tmp_path / "catalogs") if n.startswith(".")]


def test_label_names_host_record_size_and_retention(tmp_path, tree):
    tap = tmp_path / "night.tap"
    result = backup(tmp_path, tree, tap, retention_days=7, host="web1")
    with SimhTape(str(tap)) as tape:
        label = read_label(tape)
    assert label.backup_id == result.backup_id and label.host == "web1"
    assert label.record_size == RECORD and label.retention_until is not None
    assert label.layout == {"format": "test"}
    assert "proc" in label.excludes


def test_verify_reads_back_every_checksum(tmp_path, tree):
    tap = tmp_path / "night.tap"
    result = backup(tmp_path, tree, tap, verify=True, eject=True)
    assert result.verified is True and result.exit_code == 0
    summary = json.load(open(os.path.join(os.path.dirname(result.catalog_path), "summary.json")))
    assert summary["verify"] == {"ok": True, "problems": []}


def verify_differences(tap, catalog_path):
    """What `rescue verify --catalog` (also run by `backup --verify`) finds on the set."""
    with SimhTape(str(tap)) as tape:
        options = VerifyOptions(catalog=catalog_path, messages=io.StringIO(), results=io.StringIO())
        return run_verify(tape, options).differences


def test_verify_reports_a_member_whose_data_differs(tmp_path, tree):

    tap = tmp_path / "night.tap"
    result = backup(tmp_path, tree, tap)
    image = bytearray(tap.read_bytes())
    data = (tree / "boot/vmlinuz").read_bytes()
    at = bytes(image).find(data[:64])
    image[at + 10] ^= 0xFF  # one flipped byte inside boot/vmlinuz on tape
    tap.write_bytes(bytes(image))
    assert verify_differences(tap, result.catalog_path) == ["boot/vmlinuz: SHA-256 differs from the catalog"]


class MutatingTape(SimhTape):
    """Runs `mutate` at the first archive record: the writer is then inside the first big file."""

    def __init__(self, path, mutate):
        super().__init__(path, write=True)
        self.mutate = mutate
        self.filemarks = 0

    def write_filemarks(self, count=1):
        self.filemarks += count
        super().write_filemarks(count)

    def write_record(self, data):
        if self.filemarks == 1 and self.mutate:
            self.mutate()
            self.mutate = None
        super().write_record(data)


def test_files_that_vanish_or_change_during_the_walk_end_with_exit_1_and_the_list(tmp_path):
    root = tmp_path / "tree"
    boot = root / "boot"
    boot.mkdir(parents=True)
    for i in range(12):
        (boot / f"f{i:02d}").write_text("x")
    # The entry the directory lists first becomes the big file, so the others are listed (and will be stat'ed)
    # after it: removing them while it is read makes them vanish under the walk.
    order = os.listdir(boot)
    big = boot / order[0]
    big.write_bytes(os.urandom(64 * RECORD))
    victims = [boot / n for n in order[1:]]

    def mutate():
        with open(big, "ab") as f:
            f.write(b"grown while read")
        for v in victims:
            v.unlink()

    with MutatingTape(str(tmp_path / "t.tap"), mutate) as tape:
        result = run_backup(tape, str(root), options(tmp_path), out=io.StringIO())
    assert result.exit_code == 1
    assert f"boot/{big.name}: file changed as we read it" in result.warnings
    vanished = sorted(w.split(":")[0] for w in result.warnings if "removed" in w)
    assert vanished == sorted(f"boot/{v.name}" for v in victims)
    summary = json.load(open(os.path.join(os.path.dirname(result.catalog_path), "summary.json")))
    assert summary["exit_code"] == 1 and len(summary["warnings"]) == len(victims) + 1


def test_backup_to_a_directory_gives_three_tar_files(tmp_path, tree, monkeypatch, capsys):
    need_tool("tar")
    from rescue.cli import main

    monkeypatch.delenv("TAPE", raising=False)
    target = str(tmp_path / "usb") + "/"
    args = ["-f", target, "backup", str(tree), "--config", os.devnull, "--record-size", "20b", "--json"]
    assert (
        main([*args, "--catalog-dir", str(tmp_path / "c"), "--spool-dir", str(tmp_path / "s"), "--verify"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["exit_code"] == 0 and result["verified"] is True and result["files"] == 7
    assert sorted(os.listdir(target)) == ["0-label.tar", "1-archive.tar", "2-catalog.tar"]
    listing = subprocess.run(
        ["tar", "-tf", os.path.join(target, "1-archive.tar"), "-b", "20"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "etc/hostname" in listing.stdout.split()


def test_backup_to_a_stream_writes_the_archive_only(tmp_path, tree):
    need_tool("tar")
    from rescue.tape import open_tape

    out = tmp_path / "night.tar"
    with open_tape(str(out), write=True, record_size=RECORD) as tape:
        result = run_backup(tape, str(tree), options(tmp_path, verify=True), out=io.StringIO())
    assert result.exit_code == 0 and result.verified is None
    listing = subprocess.run(["tar", "-tf", str(out), "-b", "20"], capture_output=True, text=True, check=True)
    assert listing.stdout.split()[0] == "etc/" and "rescue-label.json" not in listing.stdout
    _, members = open_catalog(result.catalog_path)
    assert len(list(members)) == len(listing.stdout.split())


def test_catalog_dir_and_image_inside_the_tree_are_not_archived_while_written(tmp_path, tree):
    catalogs = tree / "var/lib/rescue/catalogs"
    tap = tree / "night.tap"
    first = backup(tmp_path, tree, tap, catalog_dir=str(catalogs))
    second = backup(tmp_path, tree, tap, catalog_dir=str(catalogs))
    assert first.exit_code == second.exit_code == 0, second.warnings
    _, members = open_catalog(second.catalog_path)
    paths = [m.path for m in members]
    kept = os.path.basename(os.path.dirname(first.catalog_path))
    assert f"var/lib/rescue/catalogs/{kept}/catalog.jsonl.gz" in paths  # last night's catalog is backed up
    assert not [p for p in paths if ".incoming-" in p or p == "night.tap"]


def test_offline_drive_is_refused_before_anything_is_written(tmp_path, tree):
    from rescue.tape.base import NoMediumError

    tap = tmp_path / "night.tap"
    with SimhTape(str(tap), write=True) as tape:
        tape.offline()
        with pytest.raises(NoMediumError, match=f"backup aborted: {tap}: no tape loaded"):
            run_backup(tape, str(tree), options(tmp_path), out=io.StringIO())
    assert tap.stat().st_size == 0


def test_old_catalogs_beyond_keep_and_dead_work_dirs_are_pruned(tmp_path, tree):
    tap = tmp_path / "night.tap"
    results = [backup(tmp_path, tree, tap, keep_catalogs=2) for _ in range(3)]
    catalogs = tmp_path / "catalogs"
    dead = catalogs / ".incoming-dead"
    dead.mkdir()
    os.utime(dead, (1, 1))
    fresh = catalogs / ".incoming-running"
    fresh.mkdir()
    results.append(backup(tmp_path, tree, tap, keep_catalogs=2))
    kept = sorted(os.listdir(catalogs))
    expected = sorted(os.path.basename(os.path.dirname(r.catalog_path)) for r in results[-2:])
    assert kept == sorted([*expected, ".incoming-running"])


def test_verify_names_members_lost_to_a_damaged_header_and_goes_on(tmp_path, tree):

    tap = tmp_path / "night.tap"
    result = backup(tmp_path, tree, tap)
    _, members = open_catalog(result.catalog_path)
    victim = next(m for m in members if m.path == "root/.bashrc")
    pieces = split_tape(str(tap), str(tmp_path))
    archive = open(pieces[1], "rb").read()
    at = victim.record * RECORD + victim.offset
    headers = [at]
    if archive[at + 156 : at + 157] == b"x":  # a pax header, then the ustar header: damage both
        size = int(archive[at + 124 : at + 136].rstrip(b"\0 ") or b"0", 8)
        headers.append(at + 512 + (size + 511) // 512 * 512)
    image = bytearray(tap.read_bytes())
    for pos in headers:
        where = bytes(image).find(archive[pos : pos + 512])
        image[where + 20] ^= 0xFF  # the header's checksum no longer matches
    tap.write_bytes(bytes(image))
    problems = verify_differences(tap, result.catalog_path)
    assert "root/.bashrc: missing on tape (the catalog names it)" in problems
    assert any(p.startswith("(archive): damaged from record") for p in problems)
    assert not [p for p in problems if p.startswith(("home/", "var/", "usr/"))]  # later members verified
