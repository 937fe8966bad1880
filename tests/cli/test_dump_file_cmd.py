"""`rescue dump-file N -o FILE`: one tape file out to a plain file, which real GNU tar then reads."""

from __future__ import annotations

import subprocess

import pytest

from rescue.cli import main
from tests.support import need_tool
from tests.support.backups import backup, make_tree
from tests.support.tapes import flip_bytes, tap_records


@pytest.fixture
def night(tmp_path, monkeypatch):
    need_tool("tar")
    monkeypatch.delenv("TAPE", raising=False)
    tree = tmp_path / "tree"
    make_tree(tree)
    tap = tmp_path / "night.tap"
    return str(tap), backup(tmp_path, tree, tap), tree


def tar(*args, **kw):
    return subprocess.run(["tar", *args], capture_output=True, text=True, check=True, **kw)


def test_dumped_tape_files_are_read_by_gnu_tar(night, tmp_path, capsys):
    tap, result, tree = night
    files = [tmp_path / f"file{n}.tar" for n in range(3)]
    for n, out in enumerate(files):
        assert main(["-f", tap, "dump-file", str(n), "-o", str(out), "--config", "/dev/null"]) == 0
    assert f"tape file 1: {result.records} records" in capsys.readouterr().err
    # Label: RESTORE.txt names the exact tar command; archive: GNU tar extracts it; catalog: its three members.
    assert "tar -xpf /dev/nst0 -b 20" in tar("-xOf", str(files[0]), "RESTORE.txt").stdout
    (tmp_path / "x").mkdir()
    tar("-xpf", str(files[1]), "-b", "20", "--numeric-owner", "-C", str(tmp_path / "x"))
    assert (tmp_path / "x/etc/ssh/sshd_config").read_bytes() == (tree / "etc/ssh/sshd_config").read_bytes()
    assert (tmp_path / "x/boot/vmlinuz").read_bytes() == (tree / "boot/vmlinuz").read_bytes()
    assert tar("-tf", str(files[2])).stdout.split() == ["catalog.jsonl.gz", "filelist.txt", "summary.json"]


def test_dump_without_a_number_takes_the_tape_file_rescue_mt_left_the_tape_at(night, tmp_path):
    tap, result, tree = night
    assert main(["-f", tap, "mt", "fsf", "1"]) == 0
    out = tmp_path / "archive.tar"
    assert main(["-f", tap, "dump-file", "-o", str(out), "--config", "/dev/null"]) == 0
    assert "etc/hostname" in tar("-tf", str(out)).stdout.split()


def test_a_bad_record_is_left_out_and_gnu_tar_reads_on(night, tmp_path, capsys):
    tap, result, tree = night
    from tests.support.tapes import _flag_bad

    _flag_bad(tap, [1], archive_file=1)
    out = tmp_path / "archive.tar"
    assert main(["-f", tap, "dump-file", "1", "-o", str(out), "--config", "/dev/null"]) == 1
    err = capsys.readouterr().err
    assert "record 1 of the tape file is unreadable, left out" in err and "1 unreadable record(s)" in err
    listed = subprocess.run(["tar", "-tf", str(out)], capture_output=True, text=True)
    assert "etc/hostname" in listed.stdout and "var/www/index.html" in listed.stdout


def test_an_existing_file_is_not_overwritten_and_a_missing_tape_file_is_named(night, tmp_path, capsys):
    tap, result, tree = night
    out = tmp_path / "keep"
    out.write_text("mine")
    assert main(["-f", tap, "dump-file", "1", "-o", str(out), "--config", "/dev/null"]) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "mine"
    assert main(["-f", tap, "dump-file", "1", "-o", str(out), "--force", "--config", "/dev/null"]) == 0
    assert main(["-f", tap, "dump-file", "7", "-o", str(tmp_path / "n"), "--config", "/dev/null"]) == 2
    assert "there is no tape file 7" in capsys.readouterr().err
    assert not (tmp_path / "n").exists() and not (tmp_path / "n.part").exists()


def test_a_tap_with_a_damaged_label_still_gives_gnu_tar_its_archive(night, tmp_path):
    tap, result, tree = night
    flip_bytes(tap, [tap_records(tap)[0][0][0] + 5])
    out = tmp_path / "archive.tar"
    assert main(["-f", tap, "dump-file", "1", "-o", str(out), "--config", "/dev/null"]) == 0
    assert "root/.bashrc" in tar("-tf", str(out)).stdout.split()
