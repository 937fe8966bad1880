"""`rescue label` from the command line: the label's rows, --json, --restore-text, and a tape without a label."""

from __future__ import annotations

import json

import pytest

from rescue.cli import main
from tests.support import need_tool
from tests.support.tapes import BACKUP_ID, gnu_tar, make_tree, write_tap

RS = 10240


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_tool("tar")
    base = tmp_path_factory.mktemp("label-cmd")
    tar = gnu_tar(make_tree(str(base / "tree")), str(base / "a.tar"))
    return {
        "tap": write_tap(str(base / "set.tap"), tar, RS, host="web1"),
        "bare": write_tap(str(base / "bare.tap"), tar, RS, rescue_set=False),
    }


def run(capsys, *argv):
    code = main([str(a) for a in [*argv, "--config", "/dev/null"]])
    out, err = capsys.readouterr()
    return code, out, err


def test_label_rows_name_host_id_and_record_size(world, capsys):
    code, out, err = run(capsys, "label", "-f", world["tap"])
    assert (code, err) == (0, "")
    rows = dict(line.split(":", 1) for line in out.splitlines())
    assert rows["host"].strip() == "web1" and rows["backup id"].strip() == BACKUP_ID
    assert rows["record size"].strip() == f"{RS} bytes (tar -b {RS // 512})"


def test_label_json_and_restore_text(world, capsys):
    code, out, _ = run(capsys, "-f", world["tap"], "label", "--json")
    assert code == 0 and json.loads(out)["backup_id"] == BACKUP_ID
    code, out, _ = run(capsys, "label", "-f", world["tap"], "--restore-text")
    assert code == 0 and "mt -f" in out and f"-b {RS // 512}" in out


def test_a_plain_tar_tape_has_no_label_one_line_exit_2(world, capsys):
    code, out, err = run(capsys, "label", "-f", world["bare"])
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith(f"rescue: {world['bare']}: no rescue label") and "catalog rebuild" in err
