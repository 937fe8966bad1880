"""The damaged-tape corpus: a backup set on every backend (.tap image, directory volume, stream), cut at 20 positions
spread over label, archive and catalog, with 1, 10 and 100 flipped bytes at random positions, and with zeroed
records. Hypothesis draws the positions (derandomized: the same cases on every run).

Each case is restored by a separate `rescue restore` process (forked from the test process, tests.support.forkrun)
with a timeout, and must:
- end (no loop) within the timeout, with a bounded number of output lines and no traceback;
- restore exactly (content, mode, link target) every member that lies in an undamaged region, as the catalog written
  at backup time describes it;
- name every member it did not restore exactly, when it had a catalog to know them by (the tape's own, or for a
  stream the one the backup kept); without one (the tape's catalog was damaged too) it says that the archive is
  damaged;
- exit 0 only when everything came back, 1 or 2 otherwise.
The stream backend holds the archive alone (a backup to a stream writes no label and no catalog), so its cases are
restored with `--catalog`, the catalog directory's copy, as an administrator would.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rescue.archive.member import DIR, FILE, SYMLINK
from rescue.backup.job import run_backup
from rescue.tape import open_tape
from rescue.tapeset.catalog import open_catalog
from tests.support.backups import options
from tests.support.damage import Damage, Medium
from tests.support.forkrun import run_main

RS = 10240
BACKENDS = ("simh", "dir", "stream")
TIMEOUT = 30  # seconds per restore: a small set restores in well under one
CUTS = {"label": 4, "archive": 12, "catalog": 4}  # 20 per backend (a stream's 20 all fall in its archive)
CORPUS = settings(
    max_examples=1,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as drawn, in bounded time
    suppress_health_check=[HealthCheck.too_slow],
)


def _tree(root: Path) -> None:
    """A small tree whose members spread over a few dozen 10 KiB records."""
    for i in range(5):
        for j in range(4):
            path = root / f"data/d{i}/f{j}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(hashlib.sha256(f"{i}.{j}".encode()).digest() * (100 + 150 * j))
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("web1\n")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    os.chmod(root / "etc/passwd", 0o640)
    (root / "var/www").mkdir(parents=True)
    (root / "var/www/big.bin").write_bytes(os.urandom(70_000))
    os.symlink("../etc/hostname", root / "var/hostname")


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """The same tree backed up to each backend; the catalog of each backup, kept in its catalog directory."""
    base = tmp_path_factory.mktemp("damaged")
    tree = base / "tree"
    _tree(tree)
    out = {}
    for backend, name in (("simh", "set.tap"), ("dir", "vol/"), ("stream", "set.tar")):
        device = os.path.join(str(base), name)  # pathlib would drop the "/" that makes a directory volume
        with open_tape(device, write=True) as tape:
            result = run_backup(tape, str(tree), options(base / backend, layout=None), out=io.StringIO())
        members = list(open_catalog(result.catalog_path)[1])
        out[backend] = {
            "medium": Medium(backend, device.rstrip("/"), RS),
            "catalog": result.catalog_path,
            "members": members,
        }
    return Sets(out)


class Sets(dict):
    """The written sets by backend; a short repr keeps Hypothesis' report of a failing case readable."""

    def __repr__(self) -> str:
        return f"<sets on {', '.join(self)}>"


