"""The drill's choice of directories for the partial restore: far apart on tape, or none."""

from __future__ import annotations

import io
import json

from drill.guest import pick_paths

RECORD = 10240


def catalog(*members) -> io.StringIO:
    lines = [
        json.dumps({"path": p, "type": t, "size": size, "record": rec, "offset": 0})
        for p, t, size, rec in members
    ]
    return io.StringIO("\n".join(lines) + "\n")


def test_the_first_and_last_directory_are_picked_later_first():
    lines = catalog(
        ("a", "dir", 0, 0),
        ("a/f", "file", 100, 0),
        ("big", "dir", 0, 1),
        ("big/f", "file", 50 * RECORD, 1),
        ("b", "dir", 0, 52),
        ("b/f", "file", 100, 52),
        ("z", "dir", 0, 53),
    )
    assert pick_paths.pick(pick_paths.spans(lines, RECORD), 4) == ("z", "a")


def test_a_big_file_at_the_end_of_a_directory_counts_as_its_extent():
    # "a" ends with a file reaching record 51; "b" starts right after: no gap, and "b"->"c" neither.
    lines = catalog(
        ("a", "dir", 0, 0),
        ("a/big", "file", 50 * RECORD, 0),
        ("b", "dir", 0, 51),
        ("c", "dir", 0, 52),
    )
    assert pick_paths.pick(pick_paths.spans(lines, RECORD), 4) is None


def test_top_level_files_are_not_candidates():
    lines = catalog(("a", "dir", 0, 0), ("dump.sql", "file", 10 * RECORD, 1), ("z.txt", "file", 1, 20))
    assert pick_paths.pick(pick_paths.spans(lines, RECORD), 4) is None


def test_directories_the_restore_leaves_out_by_default_are_not_candidates():
    # An empty lost+found at the start would be "restored" with no seek at all.
    lines = catalog(
        ("lost+found", "dir", 0, 0),
        ("a", "dir", 0, 0),
        ("a/big", "file", 50 * RECORD, 0),
        ("z", "dir", 0, 52),
    )
    assert pick_paths.pick(pick_paths.spans(lines, RECORD, {"lost+found"}), 4) is None
