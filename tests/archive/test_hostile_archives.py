"""Hostile archives: traversal, symlink and hard-link escapes, absolute names, pax path/linkpath overrides, huge
size claims, garbage and truncation.  Nothing is ever written outside the target, nothing raises a traceback,
and every refusal is a warning that names the member."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from rescue.archive.parallel_extract import open_extractor
from rescue.archive.reader import ArchiveReader, TruncatedArchiveError
from rescue.errors import RescueError
from rescue.tape.stream import StreamTape
from tests.support.archive import extract_each

pytestmark = pytest.mark.usefixtures("extract_mode")


def tree_state(top):
    """Every path under top with its type, size, mode and content: to prove nothing changed there."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            content = None
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    content = f.read()
            state[os.path.relpath(p, top)] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return state


@pytest.fixture
def arena(tmp_path):
    """tmp_path/outside holds a secret; tmp_path/target is the restore root."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"do not touch")
    (tmp_path / "target").mkdir()
    return tmp_path


def member(name, data=b"", **kw):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_600_000_000
    for k, v in kw.items():
        setattr(info, k, v)
    return info, data


def write_archive(path, members, fmt=tarfile.PAX_FORMAT):
    with tarfile.open(path, "w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def restore(arena, archive):
    """Extract everything; returns (reader warnings, extractor warnings, results by path)."""
    before = tree_state(arena / "outside")
    reader = ArchiveReader(StreamTape(str(archive)))
    with open_extractor(str(arena / "target")) as x:
        results, _ = extract_each(x, reader)
    assert tree_state(arena / "outside") == before
    assert sorted(os.listdir(arena)) == ["a.tar", "outside", "target"]
    return reader.warnings, x.warnings, results


def test_dotdot_names_are_refused(arena):
    write_archive(
        arena / "a.tar",
        [member("../outside/secret", b"pwned"), member("a/../../outside/new", b"x"), member("ok", b"fine")],
    )
    _, warnings, results = restore(arena, arena / "a.tar")
    assert results == {"../outside/secret": False, "a/../../outside/new": False, "ok": True}
    assert [w for w, _ in warnings] == ["../outside/secret", "a/../../outside/new"]
    assert all("'..'" in m for _, m in warnings)


def test_absolute_names_are_made_relative(arena):
    write_archive(arena / "a.tar", [member("/etc/evil", b"x"), member("//double/slash", b"y")])
    rw, _, results = restore(arena, arena / "a.tar")
    assert results == {"etc/evil": True, "double/slash": True}
    assert (arena / "target" / "etc" / "evil").read_bytes() == b"x"
    assert any("leading '/'" in m for _, m in rw)


def test_write_through_a_symlink_from_the_archive_is_refused(arena):
    outside = str(arena / "outside")
    write_archive(
        arena / "a.tar",
        [
            member("link", type=tarfile.SYMTYPE, linkname=outside),
            member("link/secret", b"pwned"),
            member("link/new", b"pwned"),
            member("rel", type=tarfile.SYMTYPE, linkname="../outside"),
            member("rel/new", b"pwned"),
            member("deep/x", type=tarfile.SYMTYPE, linkname="/"),
            member("deep/x/tmp/new", b"pwned"),
        ],
    )
    _, warnings, results = restore(arena, arena / "a.tar")
    assert results["link"] and results["rel"]
    assert not results["link/secret"] and not results["link/new"] and not results["rel/new"]
    assert not results["deep/x/tmp/new"]
    assert os.readlink(arena / "target" / "link") == outside  # the symlink itself is restored as data
    assert any("symlink" in m for _, m in warnings)


def test_a_file_member_replaces_a_symlink_instead_of_following_it(arena):
    write_archive(
        arena / "a.tar",
        [
            member("s", type=tarfile.SYMTYPE, linkname=str(arena / "outside" / "secret")),
            member("s", b"replaced"),
        ],
    )
    _, warnings, results = restore(arena, arena / "a.tar")
    assert (arena / "target" / "s").read_bytes() == b"replaced"
    assert not os.path.islink(arena / "target" / "s")


def test_hard_link_escapes_are_refused(arena):
    write_archive(
        arena / "a.tar",
        [
            member("h1", type=tarfile.LNKTYPE, linkname="../outside/secret"),
            member("h2", type=tarfile.LNKTYPE, linkname=str(arena / "outside" / "secret")),
            member("sym", type=tarfile.SYMTYPE, linkname=str(arena / "outside")),
            member("h3", type=tarfile.LNKTYPE, linkname="sym/secret"),
            member("real", b"inside"),
            member("h4", type=tarfile.LNKTYPE, linkname="real"),
        ],
    )
    _, warnings, results = restore(arena, arena / "a.tar")
    assert results == {"h1": False, "h2": False, "sym": True, "h3": False, "real": True, "h4": True}
    assert os.stat(arena / "target" / "h4").st_ino == os.stat(arena / "target" / "real").st_ino
    assert not os.path.exists(arena / "target" / "h2")


def test_pax_path_and_linkpath_overrides_are_checked_the_same(arena):
    write_archive(
        arena / "a.tar",
        [
            member("innocent", b"pwned", pax_headers={"path": "../outside/secret"}),
            member("innocent2", b"pwned", pax_headers={"path": "/../outside/new"}),
            member("lnk", type=tarfile.LNKTYPE, linkname="ok", pax_headers={"linkpath": "../outside/secret"}),
        ],
    )
    _, warnings, results = restore(arena, arena / "a.tar")
    assert results == {"../outside/secret": False, "../outside/new": False, "lnk": False}


def test_devices_and_directories_with_dotdot_are_refused(arena):
    write_archive(
        arena / "a.tar",
        [
            member("../outside/dir", type=tarfile.DIRTYPE),
            member("../outside/fifo", type=tarfile.FIFOTYPE),
            member("../outside/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3),
        ],
    )
    _, _, results = restore(arena, arena / "a.tar")
    assert not any(results.values())


def test_huge_size_claim_ends_as_a_truncated_archive(arena):
    archive = arena / "a.tar"
    write_archive(archive, [member("ok", b"fine"), member("huge", b"a" * 100)], fmt=tarfile.GNU_FORMAT)
    data = bytearray(archive.read_bytes())
    pos = data.index(b"huge")
    header = bytearray(data[pos : pos + 512])
    header[124:136] = b"77777777777\0"  # 8 GiB - 1
    header[148:156] = b"        "
    header[148:156] = b"%06o\0 " % sum(header)
    data[pos : pos + 512] = header
    archive.write_bytes(bytes(data))
    before = tree_state(arena / "outside")
    with (
        pytest.raises(TruncatedArchiveError, match="last complete member: 'ok'"),
        open_extractor(str(arena / "target")) as x,
    ):
        for entry in ArchiveReader(StreamTape(str(archive))):
            x.extract(entry)
    assert sorted(os.listdir(arena / "target")) == ["ok"]
    assert tree_state(arena / "outside") == before


def test_huge_pax_claims_are_refused_not_allocated(arena):
    archive = arena / "a.tar"
    write_archive(
        archive,
        [member("sized", b"abc", pax_headers={"size": str(10**18)}), member("after", b"x")],
    )
    with pytest.raises(TruncatedArchiveError):
        for entry in ArchiveReader(StreamTape(str(archive))):
            entry.skip()
    # An extended header that claims a gigabyte is refused as damaged; the reader goes on.
    data = bytearray(archive.read_bytes())
    write_archive(archive, [member("p", b"abc", pax_headers={"comment": "x"}), member("after", b"x")])
    data = bytearray(archive.read_bytes())
    header = bytearray(data[0:512])
    header[124:136] = b"10000000000\0"
    header[148:156] = b"        "
    header[148:156] = b"%06o\0 " % sum(header)
    data[0:512] = header
    archive.write_bytes(bytes(data))
    reader = ArchiveReader(StreamTape(str(archive)))
    names = [e.member.path for e in reader]
    assert "after" in names
    assert any("refused" in m for _, m in reader.warnings)


def test_hostile_sparse_maps_do_not_escape_or_crash(arena):
    archive = arena / "a.tar"
    write_archive(
        archive,
        [
            member("sp1", b"abcd", pax_headers={"GNU.sparse.map": "10,4", "GNU.sparse.size": str(2**62)}),
            member("sp2", b"abcd", pax_headers={"GNU.sparse.map": "100,4,0,4", "GNU.sparse.size": "200"}),
            member("sp3", b"abcd", pax_headers={"GNU.sparse.map": "0,400", "GNU.sparse.size": "500"}),
            member("fine", b"ok"),
        ],
    )
    rw, xw, results = restore(arena, archive)
    assert results.get("fine") is True
    assert "sp2" not in results and "sp3" not in results  # bad maps: member skipped with a warning
    assert results.get("sp1") is False  # a 4 EiB file: the file system says no, a warning says so
    assert {w for w, _ in rw} >= {"sp2", "sp3"}


@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, 10_000, 100_000])
def test_garbage_is_not_an_archive_and_no_traceback(arena, size):
    archive = arena / "a.tar"
    archive.write_bytes(os.urandom(size))
    before = tree_state(arena / "outside")
    try:
        with open_extractor(str(arena / "target")) as x:
            for entry in ArchiveReader(StreamTape(str(archive))):
                x.extract(entry)
    except RescueError as e:
        assert str(e)
    assert tree_state(arena / "outside") == before
    assert os.listdir(arena / "target") == []


def test_an_extended_header_of_very_many_tiny_records_is_refused(arena):
    archive = arena / "a.tar"
    body = b"6 c=x\n" * 400_000  # 2.4 MB: under the size limit, but 400,000 records
    write_archive(archive, [member("tiny", b"abc", pax_headers={"comment": "x"}), member("after", b"x")])
    data = bytearray(archive.read_bytes())
    header = bytearray(data[0:512])
    header[124:136] = b"%011o\0" % len(body)
    header[148:156] = b"        "
    header[148:156] = b"%06o\0 " % sum(header)
    pax_len = int(bytes(data[124:135]), 8)
    rest = data[512 + (pax_len + 511) // 512 * 512 :]
    archive.write_bytes(bytes(header) + body + b"\0" * (-len(body) % 512) + bytes(rest))
    reader = ArchiveReader(StreamTape(str(archive)))
    names = [e.member.path for e in reader]
    assert names == ["tiny", "after"]
    assert any("records in one extended header" in m for _, m in reader.warnings)
