"""`catalog rebuild`: one scan of a tape written by GNU tar gives a catalog with the right positions and checksums."""

from __future__ import annotations

import io

import pytest

from rescue.scan.rebuild import rebuild_catalog
from rescue.tape import open_tape
from rescue.tapeset.catalog import open_catalog
from tests.support import need_tool
from tests.support.tapes import BACKUP_ID, catalog_members, gnu_tar, make_tree, write_tap


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    need_tool("tar")
    return make_tree(str(tmp_path_factory.mktemp("tree")))


def _compare(catalog_path, tar_path, record_size):
    header, members = open_catalog(catalog_path)
    got = [(m.path, m.type, m.size, m.record, m.offset, m.sha256, m.linkname) for m in members]
    want = [
        (m.path, m.type, m.size, m.record, m.offset, m.sha256, m.linkname)
        for m in catalog_members(tar_path, record_size)
    ]
    assert got == want
    return header


@pytest.mark.parametrize("fmt,blocking", [("gnu", 20), ("posix", 7), ("ustar", 64)])
def test_rebuild_of_a_plain_gnu_tar_tape_matches_the_archive(tree, tmp_path, fmt, blocking):
    tar = gnu_tar(tree, str(tmp_path / "a.tar"), blocking=blocking, fmt=fmt)
    tap = write_tap(str(tmp_path / "a.tap"), tar, blocking * 512, rescue_set=False)
    out = str(tmp_path / "catalog.jsonl.gz")
    with open_tape(tap) as tape:
        result = rebuild_catalog(tape, out, messages=io.StringIO())
    assert result.exit_code == 0 and result.record_size == blocking * 512
    header = _compare(out, tar, blocking * 512)
    assert header["archive_file"] == 0 and header["record_size"] == blocking * 512
    assert header["backup_id"] is None
    # One scan: every record of the archive once, nothing more.
    assert result.records_read == len(open(tar, "rb").read()) // (blocking * 512)


def test_rebuild_of_a_rescue_set_reads_tape_file_1_and_keeps_the_backup_id(tree, tmp_path):
    tar = gnu_tar(tree, str(tmp_path / "a.tar"), blocking=20, fmt="posix")
    tap = write_tap(str(tmp_path / "a.tap"), tar, 10240)
    out = str(tmp_path / "c.jsonl.gz")
    with open_tape(tap) as tape:
        rebuild_catalog(tape, out, messages=io.StringIO())
    header = _compare(out, tar, 10240)
    assert header["backup_id"] == BACKUP_ID and header["archive_file"] == 1


def test_rebuild_leaves_out_members_in_a_bad_record_and_names_them(tree, tmp_path):
    tar = gnu_tar(tree, str(tmp_path / "a.tar"), blocking=20)
    members = catalog_members(tar, 10240)
    big = next(m for m in members if m.path == "var/www/big.bin")
    bad = big.record + 3  # inside big.bin's data
    tap = write_tap(str(tmp_path / "a.tap"), tar, 10240, rescue_set=False, bad_records=[bad])
    out = str(tmp_path / "c.jsonl.gz")
    msgs = io.StringIO()
    with open_tape(tap) as tape:
        result = rebuild_catalog(tape, out, messages=msgs)
    assert result.exit_code == 1
    assert "var/www/big.bin" in result.lost
    _, got = open_catalog(out)
    paths = [m.path for m in got]
    assert "var/www/big.bin" not in paths
    assert "var/www/index.html" in paths and paths[-1] == members[-1].path
    assert "var/www/big.bin" in msgs.getvalue()


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_rebuild_checksums_a_sparse_file_over_its_data_regions(tmp_path, fmt):
    need_tool("tar")
    import hashlib
    import subprocess

    root = tmp_path / "t"
    root.mkdir()
    with open(root / "sparse.img", "wb") as f:
        f.seek(100_000)
        f.write(b"middle" * 1000)
        f.seek(500_000)
        f.write(b"end")
        f.truncate(800_000)
    content = (root / "sparse.img").read_bytes()
    tar = str(tmp_path / "s.tar")
    subprocess.run(
        ["tar", "-cSf", tar, "-b", "20", f"--format={fmt}", "-C", str(root), "sparse.img"], check=True
    )
    tap = write_tap(str(tmp_path / "s.tap"), tar, 10240, rescue_set=False)
    out = str(tmp_path / "c.jsonl.gz")
    with open_tape(tap) as tape:
        rebuild_catalog(tape, out, messages=io.StringIO())
    (m,) = list(open_catalog(out)[1])
    assert m.path == "sparse.img" and m.size == 800_000 and m.sparse
    # The writer's and the extractor's digest: the data regions in map order.
    want = hashlib.sha256(b"".join(content[o : o + n] for o, n in m.sparse)).hexdigest()
    assert m.sha256 == want


def test_catalog_rebuild_cli_writes_the_file_and_a_json_summary(tree, tmp_path, capsys):
    import json

    from rescue.cli import main

    tar = gnu_tar(tree, str(tmp_path / "a.tar"), blocking=20)
    tap = write_tap(str(tmp_path / "a.tap"), tar, 10240, rescue_set=False)
    out = str(tmp_path / "rebuilt.jsonl.gz")
    assert main(["-f", tap, "catalog", "rebuild", "-o", out, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["members"] == len(catalog_members(tar, 10240)) and summary["output"] == out
    _compare(out, tar, 10240)
