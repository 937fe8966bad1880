"""`rescue catalog rebuild` from the command line: -f after the operation, the catalog it writes (positions that
restore can seek with), --json, and one-line errors."""

from __future__ import annotations

import json

import pytest

from rescue.cli import main
from rescue.tapeset.catalog import open_catalog
from tests.support import need_tool
from tests.support.tapes import catalog_members, gnu_tar, make_tree, write_tap

RS = 10240


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_tool("tar")
    base = tmp_path_factory.mktemp("catalog-cmd")
    tar = gnu_tar(make_tree(str(base / "tree")), str(base / "a.tar"))
    return {"tar": tar, "bare": write_tap(str(base / "bare.tap"), tar, RS, rescue_set=False)}


def run(capsys, *argv):
    code = main([str(a) for a in [*argv, "--config", "/dev/null"]])
    out, err = capsys.readouterr()
    return code, out, err


def test_rebuild_writes_a_catalog_with_the_tape_positions(world, tmp_path, capsys):
    out_file = tmp_path / "c.jsonl.gz"
    code, out, err = run(capsys, "catalog", "rebuild", "-f", world["bare"], "-o", out_file, "--json")
    assert code == 0, err
    assert json.loads(out)["exit_code"] == 0
    ours = [(m.path, m.record, m.offset, m.sha256) for m in open_catalog(str(out_file))[1]]
    expected = [(m.path, m.record, m.offset, m.sha256) for m in catalog_members(world["tar"], RS)]
    assert ours == expected


def test_the_rebuilt_catalog_lets_restore_seek(world, tmp_path, capsys):
    out_file = tmp_path / "c.jsonl.gz"
    assert run(capsys, "-f", world["bare"], "catalog", "rebuild", "-o", out_file)[0] == 0
    target = tmp_path / "t"
    target.mkdir()
    code, out, err = run(
        capsys, "restore", "-f", world["bare"], "--catalog", out_file, "-C", target, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["mode"] != "stream"


def test_catalog_without_an_operation_and_a_missing_device_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["catalog"])
    assert e.value.code == 2
    capsys.readouterr()
    code, _, err = run(capsys, "catalog", "rebuild", "-f", tmp_path / "gone.tap", "-o", tmp_path / "c.gz")
    assert code == 2 and err.count("\n") == 1 and "gone.tap" in err
    assert not (tmp_path / "c.gz").exists()
