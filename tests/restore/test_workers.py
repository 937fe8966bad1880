"""The restore job with worker processes: a dead worker is a fatal error naming the member and `--resume`
ends with the same tree; Ctrl-C and SIGTERM stop the workers with the job, leaving no process behind."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from rescue.archive import parallel_extract, workers
from rescue.restore.job import RestoreOptions, run_restore
from rescue.restore.journal import read_journal
from rescue.tape import open_tape
from tests.support import need_tool
from tests.support.archive import gnu_archive, small_tree
from tests.support.tapes import tree_state

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    need_tool("tar")
    base = tmp_path_factory.mktemp("workers")
    small_tree(base / "src", dirs=60, per_dir=100, max_size=2048)
    path = gnu_archive(base / "src", base / "a.tar")
    ref = base / "ref"
    ref.mkdir()
    with open_tape(path) as tape:
        run_restore(tape, RestoreOptions(target=str(ref), jobs=1, messages=io.StringIO()))
    return path, tree_state(str(ref))


def test_a_dead_worker_stops_the_restore_naming_the_member_and_resume_finishes_it(
    archive, tmp_path, monkeypatch
):
    path, ref = archive
    write_one = workers._write_one

    def dies_at_one_member(item, *args):
        if item[1] == "d0030" and item[2] == "f050":
            os.kill(os.getpid(), signal.SIGKILL)  # in the worker process: the fork inherited this
        return write_one(item, *args)

    monkeypatch.setattr(workers, "_write_one", dies_at_one_member)
    monkeypatch.setattr(parallel_extract, "START_AFTER", 0)
    target = tmp_path / "t"
    target.mkdir()
    with open_tape(path) as tape, pytest.raises(workers.WorkerDied) as err:
        run_restore(tape, RestoreOptions(target=str(target), jobs=2, messages=io.StringIO()))
    assert "while writing 'd0030/f050'" in str(err.value)
    assert err.value.exit_code == 2
    state = read_journal(str(target))
    assert 0 < state.count < len(ref)
    assert not (target / "d0030" / "f050").exists()
    monkeypatch.setattr(workers, "_write_one", write_one)
    with open_tape(path) as tape:
        result = run_restore(
            tape, RestoreOptions(target=str(target), jobs=2, resume=True, messages=io.StringIO())
        )
    assert result.exit_code == 0
    assert tree_state(str(target)) == ref


def _as_a_terminal_job() -> None:
    """SIGINT as a terminal's foreground job has it: a job started in the background by a shell (a CI runner may
    start the tests so) ignores SIGINT, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _children(pid: int):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has stopped running
    except OSError:
        return True


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_stop_every_worker_and_resume_finishes(archive, tmp_path, how):
    path, ref = archive
    target = tmp_path / "t"
    target.mkdir()
    # The workers start at the first file; the restore is slowed by a tiny pipe of records so that it is still
    # running when the signal comes.
    code = (
        "import sys; from rescue.archive import parallel_extract; parallel_extract.START_AFTER = 0; "
        "from rescue.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "-f", "-", "restore", "-C", str(target), "--jobs", "2"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        preexec_fn=_as_a_terminal_job,
    )
    data = open(path, "rb").read()
    kids = []
    for i in range(0, len(data) // 2, 64 * 1024):
        proc.stdin.write(data[i : i + 64 * 1024])
        proc.stdin.flush()
        if len(kids) < 2:  # both forked (the first may be seen alone)
            kids = _children(proc.pid)
        time.sleep(0.01)
    assert len(kids) == 2, "the workers were running"
    started = time.monotonic()
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends: the whole foreground group
    else:
        os.kill(proc.pid, signal.SIGTERM)  # the job alone, as `kill PID` does
    with pytest.raises(OSError):
        proc.stdin.write(data[len(data) // 2 :])
        proc.stdin.close()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while not all(_gone(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(k) for k in kids), "a worker outlived the job"
    assert time.monotonic() - started < 30
    said = proc.stderr.read()
    assert proc.returncode == 2
    assert (b"interrupted" if how == "ctrl-c" else b"terminated") in said
    assert read_journal(str(target)) is not None
    with open_tape(path) as tape:
        result = run_restore(
            tape, RestoreOptions(target=str(target), jobs=2, resume=True, messages=io.StringIO())
        )
    assert result.exit_code == 0
    assert tree_state(str(target)) == ref
