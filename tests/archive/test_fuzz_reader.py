"""Hypothesis drives the reader and the extractor with random bytes and with mutations of real GNU tar archives:
whatever comes in, the only exceptions are RescueErrors with a message, and nothing lands outside the target."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rescue.archive.extract import Extractor
from rescue.archive.reader import ArchiveReader
from rescue.errors import RescueError
from rescue.tape.stream import StreamTape
from tests.support import need_tool

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def run_one(data: bytes, record_size: int) -> None:
    """Read and extract `data`; assert the safety properties."""
    top = tempfile.mkdtemp()
    try:
        archive = os.path.join(top, "a.tar")
        with open(archive, "wb") as f:
            f.write(data)
        target = os.path.join(top, "target")
        os.mkdir(target)
        try:
            with Extractor(target) as x:
                for entry in ArchiveReader(StreamTape(archive, record_size=record_size)):
                    x.extract(entry)
        except RescueError as e:
            assert str(e)
        assert sorted(os.listdir(top)) == ["a.tar", "target"]
    finally:
        shutil.rmtree(top)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Small real archives in several formats, to mutate."""
    need_tool("tar")
    base = tmp_path_factory.mktemp("seeds")
    src = base / "src"
    (src / "d" / ("x" * 90)).mkdir(parents=True)
    (src / "d" / "f").write_bytes(b"hello\n" * 50)
    (src / "d" / ("x" * 90) / "long").write_bytes(b"long\n")
    os.symlink("f", src / "d" / "s")
    os.link(src / "d" / "f", src / "d" / "h")
    with open(src / "sparse", "wb") as f:
        f.truncate(1 << 20)
        f.seek(5000)
        f.write(b"z" * 3000)
    out = []
    for fmt, extra in (
        ("posix", ["--sparse"]),
        ("gnu", ["--sparse"]),
        ("ustar", []),
        ("oldgnu", ["--sparse"]),
    ):
        archive = base / f"{fmt}.tar"
        subprocess.run(
            ["tar", f"--format={fmt}", *extra, "-b", "2", "-cf", str(archive), "-C", str(src), "."],
            check=True,
            capture_output=True,
        )
        out.append(archive.read_bytes())
    return out


@FUZZ
@given(data=st.binary(max_size=4096), record_size=st.sampled_from([512, 1000, 10240]))
def test_random_bytes_never_raise_anything_but_rescue_errors(data, record_size):
    run_one(data, record_size)


@FUZZ
@given(
    which=st.integers(0, 3),
    edits=st.lists(
        st.tuples(st.integers(0, 1 << 20), st.binary(min_size=1, max_size=16)), min_size=1, max_size=6
    ),
    cut=st.one_of(st.none(), st.integers(0, 1 << 20)),
    record_size=st.sampled_from([512, 1024, 4096]),
)
def test_mutated_gnu_tar_archives_stay_safe(seeds, which, edits, cut, record_size):
    data = bytearray(seeds[which])
    for pos, patch in edits:
        pos %= len(data)
        data[pos : pos + len(patch)] = patch
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    run_one(bytes(data), record_size)


@FUZZ
@given(which=st.integers(0, 3), block=st.integers(0, 40), patch=st.binary(min_size=512, max_size=512))
def test_a_replaced_header_block_stays_safe(seeds, which, block, patch):
    data = bytearray(seeds[which])
    pos = (block * 512) % len(data)
    data[pos : pos + 512] = patch
    run_one(bytes(data), 1024)
