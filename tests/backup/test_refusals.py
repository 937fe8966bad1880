"""The guards of `rescue backup`, through the command line: message and exit code for each refusal."""

from __future__ import annotations

import io
import os
import shutil

import pytest

from rescue.backup.guards import check_device
from rescue.backup.job import BackupOptions, run_backup
from rescue.cli import main
from rescue.tape.base import NoMediumError, Tape, TapeStatus
from rescue.tape.faults import FaultyTape
from rescue.tape.simh import SimhTape
from tests.support.backups import backup_config, make_tree


@pytest.fixture
def setup(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    make_tree(root)
    conf = backup_config(tmp_path)
    monkeypatch.delenv("TAPE", raising=False)
    tap = str(tmp_path / "night.tap")

    def rescue(*args):
        return main(["-f", tap, "backup", str(root), "--config", str(conf), *args])

    return root, tap, rescue


def test_tape_inside_its_retention_period_is_not_overwritten(setup, capsys):
    root, tap, rescue = setup
    assert rescue("--retention", "7") == 0
    capsys.readouterr()
    assert rescue() == 2
    err = capsys.readouterr().err
    assert (
        "refusing to overwrite the backup of" in err and "kept until" in err and "--ignore-retention" in err
    )
    assert err.count("\n") == 1 and "Traceback" not in err
    assert rescue("--ignore-retention") == 0


def test_tape_of_another_host_is_not_overwritten(setup, tmp_path, capsys):
    root, tap, rescue = setup
    with SimhTape(tap, write=True) as tape:
        opts = BackupOptions(
            record_size=10240, catalog_dir=str(tmp_path / "other"), spool_dir=str(tmp_path / "sp")
        )
        opts.host = "db7"
        run_backup(tape, str(root), opts, out=io.StringIO())
    assert rescue() == 2
    err = capsys.readouterr().err
    assert "refusing to overwrite the backup of host 'db7'" in err and "--allow-other-host" in err
    assert rescue("--allow-other-host") == 0


def test_shrink_guard_refuses_a_backup_that_lost_files(setup, capsys):
    root, tap, rescue = setup
    for i in range(40):
        (root / "home/ann" / f"mail{i}").write_text("m" * 1000)
    assert rescue() == 0
    shutil.rmtree(root / "home")  # a dying file system looks like this
    capsys.readouterr()
    assert rescue() == 2
    err = capsys.readouterr().err
    assert "shrink guard" in err and "home: members" in err  # per top-level directory
    last = err.strip().splitlines()[-1]
    assert last.startswith("rescue: refusing to write: the backup shrank by") and "--force" in last
    assert "most in home (-43 members)" in last
    assert rescue("--force") == 0
    # The forced backup is the new reference: the next night passes.
    assert rescue() == 0


def test_shrink_threshold_is_configurable(setup, capsys):
    root, tap, rescue = setup
    assert rescue() == 0
    os.unlink(root / "home/ann/notes.txt")  # a small drop in bytes and members
    assert rescue("--shrink-threshold", "1") == 2
    assert rescue("--shrink-threshold", "off") == 0


def test_write_protected_tape_is_refused(setup, monkeypatch, capsys):
    root, tap, rescue = setup
    open(tap, "wb").close()
    monkeypatch.setattr(
        "rescue.tape.operations.open_drive",
        lambda dev, write, online: SimhTape(dev, write=write, write_protected=True),
    )
    assert rescue() == 2
    err = capsys.readouterr().err
    assert (
        err == f"rescue: backup aborted: {tap}: the tape is write protected; slide its write-protect tab or "
        "load another\n"
    )
    assert os.path.getsize(tap) == 0


def test_no_medium_is_refused_naming_the_device(setup, monkeypatch, capsys):
    root, tap, rescue = setup
    monkeypatch.setattr(
        "rescue.tape.operations.open_drive",
        lambda dev, write, online: FaultyTape(SimhTape(dev, write=write), offline_after=0),
    )
    assert rescue() == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rescue: backup aborted: {tap}: drive offline (no medium)")
    assert not os.path.exists(os.path.join(os.path.dirname(tap), "catalogs"))


def test_missing_device_directory_is_a_one_line_error(tmp_path, capsys):
    assert main(["-f", str(tmp_path / "nodir/x.tap"), "backup", str(tmp_path), "--config", os.devnull]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rescue: ") and err.count("\n") == 1


class _StubDrive(Tape):
    """Status only: the unit layer of check_device (a real st drive is exercised in the drill)."""

    kind = "st"
    name = "/dev/nst0"

    def __init__(self, **status):
        self._status = TapeStatus(device=self.name, kind="st", **status)
        self.block_sizes = []

    def status(self):
        return self._status

    def set_block_size(self, size):
        self.block_sizes.append(size)


def test_drive_in_fixed_block_mode_is_switched_to_variable_blocks():
    drive = _StubDrive(block_size=512)
    check_device(drive)
    assert drive.block_sizes == [0]
    drive = _StubDrive(block_size=0)
    check_device(drive)
    assert drive.block_sizes == []


def test_open_door_reads_as_no_tape():
    with pytest.raises(NoMediumError, match="/dev/nst0: no tape loaded"):
        check_device(_StubDrive(door_open=True))


def _interrupt(tap: str) -> None:
    """Cut the image after a few archive records, as a backup killed mid-archive leaves it."""
    from tests.support.tapes import tap_records

    start, length = tap_records(tap)[1][2]
    with open(tap, "r+b") as f:
        f.truncate(start + length + 4)


def test_an_interrupted_backup_does_not_hold_its_retention_lock(setup, capsys):
    root, tap, rescue = setup
    assert rescue("--retention", "7") == 0
    _interrupt(tap)
    capsys.readouterr()
    assert main(["-f", tap, "label", "--config", "/dev/null"]) == 0
    assert "set:          incomplete" in capsys.readouterr().out
    assert rescue() == 0
    err = capsys.readouterr().err
    assert "is incomplete (no catalog: it did not finish); its retention until" in err


def test_a_refusal_marks_an_incomplete_set(setup, tmp_path, capsys):
    root, tap, rescue = setup
    with SimhTape(tap, write=True) as tape:
        opts = BackupOptions(
            record_size=10240, catalog_dir=str(tmp_path / "o"), spool_dir=str(tmp_path / "s")
        )
        opts.host = "db7"
        run_backup(tape, str(root), opts, out=io.StringIO())
    _interrupt(tap)
    assert rescue() == 2
    assert "(written" in (err := capsys.readouterr().err) and ", an incomplete set)" in err
