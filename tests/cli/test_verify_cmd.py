"""`rescue verify` from the command line: -f after the command, the progress with its total, exit codes, --json
and its error object, an image taken offline."""

from __future__ import annotations

import json

import pytest

from rescue.cli import main
from rescue.tapeset.catalog import open_catalog
from tests.support import need_tool
from tests.support.tapes import catalog_members, gnu_tar, make_tree, write_catalog_file, write_tap

RS = 10240


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_tool("tar")
    base = tmp_path_factory.mktemp("verify-cmd")
    tree = make_tree(str(base / "tree"))
    tar = gnu_tar(tree, str(base / "a.tar"), fmt="posix")
    return {"tar": tar, "tap": write_tap(str(base / "set.tap"), tar, RS), "base": base}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_good_tape_verifies_with_exit_0_and_progress_names_the_total(world, capsys):
    code, out, err = run(capsys, "verify", "-f", world["tap"], "--config", "/dev/null")
    assert code == 0, err
    members = list(catalog_members(world["tar"], RS))
    data = sum(m.size for m in members if m.type == "file")
    progress = [line for line in err.splitlines() if line.startswith("verify: ")]
    assert progress, err
    assert f"/{len(members)} members" in progress[-1] and "(100%)" in progress[-1], progress
    assert f"verified {len(members)} members, {data} bytes" in err


def test_json_summary_and_differences_exit_1(world, tmp_path, capsys):
    members = catalog_members(world["tar"], RS)
    members[3].sha256 = "0" * 64
    bad = write_catalog_file(str(tmp_path / "c.jsonl.gz"), members, RS)
    code, out, _ = run(
        capsys, "-f", world["tap"], "verify", "--catalog", bad, "--json", "--config", "/dev/null"
    )
    doc = json.loads(out)
    assert code == 1 and doc["exit_code"] == 1 and any(members[3].path in d for d in doc["differences"])
    assert len(list(open_catalog(bad)[1])) == len(members)


def test_a_missing_device_is_one_line_and_one_json_object(tmp_path, capsys):
    code, out, err = run(capsys, "verify", "-f", tmp_path / "gone.tap", "--json", "--config", "/dev/null")
    assert code == 2 and err.count("\n") == 1 and "gone.tap" in err
    assert json.loads(out) == {"exit_code": 2, "errors": [err[len("rescue: ") :].strip()]}


def test_an_image_taken_offline_is_refused(world, tmp_path, capsys):
    tap = tmp_path / "off.tap"
    tap.write_bytes(open(world["tap"], "rb").read())
    assert run(capsys, "mt", "-f", tap, "offline")[0] == 0
    code, _, err = run(capsys, "verify", "-f", tap, "--config", "/dev/null")
    assert code == 2 and err.startswith(f"rescue: {tap}: drive offline")
