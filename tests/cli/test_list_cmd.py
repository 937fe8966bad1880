"""`rescue list` and `rescue label`: the catalog from the tape (spacing straight to file 2) or from a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rescue.cli import main
from rescue.tape.simh import SimhTape
from rescue.tapeset.catalog import open_catalog
from tests.support import need_tool
from tests.support.backups import backup, make_tree
from tests.support.tapes import split_tape


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

    def counting_open(dev, write=False, online=False):
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


ODD_NAMES = [
    b"nl\nx",
    b"tab\tx",
    b"back\\x",
    b"ctl\x01x",
    b"del\x7fx",
    b"bad\xe9x",
    "caf\u00e9".encode(),
    b"sp ace",
]


@pytest.fixture
def odd_set(tmp_path):
    need_tool("tar")
    root = tmp_path / "odd"
    (root / "d").mkdir(parents=True)
    for name in ODD_NAMES:
        with open(os.path.join(os.fsencode(root / "d"), name), "wb") as f:
            f.write(name)
    tap = tmp_path / "odd.tap"
    conf = tmp_path / "rescue.conf"
    conf.write_text(
        f"[rescue]\nrecord_size = 10K\ncatalog_dir = {tmp_path / 'cat'}\nspool_dir = {tmp_path / 'sp'}\n"
    )
    assert main(["-f", str(tap), "backup", str(root), "--config", str(conf)]) == 0
    return tap, conf


def test_list_escapes_names_as_gnu_tar_tv_does(odd_set, tmp_path, capsys):
    tap, conf = odd_set
    capsys.readouterr()
    assert main(["list", "-f", str(tap), "--config", str(conf)]) == 0
    ours = capsys.readouterr().out.splitlines()
    archive = split_tape(str(tap), str(tmp_path))[1]
    env = dict(os.environ, LC_ALL="C.UTF-8", TZ=os.environ.get("TZ", "UTC"))
    tar = subprocess.run(["tar", "-tvf", archive, "-b", "20"], capture_output=True, env=env)
    assert tar.returncode == 0, tar.stderr
    theirs = tar.stdout.decode("utf-8").splitlines()
    assert [line.split(" ", 5)[-1] for line in ours] == [line.split(" ", 5)[-1] for line in theirs]
    assert any(line.endswith("d/nl\\nx") for line in ours) and any(
        line.endswith("d/bad\\351x") for line in ours
    )


def test_list_json_is_utf8_and_its_names_select_the_member_again(odd_set, tmp_path, capsys):
    tap, conf = odd_set
    capsys.readouterr()
    assert main(["list", "-f", str(tap), "--json", "--config", str(conf)]) == 0
    raw = capsys.readouterr().out.encode("utf-8")  # a lone surrogate would not encode
    docs = [json.loads(line) for line in raw.decode("utf-8", "strict").splitlines()]
    paths = {d["path"] for d in docs}
    assert {"d/bad\\351x", "d/back\\\\x", "d/nl\nx", "d/caf\u00e9"} <= paths
    for shown in ("d/bad\\351x", "d/back\\\\x"):
        assert main(["list", "-f", str(tap), "--json", "--config", str(conf), shown]) == 0
        assert [json.loads(line)["path"] for line in capsys.readouterr().out.splitlines()] == [shown]
    target = tmp_path / "t"
    target.mkdir()
    # A real process: its stdout must be valid UTF-8 for the name that is not.
    argv = ["restore", "-f", str(tap), "-C", str(target), "--json", "--config", str(conf), "d/bad\\351x"]
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    result = subprocess.run([sys.executable, "-m", "rescue", *argv], capture_output=True, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.decode("utf-8", "strict"))["exit_code"] == 0
    assert os.listdir(os.fsencode(target / "d")) == [b"bad\xe9x"]


def test_a_damaged_catalog_says_so_and_list_no_catalog_reads_the_archive(night, capsys):
    from tests.support.tapes import flip_bytes, tap_records

    tap, result = night
    start, _ = tap_records(tap)[2][0]
    flip_bytes(tap, [start + 512 + 30, start + 512 + 60])
    assert main(["-f", tap, "list", "--config", "/dev/null"]) == 2
    err = capsys.readouterr().err
    assert "tape file 2 (the catalog) is damaged" in err and "list --no-catalog" in err
    assert "rescue-catalog-" not in err and err.count("\n") == 1
    assert main(["-f", tap, "list", "--no-catalog", "--config", "/dev/null", "etc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[-1] for line in lines) == [
        "etc/",
        "etc/hostname",
        "etc/ssh/",
        "etc/ssh/sshd_config",
    ]


def test_list_no_catalog_equals_the_catalog_listing(night, capsys):
    tap, result = night
    assert main(["list", "--catalog", result.catalog_path]) == 0
    from_catalog = capsys.readouterr().out
    assert main(["-f", tap, "list", "--no-catalog", "--config", "/dev/null"]) == 0
    assert capsys.readouterr().out == from_catalog


def test_list_of_an_incomplete_set_says_incomplete(night, capsys):
    from tests.support.tapes import tap_records

    tap, result = night
    with open(tap, "r+b") as f:
        f.truncate(tap_records(tap)[2][0][0] - 4)
    assert main(["-f", tap, "list", "--config", "/dev/null"]) == 2
    err = capsys.readouterr().err
    assert "the backup set is incomplete" in err and "list --no-catalog" in err
    assert main(["-f", tap, "label", "--json", "--config", "/dev/null"]) == 0
    assert json.loads(capsys.readouterr().out)["incomplete"] is True
