"""The temporary-name format: what the extractor makes is what a resumed restore recognises and removes."""

from __future__ import annotations

import os

from rescue.archive import tempname
from rescue.restore.target import remove_leftovers


def test_names_made_are_parsed_back_and_only_other_processes_names_are_leftovers():
    namer = tempname.Namer()
    first, second = namer(), namer()
    assert tempname.parse(first) == (os.getpid(), 1) and tempname.parse(second) == (os.getpid(), 2)
    assert not tempname.is_leftover(first, os.getpid())
    assert tempname.is_leftover(".rescue-tmp.1.7", os.getpid())
    for other in (
        ".rescue-tmp.1",
        ".rescue-tmp.1.x",
        ".rescue-tmp.1.2.3",
        "rescue-tmp.1.2",
        "f.rescue-tmp.1.2",
    ):
        assert tempname.parse(other) is None and not tempname.is_leftover(other, 0)


def test_remove_leftovers_deletes_an_interrupted_runs_names_and_nothing_else(tmp_path):
    (tmp_path / "etc").mkdir()
    mine = tempname.Namer()()
    for name in (".rescue-tmp.1.7", "etc/.rescue-tmp.99999.1", mine, "etc/.rescue-tmp.x.1", "etc/passwd"):
        (tmp_path / name).write_text("x")
    remove_leftovers(str(tmp_path))
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted([mine, "etc/.rescue-tmp.x.1", "etc/passwd"])