def member_spans(members, archive_records: int):
    """Archive records each member occupies (its headers to the byte before the next member)."""
    starts = [m.record * RS + m.offset for m in members] + [archive_records * RS]
    return [
        range(starts[i] // RS, (max(starts[i], starts[i + 1] - 1)) // RS + 1) for i in range(len(members))
    ]


def restored_exactly(target: str, m) -> bool:
    path = os.path.join(target, m.path)
    try:
        st_ = os.lstat(path)
    except OSError:
        return False
    if m.type == DIR:
        return stat.S_ISDIR(st_.st_mode) and stat.S_IMODE(st_.st_mode) == m.mode
    if m.type == SYMLINK:
        return stat.S_ISLNK(st_.st_mode) and os.readlink(path) == m.linkname
    if m.type == FILE:
        if not stat.S_ISREG(st_.st_mode) or stat.S_IMODE(st_.st_mode) != m.mode:
            return False
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest() == m.sha256
    return os.path.lexists(path)


def check_case(world, damage: Damage) -> None:
    medium, members = world["medium"], world["members"]
    with tempfile.TemporaryDirectory(prefix="damaged-") as where:
        device = medium.damaged_copy(damage, where)
        target = os.path.join(where, "target")
        os.mkdir(target)
        argv = ["-f", device, "restore", "-C", target, "--json", "--config", os.devnull]
        if medium.backend == "stream":
            argv += ["--catalog", world["catalog"]]
        p = run_main(argv, TIMEOUT)
        if p.returncode is None:
            pytest.fail(f"{medium.backend}, {damage.describe()}: restore still running after {TIMEOUT} s")
        case = f"{medium.backend}, {damage.describe()}: exit {p.returncode}\n{p.stderr[-3000:]}"
        lines = p.stderr.splitlines()
        assert p.returncode in (0, 1, 2) and "Traceback" not in p.stderr, case
        events = len(damage.flips) + len(damage.zeroed) + 1
        assert len(lines) <= 40 + 2 * len(members) + 3 * events, case  # a loop prints thousands
        summary = json.loads(p.stdout.splitlines()[-1])
        damaged = medium.damaged_records(damage)
        archive_records = len(medium.records(medium.archive_file))
        spans = member_spans(members, archive_records)
        missing = [m for m in members if not restored_exactly(target, m)]
        for m, span in zip(members, spans):
            if not damaged.intersection(span):
                assert m not in missing, f"{m.path} lies in an undamaged region and was not restored; {case}"
        if missing:
            assert p.returncode in (1, 2), case
        if summary.get("mode") == "catalog":
            # A truncated archive is named once, with its last complete member: what follows it is lost as a whole.
            ends = re.search(r"archive truncated at .*; last complete member: '([^']*)'", p.stderr)
            names = [m.path for m in members]
            after = names.index(ends.group(1)) if ends and ends.group(1) in names else None
            for i, m in enumerate(members):
                if m in missing and not (after is not None and i > after):
                    assert m.path in p.stderr, f"{m.path} was not restored and not named; {case}"
        elif missing:
            said = ("damaged", "truncated", "unreadable", "lost", "not restored", "nothing")
            assert any(word in p.stderr for word in said), case


def _spread(medium, fractions, plan):
    """Cut positions: in each segment as many as `plan` says, one in each equal slice of it."""
    positions, k = [], 0
    for name, (start, end) in medium.segments().items():
        count = plan.get(name, 0) if medium.backend != "stream" else sum(plan.values())
        for i in range(count):
            positions.append(start + int((i + fractions[k % len(fractions)]) * (end - start) / count))
            k += 1
    return positions


@pytest.mark.parametrize("backend", BACKENDS)
@CORPUS
@given(fractions=st.lists(st.floats(0, 1, exclude_max=True), min_size=20, max_size=20))
def test_a_copy_cut_anywhere_restores_what_lies_before_the_cut(sets, backend, fractions):
    medium = sets[backend]["medium"]
    positions = _spread(medium, fractions, CUTS)
    assert len(positions) == 20
    for pos in positions:
        check_case(sets[backend], Damage(cut=pos))


@pytest.mark.parametrize("backend", BACKENDS)
@CORPUS
@given(data=st.data())
def test_flipped_bytes_lose_only_the_members_they_hit(sets, backend, data):
    medium = sets[backend]["medium"]
    for count in (1, 10, 100):
        flips = data.draw(
            st.lists(st.integers(0, medium.size - 1), min_size=count, max_size=count, unique=True)
        )
        check_case(sets[backend], Damage(flips=flips))


@pytest.mark.parametrize("backend", BACKENDS)
@CORPUS
@given(data=st.data())
def test_zeroed_records_lose_only_the_members_in_them(sets, backend, data):
    medium = sets[backend]["medium"]
    files = (0,) if backend == "stream" else (0, 1, 2)
    for file in files:  # one record of each tape file, then two archive records together
        record = data.draw(st.integers(0, len(medium.records(file)) - 1))
        check_case(sets[backend], Damage(zeroed=[(file, record)]))
    archive = medium.archive_file
    pair = data.draw(
        st.lists(st.integers(0, len(medium.records(archive)) - 1), min_size=2, max_size=2, unique=True)
    )
    check_case(sets[backend], Damage(zeroed=[(archive, r) for r in pair]))
