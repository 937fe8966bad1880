"""The restore job on .tap images written with real GNU tar: seeking plans, streaming, damage, dry runs."""

from __future__ import annotations

import io
import os

import pytest

from rescue.pathmatch import PathMatcher
from rescue.restore.job import RestoreOptions, run_restore
from rescue.restore.plan import ancestors
from rescue.scan.rebuild import rebuild_catalog
from rescue.tape import open_tape
from rescue.tapeset.catalog import open_catalog
from tests.support import need_tool
from tests.support.tapes import (
    catalog_members,
    gnu_tar,
    make_tree,
    tar_extract,
    tree_state,
    write_tap,
)

RS = 10240  # GNU tar's default record (-b 20): the test archive spans about 75 records

pytestmark = pytest.mark.usefixtures("extract_mode")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tree, its GNU tar archive, a rescue-set .tap, a bare .tap and GNU tar's own full extraction."""
    need_tool("tar")
    base = tmp_path_factory.mktemp("world")
    tree = make_tree(str(base / "tree"))
    tar = gnu_tar(tree, str(base / "a.tar"), blocking=RS // 512, fmt="posix")
    return {
        "tree": tree,
        "tar": tar,
        "tap": write_tap(str(base / "set.tap"), tar, RS),
        "bare": write_tap(str(base / "bare.tap"), tar, RS, rescue_set=False),
        "ref": tar_extract(tar, str(base / "ref")),
        "members": catalog_members(tar, RS),
        "base": base,
    }


def restore(tap, target, **kw):
    msgs = io.StringIO()
    os.makedirs(target, exist_ok=True)
    opts = RestoreOptions(target=str(target), messages=msgs, **kw)
    with open_tape(str(tap)) as tape:
        result = run_restore(tape, opts)
    result.text = msgs.getvalue()
    return result


def expected_subset(ref, paths, excludes=(), default_excludes=True):
    """The part of GNU tar's full extraction a selection should give: the selected members and, with their
    archived metadata, the directories above them."""
    from rescue.pathmatch import DEFAULT_EXCLUDES

    matcher = PathMatcher(paths, excludes, DEFAULT_EXCLUDES if default_excludes else ())
    keep = {p for p in ref if matcher.selected(p)}
    keep |= {a for p in keep for a in ancestors(p)}
    return {p: v for p, v in ref.items() if p in keep}


def test_full_restore_equals_gnu_tar_extract_with_default_excludes(world, tmp_path):
    result = restore(world["tap"], tmp_path / "t")
    assert result.exit_code == 0, result.text
    assert result.mode == "catalog" and result.seeks == 0
    want = expected_subset(world["ref"], [])
    assert "tmp/scratch" not in want and "etc/passwd" in want
    assert tree_state(str(tmp_path / "t")) == want
    assert not os.path.exists(tmp_path / "t" / ".rescue-restore.journal")


def test_paths_in_reverse_tape_order_come_back_in_one_pass_with_the_planned_seeks(world, tmp_path):
    paths = ["var/www", "data/d09", "data/d02", "etc/ssh"]  # tape order is etc, data/d02, data/d09, var
    result = restore(world["tap"], tmp_path / "t", paths=paths, seek_threshold=2)
    assert result.exit_code == 0, result.text
    plan = result.plan
    starts = [r.start for r in plan.runs]
    assert starts == sorted(starts)  # forward only
    assert [r.first_path for r in plan.runs] == ["data", "data/d02", "data/d09", "etc", "var"]
    # The device's own counters, taken over the archive pass, against the plan.
    assert result.seeks == plan.seeks >= 3
    assert result.records_read == plan.records
    assert result.records_read < plan.archive_records / 2
    assert tree_state(str(tmp_path / "t")) == expected_subset(world["ref"], paths)
    assert "seek to record" in result.text


def test_glob_and_single_file_selection(world, tmp_path):
    result = restore(world["tap"], tmp_path / "t", paths=["data/*/f3.bin", "etc/hostname"])
    assert result.exit_code == 0, result.text
    state = tree_state(str(tmp_path / "t"))
    assert state == expected_subset(world["ref"], ["data/*/f3.bin", "etc/hostname"])
    assert "data/d00/f3.bin" in state and "data/d00/f2.bin" not in state


def test_excludes_leave_out_what_they_match(world, tmp_path):
    result = restore(world["tap"], tmp_path / "t", paths=["data"], excludes=["f1.bin", "data/d05"])
    assert result.exit_code == 0, result.text
    state = tree_state(str(tmp_path / "t"))
    assert not any(p.endswith("f1.bin") or p.startswith("data/d05") for p in state)
    assert state == expected_subset(world["ref"], ["data"], excludes=["f1.bin", "data/d05"])


def test_no_default_excludes_restores_tmp(world, tmp_path):
    result = restore(world["tap"], tmp_path / "t", default_excludes=False)
    assert result.exit_code == 0
    assert tree_state(str(tmp_path / "t")) == world["ref"]


def test_hard_link_whose_target_was_not_asked_for_still_restores(world, tmp_path):
    # GNU tar (--sort=name) stored the data under opt/tool-link; usr/bin/tool is a hard link to it.
    link = next(m for m in world["members"] if m.path == "usr/bin/tool")
    assert link.type == "hardlink" and link.linkname == "opt/tool-link"
    result = restore(world["tap"], tmp_path / "t", paths=["usr"])
    assert result.exit_code == 0, result.text
    t = tmp_path / "t"
    assert (t / "usr/bin/tool").read_bytes() == (t / "opt/tool-link").read_bytes()
    assert os.stat(t / "usr/bin/tool").st_ino == os.stat(t / "opt/tool-link").st_ino
    assert os.stat(t / "usr/bin/tool").st_mode & 0o7777 == 0o4755
    assert not os.path.exists(t / "opt/tool-symlink")


def test_plain_gnu_tar_tape_without_catalog_restores_in_one_streaming_pass(world, tmp_path):
    result = restore(world["bare"], tmp_path / "t")
    assert result.exit_code == 0, result.text
    assert result.mode == "stream" and result.seeks == 0
    assert "no catalog found" in result.text and "seeking is off" in result.text
    assert tree_state(str(tmp_path / "t")) == expected_subset(world["ref"], [])
    result = restore(world["bare"], tmp_path / "u", paths=["var/www", "etc/ssh"])
    assert result.exit_code == 0
    state = tree_state(str(tmp_path / "u"))
    assert {p for p in state if not p.startswith(("var", "etc"))} == set()
    assert state["var/www/big.bin"] == world["ref"]["var/www/big.bin"]


def test_catalog_rebuild_then_seek_restore(world, tmp_path):
    cat = str(tmp_path / "rebuilt.jsonl.gz")
    with open_tape(world["bare"]) as tape:
        rebuild_catalog(tape, cat, messages=io.StringIO())
    paths = ["var/www/index.html", "data/d01"]
    result = restore(world["bare"], tmp_path / "t", paths=paths, catalog=cat, seek_threshold=1)
    assert result.exit_code == 0, result.text
    assert result.mode == "catalog" and result.seeks == result.plan.seeks >= 2
    assert result.records_read == result.plan.records
    assert tree_state(str(tmp_path / "t")) == expected_subset(world["ref"], paths)


def _members_touching(members, record):
    """Paths whose bytes on tape (first header to the next member's first header) touch `record`."""
    out = []
    for i, m in enumerate(members):
        start = m.record * RS + m.offset
        end = members[i + 1].record * RS + members[i + 1].offset if i + 1 < len(members) else start + 512
        if start // RS <= record <= (end - 1) // RS:
            out.append(m.path)
    return out


@pytest.mark.parametrize("where", ["data", "headers"])
def test_a_bad_record_loses_only_the_members_in_it(world, tmp_path, where):
    members = world["members"]
    if where == "data":  # inside big.bin's data: one member lost
        big = next(m for m in members if m.path == "var/www/big.bin")
        bad = big.record + 5
    else:  # a record holding the headers of several small members
        bad = next(m for m in members if m.path == "data/d07/f0.bin").record
    lost = set(_members_touching(members, bad))
    assert lost
    tap = write_tap(str(tmp_path / "bad.tap"), world["tar"], RS, bad_records=[bad])
    result = restore(tap, tmp_path / "t")
    assert result.exit_code == 1
    assert set(result.lost) == lost - {"tmp", "tmp/scratch"}
    for path in result.lost:
        assert path in result.text  # named
    want = {p: v for p, v in expected_subset(world["ref"], []).items() if p not in lost}
    state = tree_state(str(tmp_path / "t"))
    # Everything else restored exactly; a lost directory's children are there (with default metadata for it).
    assert {p: v for p, v in state.items() if p not in lost} == want


def test_dry_run_touches_nothing(world, tmp_path):
    target = tmp_path / "t"
    target.mkdir()
    (target / "keep").write_text("x")
    before = (tree_state(str(target)), os.stat(target).st_mtime_ns)
    result = restore(world["tap"], target, paths=["etc"], dry_run=True)
    assert result.exit_code == 0 and result.dry_run
    assert "selected:" in result.text and "estimated time" in result.text and "web1" in result.text
    assert (tree_state(str(target)), os.stat(target).st_mtime_ns) == before
    assert result.files == 0 and result.plan.files > 0
    # Also without a catalog, and into a target that does not exist.
    result = restore(world["bare"], tmp_path / "x", dry_run=True)
    assert result.mode == "stream" and os.listdir(tmp_path / "x") == []


def test_catalog_of_the_tape_is_read_from_tape_file_2(world, tmp_path):
    result = restore(world["tap"], tmp_path / "t", paths=["etc/passwd"], dry_run=True)
    header_members = list(open_catalog(str(world["base"] / "set.tap.spool" / "catalog.jsonl.gz"))[1])
    assert result.plan.archive_members == len(header_members)


def test_a_set_without_its_catalog_file_falls_back_to_streaming(world, tmp_path):
    from rescue.tape.simh import SimhTape
    from rescue.tapeset.label import Label, write_label

    tap = str(tmp_path / "nocat.tap")
    with SimhTape(tap, write=True) as tape, open(world["tar"], "rb") as f:
        write_label(tape, Label(backup_id="x", host="web1", record_size=RS), None)
        while chunk := f.read(RS):
            tape.write_record(chunk)
        tape.write_filemarks(1)  # the job died here: no catalog
    result = restore(tap, tmp_path / "t", paths=["etc"])
    assert result.exit_code == 0, result.text
    assert result.mode == "stream" and "catalog" in result.text and "seeking is off" in result.text
    assert tree_state(str(tmp_path / "t")) == expected_subset(world["ref"], ["etc"])


def test_a_plain_archive_file_restores_through_the_stream_backend(world, tmp_path):
    result = restore(world["tar"], tmp_path / "t", paths=["var"])
    assert result.exit_code == 0, result.text
    assert result.mode == "stream"
    assert tree_state(str(tmp_path / "t")) == expected_subset(world["ref"], ["var"])


@pytest.mark.parametrize("catalog", [True, False])
def test_drive_going_offline_is_fatal_and_resume_finishes_the_same_tree(world, tmp_path, catalog):
    from rescue.errors import RescueError
    from rescue.tape.faults import FaultyTape

    tap = world["tap"] if catalog else world["bare"]
    target = tmp_path / "t"
    target.mkdir()
    with open_tape(tap) as tape:
        faulty = FaultyTape(tape, offline_after=40)  # a few dozen operations in: mid-archive
        with pytest.raises(RescueError):
            run_restore(faulty, RestoreOptions(target=str(target), messages=io.StringIO()))
    from rescue.restore.journal import read_journal

    assert read_journal(str(target)).count > 5  # it had got somewhere
    assert len(tree_state(str(target))) < len(expected_subset(world["ref"], []))
    result = restore(tap, target, resume=True)
    assert result.exit_code == 0, result.text
    assert tree_state(str(target)) == expected_subset(world["ref"], [])


@pytest.mark.parametrize("tap", ["tap", "bare"])  # the plan of the catalog pass, and the streaming pass
def test_a_path_that_matches_nothing_is_named_the_rest_restored_and_the_exit_is_2(world, tmp_path, tap):
    result = restore(world[tap], tmp_path / "t", paths=["etc/ssh", "/etc/nonexist", "data/d03"])
    assert result.exit_code == 2, result.text
    assert result.not_found == ["etc/nonexist"]
    assert "etc/nonexist: not found on tape" in result.text and "etc/ssh: not found" not in result.text
    assert tree_state(str(tmp_path / "t")) == expected_subset(world["ref"], ["etc/ssh", "data/d03"])
    if tap == "tap":
        data = sum(m.size for m in world["members"] if m.path.startswith("data/d03/"))
        assert result.plan.paths == [("etc/ssh", 2, 19), ("etc/nonexist", 0, 0), ("data/d03", 5, data)]
        assert "  data/d03: 5 members" in result.text
        assert result.to_json()["plan"]["paths"][1] == {"path": "etc/nonexist", "files": 0, "bytes": 0}


def test_resume_with_another_selection_is_refused_and_the_journal_kept(world, tmp_path):
    from rescue.errors import RescueError
    from rescue.restore.journal import NAME
    from rescue.tape.faults import FaultyTape

    target = tmp_path / "t"
    target.mkdir()
    with open_tape(world["tap"]) as tape, pytest.raises(RescueError):
        run_restore(
            FaultyTape(tape, offline_after=40), RestoreOptions(target=str(target), messages=io.StringIO())
        )
    journal = (target / NAME).read_bytes()
    for other in ({"paths": ["etc"]}, {"excludes": ["*.bin"]}, {"default_excludes": False}):
        with pytest.raises(RescueError) as refused:
            restore(world["tap"], target, resume=True, **other)
        assert refused.value.exit_code == 2
        assert "interrupted restore was of everything" in str(refused.value) and NAME in str(refused.value)
        assert (target / NAME).read_bytes() == journal
    result = restore(world["tap"], target, resume=True)
    assert result.exit_code == 0, result.text
    assert tree_state(str(target)) == expected_subset(world["ref"], [])
