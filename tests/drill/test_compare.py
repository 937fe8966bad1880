"""The drill's tree comparison (drill/guest/compare.py) finds each kind of difference a bad restore could leave."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from drill.guest import compare
from tests.support import need


@pytest.fixture
def trees(tmp_path):
    need(os.geteuid() == 0, "owners and device nodes need root")
    a = tmp_path / "orig"
    (a / "etc").mkdir(parents=True)
    (a / "etc/passwd").write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    (a / "home/alice").mkdir(parents=True)
    (a / "home/alice/note").write_bytes(b"note\n")
    os.chown(a / "home/alice/note", 1000, 1000)
    os.setxattr(a / "home/alice/note", "user.tag", b"drill")
    os.link(a / "home/alice/note", a / "home/alice/note-link")
    os.symlink("../../etc/passwd", a / "home/alice/pw")
    (a / "lost+found").mkdir()  # a restore leaves it out by default: not compared
    b = tmp_path / "restored"
    subprocess.run(["cp", "-a", str(a), str(b)], check=True)
    return a, b


def test_an_exact_copy_has_no_differences(trees):
    a, b = trees
    entries, diffs, links = compare.compare(str(a), str(b), [])
    assert diffs == [] and entries == 7 and links == 1


def test_content_owner_mode_xattr_symlink_and_missing_entries_are_differences(trees):
    a, b = trees
    (b / "etc/passwd").write_bytes(b"root:x:0:0::/root:/bin/bash\n")
    os.chown(b / "home/alice/note", 1001, 1000)
    os.chmod(b / "home/alice", 0o700)
    os.removexattr(b / "home/alice/note", "user.tag")
    os.unlink(b / "home/alice/pw")
    os.symlink("/etc/passwd", b / "home/alice/pw")
    (b / "extra").write_bytes(b"")
    _, diffs, _ = compare.compare(str(a), str(b), [])
    kinds = {d.split(":")[0] for d in diffs}
    assert {
        "sha256 differs",
        "size differs",
        "uid differs",
        "mode differs",
        "xattrs differs",
        "target differs",
    } <= kinds
    assert "extra: extra" in diffs


def test_a_hard_link_restored_as_a_copy_is_a_difference(trees):
    a, b = trees
    os.unlink(b / "home/alice/note-link")
    shutil.copy2(b / "home/alice/note", b / "home/alice/note-link")
    _, diffs, _ = compare.compare(str(a), str(b), [])
    assert any(d.startswith("hard links lost") for d in diffs)


def test_only_compares_the_selected_subtrees(trees):
    a, b = trees
    shutil.rmtree(b / "etc")
    _, diffs, _ = compare.compare(str(a), str(b), ["home/alice"])
    assert diffs == []
    _, diffs, _ = compare.compare(str(a), str(b), ["etc"])
    assert "missing: etc/passwd" in diffs


def test_what_recover_adds_by_design_is_not_a_difference_but_anything_else_is(trees):
    a, b = trees
    (b / "var/log/rescue").mkdir(parents=True)
    (b / "var/log/rescue/recover.log").write_bytes(b"log\n")
    (b / "var/log/other.log").write_bytes(b"")
    (b / "etc/passwd").write_bytes(b"changed\n")
    _, diffs, _ = compare.compare(str(a), str(b), [], ["var/log/rescue", "etc"])
    # The added log and its new parents are by design; another new file and what the original has are compared.
    assert sorted(d.split(":")[0] + ":" + d.split(":")[1] for d in diffs) == [
        "extra: var/log/other.log",
        "sha256 differs: etc/passwd",
        "size differs: etc/passwd",
    ]
