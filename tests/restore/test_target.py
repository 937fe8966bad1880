"""The restore target on real file systems: checked before the tape moves, compared with the plan's size, and a
full one (a small tmpfs) ends the restore at once, resumable."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess

import pytest

from rescue.archive import workers
from rescue.errors import RefusedError, RescueError, UsageError
from rescue.restore.job import RestoreOptions, run_restore
from rescue.restore.journal import NAME, read_journal
from rescue.restore.target import TargetFullError
from rescue.tape import open_tape
from tests.support import need, need_tool
from tests.support.tapes import gnu_tar, tree_state, write_tap

RS = 10240
FILES = 24
SIZE = 100_000  # 24 files of ~98 KiB: about 2.3 MiB of data


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_tool("tar")
    base = tmp_path_factory.mktemp("target")
    root = base / "tree"
    (root / "big").mkdir(parents=True)
    for i in range(FILES):
        (root / "big" / f"f{i:02d}").write_bytes(os.urandom(SIZE))
    tar = gnu_tar(str(root), str(base / "a.tar"), fmt="posix")  # with ns mtimes
    return {
        "tap": write_tap(str(base / "set.tap"), tar, RS),
        "bare": write_tap(str(base / "bare.tap"), tar, RS, rescue_set=False),
        "tree": tree_state(str(root)),
    }


@contextlib.contextmanager
def small_fs(path, size: str, inodes: int = 1000):
    """A tmpfs of `size` at `path` (mount(8) -o size=, nr_inodes=); yields a function that resizes it."""
    need(os.geteuid() == 0, "mounting a tmpfs needs root")
    need_tool("mount", "umount")
    path.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes={inodes}", "rescue-test", str(path)],
        check=True,
    )

    def grow(new_size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={new_size}", str(path)], check=True)

    try:
        yield grow
    finally:
        subprocess.run(["umount", str(path)], check=True)


def restore(tap, target, **kw):
    msgs = io.StringIO()
    with open_tape(str(tap)) as tape:
        result = run_restore(tape, RestoreOptions(target=str(target), messages=msgs, **kw))
    result.text = msgs.getvalue()
    return result


def run_raising(tap, target, **kw):
    """(error, messages, records read, seeks) of a restore that must fail."""
    msgs = io.StringIO()
    with open_tape(str(tap)) as tape:
        with pytest.raises(RescueError) as raised:
            run_restore(tape, RestoreOptions(target=str(target), messages=msgs, **kw))
        return raised.value, msgs.getvalue(), tape.records_read, tape.seeks


@pytest.mark.usefixtures("extract_mode")  # a worker process's ENOSPC stops the restore too
@pytest.mark.parametrize("kind", ["tap", "bare"])  # the catalog pass and the streaming pass
def test_a_full_target_stops_at_the_first_full_member_and_resume_finishes(
    world, tmp_path, kind, extract_mode, monkeypatch
):
    target = tmp_path / "t"
    if extract_mode == "workers":  # rings of two files each: what the parent reads ahead is bounded by them
        monkeypatch.setattr(workers, "RING_PER_WORKER", 2 * SIZE + 4096)
    with small_fs(target, "1m") as grow:
        error, text, records, _ = run_raising(world[kind], target, yes=True)
        assert isinstance(error, TargetFullError) and error.exit_code == 2
        message = str(error)
        assert message.startswith("target full after ") and "then run again with --resume" in message
        if kind == "tap":
            assert f" of {FILES + 1} members (" in message  # big/ and its files
        # One warning for the member that did not fit, not one per member; the rest of the tape is not read
        # (with workers, no more than their rings hold beyond the members done).
        assert text.count("not restored") == 1 and text.count("No space left") == 1, text
        done = read_journal(str(target)).count
        assert 0 < done < FILES and f"after {done} " in message
        if extract_mode == "workers":
            assert records * RS < (done + 2) * SIZE + 2 * workers.RING_PER_WORKER < FILES * SIZE
        else:
            assert records < FILES * SIZE // RS / 2
        grow("8m")
        result = restore(world[kind], target, resume=True)
        assert result.exit_code == 0, result.text
        assert tree_state(str(target))["big"][0] == "dir"
        assert {p: v for p, v in tree_state(str(target)).items() if p != "big"} == {
            p: v for p, v in world["tree"].items() if p != "big"
        }
        assert not (target / NAME).exists()


def test_free_space_and_inodes_are_compared_with_the_plan_before_anything_is_written(world, tmp_path):
    target = tmp_path / "t"
    with small_fs(target, "1m"):
        error, text, _, _ = run_raising(world["tap"], target)
        assert isinstance(error, RefusedError)
        assert "free space or grow the filesystem" in str(error) and "--yes" in str(error)
        assert os.listdir(target) == []  # no journal, no member
        result = restore(world["tap"], target, dry_run=True)  # a dry run says so and goes on
        assert result.exit_code == 0 and "dry run:" in result.text and "free space" in result.text
    with small_fs(tmp_path / "few", "16m", inodes=10):
        error, _, _, _ = run_raising(world["tap"], tmp_path / "few")
        assert isinstance(error, RefusedError) and "inodes free" in str(error)
    with small_fs(tmp_path / "tight", "2400k"):  # the data fits, with the blocks each member takes it may not
        result = restore(world["tap"], tmp_path / "tight", dry_run=True)
        assert any("may not fit" in w for w in result.warnings), result.text


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_missing_target_is_said_before_the_tape_moves(world, tmp_path, dry_run):
    error, text, records, seeks = run_raising(world["tap"], tmp_path / "not-mounted", dry_run=dry_run)
    assert isinstance(error, UsageError) and "does not exist" in str(error)
    assert (records, seeks) == (0, 0) and "rescue backup of host" not in text  # the label was not read


def test_a_non_empty_target_is_refused_before_the_tape_moves_and_noted_in_a_dry_run(world, tmp_path):
    (tmp_path / "something").write_text("x")
    error, _, records, seeks = run_raising(world["tap"], tmp_path)
    assert isinstance(error, RefusedError) and (records, seeks) == (0, 0)
    result = restore(world["tap"], tmp_path, dry_run=True)
    assert result.exit_code == 0 and "target is not empty" in result.text and "needs --yes" in result.text
