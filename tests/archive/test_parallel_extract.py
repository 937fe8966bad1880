"""Extraction across worker processes: the same tree as one process, completions in order and only when
complete, waits where a later member depends on a file being written, and a dead worker is a named error."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from rescue.archive import parallel_extract, workers
from rescue.archive.extract import Extractor
from rescue.archive.parallel_extract import ParallelExtractor, open_extractor
from rescue.archive.reader import ArchiveReader
from rescue.tape.stream import StreamTape
from tests.support import need_tool
from tests.support.archive import gnu_archive, small_tree
from tests.support.tapes import tree_state


@pytest.fixture(autouse=True)
def gnu_tar_here():
    need_tool("tar")


def extract(archive, dest, **kw):
    os.makedirs(dest)
    done = []
    with StreamTape(archive) as tape, open_extractor(str(dest), checksums=True, **kw) as x:
        x.on_done = lambda member, ok: done.append((member.path, ok, member.sha256))
        for entry in ArchiveReader(tape):
            assert x.extract(entry)
    assert not x.warnings
    return x, done


@pytest.fixture
def from_first_file(monkeypatch):
    monkeypatch.setattr(parallel_extract, "START_AFTER", 0)


def test_workers_restore_the_same_tree_and_report_completions_in_tape_order(tmp_path, from_first_file):
    small_tree(tmp_path / "src", dirs=30, per_dir=60)
    a = gnu_archive(tmp_path / "src", tmp_path / "a.tar")
    one, done_one = extract(a, tmp_path / "one", jobs=1)
    many, done_many = extract(a, tmp_path / "many", jobs=2)
    assert type(one) is Extractor and type(many) is ParallelExtractor
    assert tree_state(str(tmp_path / "many")) == tree_state(str(tmp_path / "one"))
    assert done_many == done_one  # same members, same order, same checksums
    assert many.files == one.files == 30 * 60  # regular files (the hard link is not one)


def test_a_tiny_restore_and_one_cpu_never_start_workers(tmp_path, monkeypatch):
    small_tree(tmp_path / "src", dirs=2, per_dir=20)
    a = gnu_archive(tmp_path / "src", tmp_path / "a.tar")
    x, _ = extract(a, tmp_path / "tiny", jobs=2)
    assert x._pool is None  # fewer files than START_AFTER
    monkeypatch.setattr(parallel_extract, "default_jobs", lambda: 1)
    assert type(open_extractor(str(tmp_path))) is Extractor


def test_a_member_waits_for_the_file_of_its_name_and_a_hard_link_for_its_target(tmp_path, from_first_file):
    # The same name three times (the last wins), a hard link to a file a worker may still be writing, and a
    # directory where a file was: the results of one process, whatever the workers' timing.
    src = tmp_path / "src"
    (src / "x").mkdir(parents=True)
    for i in range(200):
        (src / "x" / f"f{i}").write_bytes(b"%d" % i * 500)
    a = tmp_path / "a.tar"
    names = ["./x"] + [f"./x/f{i}" for i in range(200)]
    subprocess.run(["tar", "--format=posix", "-cf", str(a), "-C", str(src), *names], check=True)
    (src / "x" / "f5").write_bytes(b"second version")
    (src / "x" / "f7").unlink()
    (src / "x" / "f7").mkdir()
    subprocess.run(["tar", "--format=posix", "-rf", str(a), "-C", str(src), "./x/f5", "./x/f7"], check=True)
    os.link(src / "x" / "f9", src / "link9")
    subprocess.run(["tar", "--format=posix", "-rf", str(a), "-C", str(src), "./x/f9", "./link9"], check=True)
    _, done_one = extract(str(a), tmp_path / "one", jobs=1)
    _, done_many = extract(str(a), tmp_path / "many", jobs=2)
    assert tree_state(str(tmp_path / "many")) == tree_state(str(tmp_path / "one"))
    assert done_many == done_one
    assert (tmp_path / "many" / "x" / "f5").read_bytes() == b"second version"
    assert os.path.samefile(tmp_path / "many" / "x" / "f9", tmp_path / "many" / "link9")


def test_a_killed_worker_is_an_error_naming_the_member_not_a_hang(tmp_path, from_first_file):
    small_tree(tmp_path / "src", dirs=40, per_dir=100, max_size=512)
    a = gnu_archive(tmp_path / "src", tmp_path / "a.tar")
    os.makedirs(tmp_path / "t")
    done = []
    x = open_extractor(str(tmp_path / "t"), jobs=2)
    x.on_done = lambda member, ok: done.append(member.path)
    started = time.monotonic()
    with pytest.raises(workers.WorkerDied) as err, StreamTape(a) as tape:
        for n, entry in enumerate(ArchiveReader(tape)):
            x.extract(entry)
            if n == 500:
                pids = [w.pid for w in x._pool.workers]
                os.kill(pids[0], signal.SIGKILL)
        x.finish()
    x.close()
    assert time.monotonic() - started < 60
    message = str(err.value)
    assert "killed by signal 9" in message and "while writing 'd00" in message and "--resume" in message
    for pid in pids:  # every worker is gone and reaped
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    for path in done:  # what was reported complete is there, whole
        assert (tmp_path / "t" / path).exists()
    assert not [n for _, _, files in os.walk(tmp_path / "t") for n in files if n.startswith(".rescue-tmp")]


@pytest.fixture
def memory_dir(tmp_path):
    """A scratch directory on tmpfs when there is one (100k files on a disk cost minutes), removed after."""
    if not os.path.isdir("/dev/shm"):
        yield tmp_path
        return
    path = tempfile.mkdtemp(prefix="rescue-test-", dir="/dev/shm")
    try:
        yield pathlib.Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.stress
def test_stress_100k_files_restore_identically_with_and_without_workers(memory_dir):
    tmp_path = memory_dir
    small_tree(tmp_path / "src", dirs=1000, per_dir=100, max_size=1024)
    a = gnu_archive(tmp_path / "src", tmp_path / "a.tar")
    _, done_one = extract(a, tmp_path / "one", jobs=1)
    x, done_many = extract(a, tmp_path / "many", jobs=2)
    assert x._pool is None or not x._pool.workers  # stopped at close()
    assert len(done_many) == len(done_one) > 100_000
    assert done_many == done_one
    assert tree_state(str(tmp_path / "many")) == tree_state(str(tmp_path / "one"))
