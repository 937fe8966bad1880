"""The restore planner: selection, tape-order runs, seeks and totals (pure functions, synthetic catalogs)."""

from __future__ import annotations

from typing import List

import pytest

from rescue.archive.member import DIR, FILE, HARDLINK, SYMLINK, Member
from rescue.pathmatch import DEFAULT_EXCLUDES, PathMatcher
from rescue.restore.plan import PlanError, ancestors, default_seek_threshold, plan_restore, plan_runs, select

RS = 10 * 512  # a 10-block record keeps the arithmetic readable


def catalog(*entries) -> List[Member]:
    """Members laid out one after another: each takes one header block plus its padded data."""
    members, pos = [], 0
    for path, kind, size, *rest in entries:
        m = Member(path=path, type=kind, size=size if kind == FILE else 0, linkname=rest[0] if rest else "")
        m.record, m.offset = divmod(pos, RS)
        members.append(m)
        pos += 512 + (size + 511) // 512 * 512 if kind == FILE else 512
    return members


def wanted_paths(members, matcher):
    sel = select(members, matcher)
    return [m.path for m in members if sel.wants(m)]


def test_ancestors_nearest_first():
    assert list(ancestors("a/b/c")) == ["a/b", "a"]
    assert list(ancestors("a")) == []


def test_directory_selects_its_subtree_and_its_parents():
    members = catalog(
        ("etc", DIR, 0), ("etc/ssh", DIR, 0), ("etc/ssh/sshd_config", FILE, 10), ("etc/passwd", FILE, 10)
    )
    assert wanted_paths(members, PathMatcher(["etc/ssh"])) == ["etc", "etc/ssh", "etc/ssh/sshd_config"]


def test_file_and_glob_selection():
    members = catalog(
        ("a", DIR, 0), ("a/x.conf", FILE, 1), ("a/y.txt", FILE, 1), ("b", DIR, 0), ("b/z.conf", FILE, 1)
    )
    assert wanted_paths(members, PathMatcher(["*/*.conf"])) == ["a", "a/x.conf", "b", "b/z.conf"]
    assert wanted_paths(members, PathMatcher(["/a/y.txt"])) == ["a", "a/y.txt"]


def test_excludes_and_default_excludes():
    members = catalog(
        ("proc", DIR, 0),
        ("proc/1", FILE, 1),
        ("var", DIR, 0),
        ("var/cache", DIR, 0),
        ("var/cache/x", FILE, 1),
        ("var/log", FILE, 1),
    )
    m = PathMatcher([], excludes=["var/cache"], default_excludes=DEFAULT_EXCLUDES)
    # A default exclude leaves out the contents: the mount point itself comes back (the chroot needs it).
    assert wanted_paths(members, m) == ["proc", "var", "var/log"]
    assert wanted_paths(members, PathMatcher([])) == [m.path for m in members]


def test_hard_link_brings_its_unselected_target_and_its_parents():
    members = catalog(
        ("usr", DIR, 0),
        ("usr/bin", DIR, 0),
        ("usr/bin/a", FILE, 100),
        ("opt", DIR, 0),
        ("opt/b", HARDLINK, 0, "usr/bin/a"),
        ("opt/s", SYMLINK, 0, "../usr/bin/a"),
    )
    assert wanted_paths(members, PathMatcher(["opt/b"])) == ["usr", "usr/bin", "usr/bin/a", "opt", "opt/b"]
    # A symlink brings nothing: its target is a path resolved at run time, not data on tape.
    assert wanted_paths(members, PathMatcher(["opt/s"])) == ["opt", "opt/s"]


def test_everything_selected_is_one_run_from_record_zero_without_seeks():
    members = catalog(*[(f"f{i}", FILE, 3000) for i in range(40)])
    _, plan = plan_restore(lambda: members, PathMatcher([]), RS, seek_threshold=2)
    assert len(plan.runs) == 1 and plan.seeks == 0
    assert plan.runs[0].start == 0
    assert plan.records == plan.archive_records
    assert plan.files == 40 and plan.bytes == 40 * 3000


def test_paths_in_any_order_give_tape_order_runs_and_seeks_over_large_gaps():
    # 30 files of 20 records each; ask for three of them in reverse tape order.
    members = catalog(*[(f"d{i:02d}", FILE, 20 * RS - 512) for i in range(30)])
    _, plan = plan_restore(lambda: members, PathMatcher(["d25", "d12", "d02"]), RS, seek_threshold=5)
    assert [r.first_path for r in plan.runs] == ["d02", "d12", "d25"]
    assert plan.seeks == 3  # d02 starts 40 records in, beyond the threshold: a seek as well
    assert [(r.start, r.end) for r in plan.runs] == [(40, 59), (240, 259), (500, 519)]
    assert plan.records == 60
    assert plan.runs == sorted(plan.runs, key=lambda r: r.start)  # forward only


