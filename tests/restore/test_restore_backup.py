"""The whole round trip on a tape written by `rescue backup`: restore everything, restore a few paths by seeking,
verify, and compare with the tree that was backed up."""

from __future__ import annotations

import io
import os
import socket

import pytest

from rescue.backup.job import BackupOptions, run_backup
from rescue.restore.job import RestoreOptions, run_restore
from rescue.scan.verify import VerifyOptions, run_verify
from rescue.tape import open_tape
from rescue.tape.simh import SimhTape
from tests.support import need_tool
from tests.support.tapes import make_tree, tree_state

RS = 20 * 512


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    need_tool("tar")
    base = tmp_path_factory.mktemp("roundtrip")
    tree = make_tree(str(base / "tree"))
    tap = str(base / "set.tap")
    options = BackupOptions(
        record_size=RS,
        catalog_dir=str(base / "catalogs"),
        spool_dir=str(base / "spool"),
        layout={"format": "test"},
        host=socket.gethostname(),
    )
    with SimhTape(tap, write=True) as tape:
        result = run_backup(tape, tree, options, out=io.StringIO())
    assert result.exit_code == 0, result.warnings
    return {"tree": tree, "tap": tap}


def restore(tap, target, **kw):
    os.makedirs(target, exist_ok=True)
    msgs = io.StringIO()
    with open_tape(tap) as tape:
        result = run_restore(tape, RestoreOptions(target=str(target), messages=msgs, **kw))
    result.text = msgs.getvalue()
    return result


def test_full_restore_of_a_rescue_backup_gives_the_tree_back(backed_up, tmp_path):
    result = restore(backed_up["tap"], tmp_path / "t")
    assert result.exit_code == 0, result.text
    # tmp is a default exclude: the directory comes back with its metadata, its contents do not.
    want = {p: v for p, v in tree_state(backed_up["tree"]).items() if not p.startswith("tmp/")}
    assert "tmp" in want
    assert tree_state(str(tmp_path / "t")) == want
    assert "warning" not in result.text  # the same host: no warning about it


def test_seeking_restore_of_a_rescue_backup(backed_up, tmp_path):
    result = restore(
        backed_up["tap"], tmp_path / "t", paths=["var/www", "data/d10", "data/d01"], seek_threshold=1
    )
    assert result.exit_code == 0, result.text
    assert result.seeks == result.plan.seeks >= 2
    assert result.records_read == result.plan.records
    state = tree_state(str(tmp_path / "t"))
    src = tree_state(backed_up["tree"])
    for path in ("var/www/big.bin", "data/d10/f3.bin", "data/d01/f0.bin"):
        assert state[path] == src[path]
    assert "data/d05" not in state and "etc/passwd" not in state


def test_verify_a_rescue_backup_against_its_catalog_and_the_tree(backed_up):
    with open_tape(backed_up["tap"]) as tape:
        result = run_verify(
            tape, VerifyOptions(against=backed_up["tree"], messages=io.StringIO(), results=io.StringIO())
        )
    assert result.exit_code == 0, result.differences
    assert result.members == result.catalog_members > 50


MOUNT_POINTS = {
    "dev": 0o755,
    "proc": 0o555,
    "sys": 0o555,
    "run": 0o755,
    "tmp": 0o1777,
    "mnt": 0o755,
    "media": 0o755,
}


@pytest.fixture(scope="module")
def system_tree(tmp_path_factory):
    """A root with the mount points a running system has, each holding something the default excludes leave out,
    backed up by `rescue backup` (which archives them empty)."""
    need_tool("tar")
    base = tmp_path_factory.mktemp("system")
    root = base / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text("web1\n")
    for name, mode in MOUNT_POINTS.items():
        (root / name / "inside").mkdir(parents=True)
        (root / name / "inside/file").write_text(name)
        os.chmod(root / name, mode)
    os.chown(root / "media", 1000, 1000)
    for dirpath, _dirs, _files in os.walk(root):
        os.utime(dirpath, (1_500_000_000, 1_500_000_000))
    tap = str(base / "system.tap")
    options = BackupOptions(
        record_size=RS,
        catalog_dir=str(base / "catalogs"),
        spool_dir=str(base / "spool"),
        host=socket.gethostname(),
    )
    with SimhTape(tap, write=True) as tape:
        assert run_backup(tape, str(root), options, out=io.StringIO()).exit_code == 0
    return {"root": str(root), "tap": tap}


@pytest.mark.parametrize("no_catalog", [False, True])  # the catalog pass and the streaming pass
def test_a_full_restore_brings_back_the_mount_points_empty_with_their_metadata(
    system_tree, tmp_path, no_catalog
):
    result = restore(system_tree["tap"], tmp_path / "t", no_catalog=no_catalog)
    assert result.exit_code == 0, result.text
    src = tree_state(system_tree["root"])
    got = tree_state(str(tmp_path / "t"))
    for name, mode in MOUNT_POINTS.items():
        assert got[name] == src[name]  # directory, mode (tmp 1777), owner, mtime
        assert got[name][1] == mode
        assert os.listdir(tmp_path / "t" / name) == []  # the contents stay out
    assert got["media"][2:4] == (1000, 1000)
    assert got == {p: v for p, v in src.items() if p.split("/")[0] not in MOUNT_POINTS or "/" not in p}
