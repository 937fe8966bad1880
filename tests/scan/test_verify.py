"""`rescue verify`: the archive against its catalog, and against a live tree like `tar --compare`."""

from __future__ import annotations

import io
import json
import os
import shutil

import pytest

from rescue.cli import main
from rescue.scan import verify as verify_module
from rescue.scan.verify import MIN_SIZE, VerifyOptions, run_verify
from rescue.tape import open_tape
from tests.support import need_tool
from tests.support.tapes import catalog_members, gnu_tar, make_tree, write_catalog_file, write_tap

RS = 10240


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_tool("tar")
    base = tmp_path_factory.mktemp("verify")
    tree = make_tree(str(base / "tree"))
    tar = gnu_tar(tree, str(base / "a.tar"), fmt="posix")
    return {
        "tree": tree,
        "tar": tar,
        "tap": write_tap(str(base / "set.tap"), tar, RS),
        "bare": write_tap(str(base / "bare.tap"), tar, RS, rescue_set=False),
    }


def verify(tap, **kw):
    opts = VerifyOptions(messages=io.StringIO(), results=io.StringIO(), **kw)
    with open_tape(tap) as tape:
        return run_verify(tape, opts)


def test_a_good_tape_verifies_against_its_catalog(world):
    result = verify(world["tap"])
    assert result.exit_code == 0, result.differences
    assert result.members == result.catalog_members == len(catalog_members(world["tar"], RS))


def test_a_changed_checksum_size_and_missing_member_are_reported(world, tmp_path):
    members = catalog_members(world["tar"], RS)
    by_path = {m.path: m for m in members}
    by_path["etc/passwd"].sha256 = "0" * 64
    by_path["var/www/index.html"].size += 1
    members.remove(by_path["etc/hostname"])
    cat = write_catalog_file(str(tmp_path / "c.jsonl.gz"), members, RS)
    result = verify(world["tap"], catalog=cat)
    assert result.exit_code == 1
    text = "\n".join(result.differences)
    assert "etc/passwd: SHA-256 differs" in text
    assert "var/www/index.html: size" in text
    assert "etc/hostname: on tape but not in the catalog" in text
    assert "members on tape" in text  # the counts differ


def test_a_bad_record_is_reported(world, tmp_path):
    big = next(m for m in catalog_members(world["tar"], RS) if m.path == "var/www/big.bin")
    tap = write_tap(str(tmp_path / "bad.tap"), world["tar"], RS, bad_records=[big.record + 2])
    result = verify(tap)
    assert result.exit_code == 1
    assert any(d.startswith("var/www/big.bin: unreadable") for d in result.differences)


def test_against_the_live_tree_finds_nothing_then_each_kind_of_change(world, tmp_path):
    assert verify(world["bare"], against=world["tree"]).exit_code == 0
    live = str(tmp_path / "live")
    shutil.copytree(world["tree"], live, symlinks=True)
    # copytree breaks the hard link and does not keep owners; put back what tar --compare looks at.
    for dirpath, dirs, files in os.walk(world["tree"]):
        for name in dirs + files:
            src = os.path.join(dirpath, name)
            dst = os.path.join(live, os.path.relpath(src, world["tree"]))
            st = os.lstat(src)
            os.lchown(dst, st.st_uid, st.st_gid)
            if not os.path.islink(dst):
                os.chmod(dst, st.st_mode & 0o7777)  # chown cleared setuid
    os.unlink(os.path.join(live, "usr/bin/tool"))
    os.link(os.path.join(live, "opt/tool-link"), os.path.join(live, "usr/bin/tool"))
    assert verify(world["bare"], against=live).exit_code == 0
    with open(os.path.join(live, "etc/passwd"), "r+b") as f:
        f.write(b"R")  # same size, other content
    os.utime(os.path.join(live, "etc/passwd"), (1_600_000_000, 1_600_000_000))
    os.chmod(os.path.join(live, "etc/hostname"), 0o600)
    os.chown(os.path.join(live, "var/www/index.html"), 5, 5)
    os.utime(os.path.join(live, "var/www/big.bin"), (1, 1))
    os.unlink(os.path.join(live, "opt/tool-symlink"))
    os.symlink("elsewhere", os.path.join(live, "opt/tool-symlink"))
    os.unlink(os.path.join(live, "usr/bin/tool"))
    shutil.copy(os.path.join(live, "opt/tool-link"), os.path.join(live, "usr/bin/tool"))
    os.unlink(os.path.join(live, "data/d03/f1.bin"))
    result = verify(world["bare"], against=live)
    assert result.exit_code == 1
    assert set(result.differences) == {
        "etc/passwd: Contents differ",
        "etc/hostname: Mode differs",
        "var/www/index.html: Uid differs",
        "var/www/index.html: Gid differs",
        "var/www/big.bin: Mod time differs",
        "opt/tool-symlink: Symlink differs",
        "usr/bin/tool: Not linked to opt/tool-link",
        "data/d03/f1.bin: Warning: Cannot stat: No such file or directory",
    }


