"""`rescue list` and `rescue label`: the catalog from the tape (spacing straight to file 2) or from a file."""

from __future__ import annotations

import json
import subprocess

import pytest

from rescue.cli import main
from rescue.tape.simh import SimhTape
from rescue.tapeset.catalog import open_catalog
from tests.support import need_tool
from tests.support.backups import backup, make_tree


@pytest.fixture
def night(tmp_path, monkeypatch):
    monkeypatch.delenv("TAPE", raising=False)
    tree = tmp_path / "tree"
    make_tree(tree)
    tap = tmp_path / "night.tap"
    result = backup(tmp_path, tree, tap, host="web1")
    return str(tap), result


def test_list_from_tape_reads_only_label_and_catalog(night, monkeypatch, capsys):
    tap, result = night
    opened = []

    def counting_open(dev, write=False):
        opened.append(SimhTape(dev, write=write))
        return opened[-1]

    monkeypatch.setattr("rescue.tape.operations.open_drive", counting_open)
    assert main(["-f", tap, "list", "--config", "/dev/null"]) == 0
    lines = capsys.readouterr().out.splitlines()
    _, members = open_catalog(result.catalog_path)
    assert len(lines) == len(list(members))
    assert any(line.endswith(" etc/hostname") and line.startswith("-rw-r--r-- ") for line in lines)
    # Label records, then a space over the archive: not one archive record was read.
    label_and_catalog = opened[0].records_read
    with SimhTape(tap) as tape:
        tape.space_files(1)
        archive_records = 0
        while tape.read_record(1 << 20):
            archive_records += 1
    assert archive_records == result.records and label_and_catalog < archive_records


def test_list_selects_paths_and_prints_json(night, capsys):
    tap, result = night
    assert main(["-f", tap, "list", "--json", "--config", "/dev/null", "etc", "var/www/index.html"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["path"] for r in rows) == [
        "etc",
        "etc/hostname",
        "etc/ssh",
        "etc/ssh/sshd_config",
        "var/www/index.html",
    ]
    assert all(len(r["sha256"]) == 64 for r in rows if r["type"] == "file")


def test_list_from_a_catalog_file_and_a_missing_path(night, capsys):
    tap, result = night
    assert main(["list", "--catalog", result.catalog_path, "root/.bashrc", "no/such"]) == 2
    captured = capsys.readouterr()
    assert captured.out.rstrip().endswith(" root/.bashrc")
    assert captured.err == "rescue: no/such: not found in the catalog\n"


def test_filelist_matches_gnu_tar_verbose_listing(night, tmp_path, capsys):
    need_tool("tar")
    tap, result = night
    from tests.support.tapes import split_tape

    pieces = split_tape(tap, str(tmp_path))
    ours = capsys.readouterr() and main(["list", "--catalog", result.catalog_path])
    assert ours == 0
    listed = capsys.readouterr().out
    tar = subprocess.run(["tar", "-tvf", pieces[1], "-b", "20"], capture_output=True, text=True, check=True)
    assert listed == tar.stdout


def test_label_prints_host_and_restore_text(night, capsys):
    tap, result = night
    assert main(["-f", tap, "label", "--config", "/dev/null"]) == 0
    out = capsys.readouterr().out
    assert "host:         web1" in out and result.backup_id in out and "tar -b 20" in out
    assert main(["-f", tap, "label", "--json", "--config", "/dev/null"]) == 0
    assert json.loads(capsys.readouterr().out)["layout"] == {"format": "test"}
    assert main(["-f", tap, "label", "--restore-text", "--config", "/dev/null"]) == 0
    assert "tar -xpf /dev/nst0 -b 20 --xattrs" in capsys.readouterr().out


def test_plain_tar_tape_has_no_label_to_list(tmp_path, capsys, monkeypatch):
    need_tool("tar")
    monkeypatch.delenv("TAPE", raising=False)
    (tmp_path / "f").write_text("x")
    data = subprocess.run(
        ["tar", "-cf", "-", "-C", str(tmp_path), "f"], capture_output=True, check=True
    ).stdout
    tap = str(tmp_path / "plain.tap")
    with SimhTape(tap, write=True) as tape:
        tape.write_record(data)
        tape.write_filemarks(1)
    assert main(["-f", tap, "list", "--config", "/dev/null"]) == 2
    assert "no rescue label" in capsys.readouterr().err
    assert main(["-f", tap, "label", "--config", "/dev/null"]) == 2