def test_small_gaps_are_read_through():
    members = catalog(*[(f"d{i:02d}", FILE, 2 * RS - 512) for i in range(10)])
    _, plan = plan_restore(lambda: members, PathMatcher(["d01", "d03", "d09"]), RS, seek_threshold=2)
    # d01 at record 2 (gap 2 from the start: read), d03 at 6 (gap 2: read), d09 at 18 (gap 10: seek).
    assert [(r.start, r.end, r.seek) for r in plan.runs] == [(0, 7, False), (18, 19, True)]
    assert plan.seeks == 1 and plan.records == 10
    assert plan.runs[0].members == 2


def test_threshold_zero_seeks_over_every_gap_and_none_reads_everything():
    members = catalog(*[(f"d{i:02d}", FILE, RS - 512) for i in range(10)])
    _, plan = plan_restore(lambda: members, PathMatcher(["d01", "d03"]), RS, seek_threshold=0)
    assert plan.seeks == 2 and plan.records == 2
    _, plan = plan_restore(lambda: members, PathMatcher(["d01", "d03"]), RS, seek_threshold=100)
    assert plan.seeks == 0 and plan.records == 4


def test_member_spanning_records_extends_the_run_to_its_last_record():
    members = catalog(("big", FILE, 5 * RS), ("small", FILE, 1))
    _, plan = plan_restore(lambda: members, PathMatcher(["big"]), RS, seek_threshold=0)
    # header at 0, data 512..5*RS+512: the run reads records 0..5
    assert (plan.runs[0].start, plan.runs[0].end) == (0, 5)


def test_nothing_selected_is_an_empty_plan():
    members = catalog(("a", FILE, 1))
    _, plan = plan_restore(lambda: members, PathMatcher(["nothing-here"]), RS)
    assert plan.runs == [] and plan.files == 0 and plan.records == 0 and plan.seeks == 0


def test_estimate_counts_reading_and_seeking():
    members = catalog(*[(f"d{i:02d}", FILE, 20 * RS - 512) for i in range(30)])
    _, plan = plan_restore(
        lambda: members, PathMatcher(["d10", "d20"]), RS, seek_threshold=5, read_rate=RS, seek_seconds=100
    )
    assert plan.estimated_seconds == pytest.approx(40 + 2 * 100)


def test_catalog_without_positions_or_out_of_order_is_refused():
    members = catalog(("a", FILE, 1), ("b", FILE, 1))
    members[1].record = None
    with pytest.raises(PlanError, match="no tape position"):
        plan_runs(members, select(members, PathMatcher([])), RS)
    members = catalog(("a", FILE, 1), ("b", FILE, 1))
    members[1].record, members[1].offset = 0, 0
    with pytest.raises(PlanError, match="not in tape order"):
        plan_runs(members, select(members, PathMatcher([])), RS)


def test_default_threshold_is_64_mib_of_records():
    assert default_seek_threshold(256 * 1024) == 256
    assert default_seek_threshold(10240) == 6553


def test_describe_names_runs_seeks_and_estimate():
    members = catalog(*[(f"d{i:02d}", FILE, 20 * RS - 512) for i in range(30)])
    _, plan = plan_restore(lambda: members, PathMatcher(["d10"]), RS, seek_threshold=5)
    text = "\n".join(plan.describe())
    assert "1 of 30 members" in text and "1 seek(s)" in text and "seek to record 200" in text
    assert "estimated time" in text


def test_full_restore_reads_the_catalog_once_unless_a_link_needs_an_excluded_member():
    members = catalog(("tmp", DIR, 0), ("tmp/a", FILE, 100), ("usr", DIR, 0), ("usr/b", HARDLINK, 0, "tmp/a"))
    opened = []

    def open_members():
        opened.append(1)
        return iter(members)

    sel, plan = plan_restore(open_members, PathMatcher([], default_excludes=DEFAULT_EXCLUDES), RS)
    assert len(opened) == 2  # the link to tmp/a asked for one more pass
    assert [m.path for m in members if sel.wants(m)] == ["tmp", "tmp/a", "usr", "usr/b"]
    assert plan.files == 4
    opened.clear()
    sel, plan = plan_restore(open_members, PathMatcher([], excludes=["usr"]), RS)
    assert len(opened) == 1 and plan.files == 2