def test_verify_cli_json(world, capsys):
    code = main(["-f", world["tap"], "verify", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["exit_code"] == 0 and summary["members"] == summary["catalog_members"] > 0


def test_verify_blank_tape_is_fatal(tmp_path, capsys):
    (tmp_path / "b.tap").write_bytes(b"")
    assert main(["-f", str(tmp_path / "b.tap"), "verify"]) == 2
    assert "blank" in capsys.readouterr().err


def test_a_file_spanning_many_records_is_checked_whole(tmp_path):
    need_tool("tar")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "large.bin").write_bytes(os.urandom(800_123))
    tar = gnu_tar(str(tree), str(tmp_path / "a.tar"), fmt="posix")
    tap = write_tap(str(tmp_path / "set.tap"), tar, RS)
    assert verify(tap).exit_code == 0
    members = catalog_members(tar, RS)
    large = next(m for m in members if m.path == "large.bin")
    large.sha256 = large.sha256[::-1]
    result = verify(tap, catalog=write_catalog_file(str(tmp_path / "c.jsonl.gz"), members, RS))
    assert result.exit_code == 1
    assert any(d.startswith("large.bin: SHA-256 differs") for d in result.differences)


@pytest.mark.parametrize("cpus", [1, 2], ids=["in-line", "second-thread"])
def test_large_live_files_are_compared_whole_whether_hashed_in_line_or_in_a_second_thread(
    tmp_path, mocker, cpus
):
    """A live file of MIN_SIZE bytes or more is hashed in a second thread when a second CPU is there: the same
    differences, including a change in its last byte and one that leaves nothing readable."""
    need_tool("tar")
    mocker.patch("rescue.scan.verify.usable_cpus", return_value=cpus)
    early = mocker.spy(verify_module, "live_sha256")
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("a.bin", "b.bin", "c.bin"):
        (tree / name).write_bytes(os.urandom(MIN_SIZE + 1000))
    tap = write_tap(str(tmp_path / "set.tap"), gnu_tar(str(tree), str(tmp_path / "a.tar"), fmt="posix"), RS)
    assert verify(tap, against=str(tree)).exit_code == 0
    data = bytearray((tree / "b.bin").read_bytes())
    data[-1] ^= 1
    st = os.stat(tree / "b.bin")
    (tree / "b.bin").write_bytes(bytes(data))
    os.utime(tree / "b.bin", ns=(st.st_atime_ns, st.st_mtime_ns))
    (tree / "c.bin").unlink()
    (tree / "c.bin").mkdir()  # the early read of a directory fails: the type check reports it
    result = verify(tap, against=str(tree))
    assert sorted(result.differences) == ["b.bin: Contents differ", "c.bin: File type differs"]
    assert early.call_count == (6 if cpus > 1 else 0)  # three files, two runs
