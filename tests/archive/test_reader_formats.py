"""Archives written by real GNU tar, in every format it writes, restore through our reader and extractor exactly
as `tar --extract` restores them (content, modes, owners, nanosecond mtimes, xattrs, ACLs, sparse maps, links),
from a plain archive file and from a SIMH tape image with the records tar wrote."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from rescue.archive import parse
from rescue.archive.extract import Extractor
from rescue.archive.reader import ArchiveReader, TruncatedArchiveError
from rescue.errors import RescueError
from rescue.tape.simh import SimhTape
from rescue.tape.stream import StreamTape
from tests.support import need, need_tool

IS_ROOT = os.geteuid() == 0
MTIME_NS = 1_700_000_000_123_456_789


def build_tree(root, *, long_names=True, big_ids=False, xattrs=False, sparse=False, specials=True):
    """A small tree with every kind of member; options add what only some formats can hold."""
    os.makedirs(root)
    p = lambda *a: os.path.join(root, *a)  # noqa: E731
    with open(p("file.txt"), "wb") as f:
        f.write(b"hello world\n" * 100)
    with open(p("big.bin"), "wb") as f:
        f.write(os.urandom(700_000))
    open(p("empty"), "wb").close()
    os.mkdir(p("dir"))
    with open(p("dir", "résumé.txt"), "wb") as f:
        f.write(b"unicode name\n")
    os.chmod(p("dir"), 0o750)
    with open(p("suid"), "wb") as f:
        f.write(b"#!/bin/sh\n")
    os.symlink("file.txt", p("sym"))
    os.link(p("file.txt"), p("hard"))
    if specials:
        os.mkfifo(p("fifo"))
    if IS_ROOT:
        os.chown(p("suid"), 1234, 2345)
    if IS_ROOT and specials:
        os.mknod(p("null"), 0o620 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(p("suid"), 0o4755)
    if long_names:
        deep = p("d" * 120, "e" * 90)
        os.makedirs(deep)
        with open(os.path.join(deep, "f" * 150), "wb") as f:
            f.write(b"long name\n")
        os.symlink("t" * 180, p("longsym"))
        os.link(os.path.join(deep, "f" * 150), p("hard-to-long"))
    if big_ids and IS_ROOT:
        with open(p("bigid"), "wb") as f:
            f.write(b"big ids\n")
        os.chown(p("bigid"), 3_000_000, 4_000_000)
    if xattrs:
        os.setxattr(p("file.txt"), "user.colour", b"blue\x00\xff")
        subprocess.run(["setfacl", "-m", "u:1234:rw,g:2345:r", p("file.txt")], check=True)
        subprocess.run(["setfacl", "-d", "-m", "u:1234:rwx", p("dir")], check=True)
    if sparse:
        with open(p("sparse.img"), "wb") as f:
            f.truncate(20 * 1024 * 1024)
            f.seek(4096)
            f.write(b"data" * 1024)
            f.seek(12 * 1024 * 1024)
            f.write(b"more" * 4096)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)
    os.utime(root, ns=(MTIME_NS, MTIME_NS))


def data_map(path):
    """[(start, end)] of data regions, by SEEK_DATA/SEEK_HOLE."""
    regions = []
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.fstat(fd).st_size
        pos = 0
        while pos < end:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            stop = os.lseek(fd, start, os.SEEK_HOLE)
            regions.append((start, stop))
            pos = stop
    finally:
        os.close(fd)
    return regions


def snapshot(root, *, with_atime=False):
    """Everything a restore must reproduce, per relative path."""
    out = {}
    first_of_inode = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in [""] + dirnames + filenames if dirpath == root else dirnames + filenames:
            path = os.path.join(dirpath, n) if n else dirpath
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            entry = {
                "type": stat.S_IFMT(st.st_mode),
                "mode": oct(stat.S_IMODE(st.st_mode)),
                "uid": st.st_uid,
                "gid": st.st_gid,
                "mtime_ns": st.st_mtime_ns,
            }
            try:
                names = os.listxattr(path, follow_symlinks=False)
            except OSError:
                names = []
            entry["xattrs"] = {x: os.getxattr(path, x, follow_symlinks=False) for x in sorted(names)}
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    entry["sha256"] = hashlib.sha256(f.read()).hexdigest()
                entry["size"] = st.st_size
                entry["map"] = data_map(path)
                key = (st.st_dev, st.st_ino)
                entry["inode_of"] = first_of_inode.setdefault(key, rel)
            elif stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                entry["rdev"] = st.st_rdev
            out[rel] = entry
    return out


def tar_create(src, archive, fmt, *extra):
    cmd = ["tar", f"--format={fmt}", *extra, "-cf", archive, "-C", src, "."]
    subprocess.run(cmd, check=True, capture_output=True)


def gnu_extract(archive, dest, *extra):
    os.makedirs(dest)
    cmd = ["tar", "-xpf", archive, "--numeric-owner", *extra, "-C", dest]
    subprocess.run(cmd, check=True, capture_output=True)


def our_extract(tape, dest, **kwargs):
    os.makedirs(dest)
    reader = ArchiveReader(tape, **kwargs)
    with Extractor(dest) as x:
        entries = []
        for entry in reader:
            assert x.extract(entry), (entry.member.path, x.warnings)
            entries.append(entry.member)
    assert reader.warnings == []
    assert x.warnings == []
    return entries


def to_simh(archive, tap, record_size):
    """Copy an archive file into a .tap image, one tape record per `record_size` bytes as tar wrote them."""
    with open(archive, "rb") as f, SimhTape(tap, write=True) as t:
        while True:
            chunk = f.read(record_size)
            if not chunk:
                break
            t.write_record(chunk)
        t.write_filemarks(1)


def assert_positions(archive, members, record_size):
    """Each member's (record, offset) is where a header block starts in the archive bytes."""
    with open(archive, "rb") as f:
        for mem in members:
            f.seek(mem.record * record_size + mem.offset)
            block = f.read(512)
            assert parse.checksum_ok(block), mem.path


FORMATS = [
    # (format, tar options, tree options)
    ("v7", [], dict(long_names=False, specials=False)),
    ("ustar", [], dict(long_names=False)),
    ("oldgnu", [], dict(big_ids=True)),
    ("gnu", [], dict(big_ids=True)),
    ("posix", [], dict(big_ids=True)),
    ("posix", ["--xattrs", "--acls", "--xattrs-include=*"], dict(xattrs=True)),
    ("posix", ["--acls"], dict(xattrs=True)),  # ACLs as SCHILY.acl text only, no binary xattr
    ("gnu", ["--sparse"], dict(sparse=True)),
    ("oldgnu", ["--sparse"], dict(sparse=True)),
    ("posix", ["--sparse", "--sparse-version=0.0"], dict(sparse=True)),
    ("posix", ["--sparse", "--sparse-version=0.1"], dict(sparse=True)),
    ("posix", ["--sparse", "--sparse-version=1.0"], dict(sparse=True)),
]


@pytest.mark.parametrize("fmt,opts,tree", FORMATS, ids=[f"{f}{''.join(o[:2])}" for f, o, _ in FORMATS])
def test_gnu_tar_archive_restores_as_gnu_tar_restores_it(tmp_path, fmt, opts, tree):
    need_tool("tar", "setfacl")
    src = str(tmp_path / "src")
    build_tree(src, **tree)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, fmt, *opts)
    gnu_extract(archive, str(tmp_path / "gnu"), *[o for o in opts if o.startswith("--x") or o == "--acls"])
    members = our_extract(StreamTape(archive, record_size=10240), str(tmp_path / "ours"))
    theirs = snapshot(str(tmp_path / "gnu"))
    ours = snapshot(str(tmp_path / "ours"))
    assert ours == theirs
    assert_positions(archive, members, 10240)
    # And the restore is the source itself (what the format can carry).
    source = snapshot(src)
    for rel in ("file.txt", "big.bin", "suid", "sym", "dir/résumé.txt"):
        assert ours[rel]["sha256" if "sha256" in ours[rel] else "target"] == source[rel].get(
            "sha256", source[rel].get("target")
        )
        assert ours[rel]["mode"] == source[rel]["mode"]
    assert ours["hard"]["inode_of"] == ours["file.txt"]["inode_of"]
    if tree.get("sparse"):
        assert ours["sparse.img"]["map"] == source["sparse.img"]["map"]
        assert ours["sparse.img"]["sha256"] == source["sparse.img"]["sha256"]
    if tree.get("xattrs"):
        wanted = ("system.posix_acl_access", "system.posix_acl_default")
        if "--xattrs" in opts:
            wanted += ("user.colour",)
        for rel in ("file.txt", "dir"):
            assert {k: v for k, v in ours[rel]["xattrs"].items()} == {
                k: v for k, v in source[rel]["xattrs"].items() if k in wanted
            }
    if fmt == "posix":
        assert ours["file.txt"]["mtime_ns"] == MTIME_NS
    if tree.get("big_ids") and IS_ROOT:
        assert (ours["bigid"]["uid"], ours["bigid"]["gid"]) == (3_000_000, 4_000_000)


@pytest.mark.parametrize("blocking", [1, 20, 512])
def test_blocking_factors_read_from_a_simh_tape_with_tar_records(tmp_path, blocking):
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src, sparse=True)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "posix", "-b", str(blocking), "--sparse")
    tap = str(tmp_path / "a.tap")
    to_simh(archive, tap, blocking * 512)
    gnu_extract(archive, str(tmp_path / "gnu"), "-b", str(blocking))
    with SimhTape(tap) as t:
        members = our_extract(t, str(tmp_path / "ours"))
    assert snapshot(str(tmp_path / "ours")) == snapshot(str(tmp_path / "gnu"))
    assert_positions(archive, members, blocking * 512)


def test_record_sizes_that_are_not_block_multiples_read_the_same(tmp_path):
    """The reader takes whatever the device returns: headers that straddle records included."""
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "gnu")
    our_extract(StreamTape(archive, record_size=700), str(tmp_path / "odd"))
    our_extract(StreamTape(archive, record_size=1 << 20), str(tmp_path / "big"))
    assert snapshot(str(tmp_path / "odd")) == snapshot(str(tmp_path / "big"))


def test_seek_record_jumps_to_a_member_found_on_a_first_pass(tmp_path):
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "posix", "-b", "4")
    tap = str(tmp_path / "a.tap")
    to_simh(archive, tap, 2048)
    with SimhTape(tap) as t:
        positions = {e.member.path: (e.member.record, e.member.offset) for e in ArchiveReader(t)}
    target = "dir/résumé.txt"
    with SimhTape(tap) as t:
        reader = ArchiveReader(t)
        reader.seek_record(*positions[target])
        first = next(iter(reader))
        assert first.member.path == target
        assert first.read() == b"unicode name\n"
        # and back to an earlier one: the SIMH backend seeks
        reader.seek_record(*positions["file.txt"])
        again = next(iter(reader))
        assert again.member.path == "file.txt"
        assert reader.records_read < 40


def test_seek_record_on_a_pipe_reads_forward(tmp_path):
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "posix")
    positions = {
        e.member.path: (e.member.record, e.member.offset) for e in ArchiveReader(StreamTape(archive))
    }
    target = "dir/résumé.txt"
    with subprocess.Popen(["cat", archive], stdout=subprocess.PIPE) as proc:
        fifo = f"/proc/self/fd/{proc.stdout.fileno()}"
        tape = StreamTape(fifo)
        try:
            reader = ArchiveReader(tape)
            reader.seek_record(*positions[target])
            assert next(iter(reader)).member.path == target
        finally:
            tape.close()
            proc.stdout.close()
            proc.kill()


def test_entry_data_reads_with_read_readinto_and_skip(tmp_path):
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "gnu")
    seen = {}
    for entry in ArchiveReader(StreamTape(archive, record_size=4096)):
        if entry.member.path == "file.txt":
            buf = bytearray(7)
            n = entry.readinto(buf)
            seen["head"] = bytes(buf[:n])
            seen["rest"] = entry.read()
        elif entry.member.path == "big.bin":
            entry.skip()
            seen["big_skipped"] = entry.remaining
    assert seen["head"] + seen["rest"] == b"hello world\n" * 100
    assert seen["big_skipped"] == 0


def test_bsdtar_pax_archive_restores(tmp_path):
    need_tool("bsdtar")
    src = str(tmp_path / "src")
    build_tree(src, xattrs=True)
    archive = str(tmp_path / "a.tar")
    subprocess.run(
        ["bsdtar", "--format=pax", "-cf", archive, "-C", src, "."], check=True, capture_output=True
    )
    dest = str(tmp_path / "ours")
    os.makedirs(dest)
    reader = ArchiveReader(StreamTape(archive))
    with Extractor(dest) as x:
        for entry in reader:
            x.extract(entry)
    assert x.warnings == []
    ours, source = snapshot(dest), snapshot(src)
    for rel in ("file.txt", "big.bin", "dir/résumé.txt", "sym", "suid"):
        assert {k: v for k, v in ours[rel].items() if k != "inode_of"} == {
            k: v for k, v in source[rel].items() if k != "inode_of"
        }, rel


def test_restores_as_non_root_without_owners(tmp_path):
    need(IS_ROOT, "needs root to switch to another user")
    need_tool("tar", "setpriv")
    src = str(tmp_path / "src")
    build_tree(src)
    work = tempfile.mkdtemp()  # pytest's own tmp_path is private to root
    try:
        os.chmod(work, 0o755)
        archive = os.path.join(work, "a.tar")
        tar_create(src, archive, "posix", "--exclude=./null")
        os.chmod(archive, 0o644)
        dest = os.path.join(work, "dest")
        os.mkdir(dest)
        os.chown(dest, 65534, 65534)
        code = (
            "import sys\n"
            "from rescue.archive.reader import ArchiveReader\n"
            "from rescue.archive.extract import Extractor\n"
            "from rescue.tape.stream import StreamTape\n"
            "with Extractor(sys.argv[2]) as x:\n"
            "    ok = all([x.extract(e) for e in ArchiveReader(StreamTape(sys.argv[1]))])\n"
            "print(ok, x.warnings)\n"
        )
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code]
        out = subprocess.run(
            [*cmd, archive, dest],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("True"), out.stdout
        with open(os.path.join(dest, "file.txt"), "rb") as f:
            assert f.read() == b"hello world\n" * 100
        assert os.stat(os.path.join(dest, "file.txt")).st_uid == 65534
        assert stat.S_IMODE(os.stat(os.path.join(dest, "dir")).st_mode) == 0o750
    finally:
        shutil.rmtree(work)


def test_volume_label_is_skipped_and_a_continuation_is_reported(tmp_path):
    """GNU tar -V writes a 'V' label; -M splits a file across volumes: the second volume starts with an 'M'
    member that cannot be restored alone (reported), and the members after it restore."""
    need_tool("tar")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(30_000))
    (src / "b").write_bytes(b"after the split\n")
    labelled = str(tmp_path / "l.tar")
    subprocess.run(["tar", "-V", "MONDAY", "-cf", labelled, "-C", str(src), "b"], check=True)
    reader = ArchiveReader(StreamTape(labelled))
    assert [(e.member.path, e.read()) for e in reader] == [("b", b"after the split\n")]
    v1, v2 = str(tmp_path / "v1.tar"), str(tmp_path / "v2.tar")
    subprocess.run(
        ["tar", "--format=gnu", "-M", "-L", "20", "-cf", v1, "-f", v2, "-C", str(src), "a", "b"],
        check=True,
        capture_output=True,
    )
    reader = ArchiveReader(StreamTape(v2))
    got = [(e.member.path, e.read()) for e in reader]
    assert got == [("b", b"after the split\n")]
    assert any(w == "a" and "previous volume" in m for w, m in reader.warnings), reader.warnings


def test_pax_global_headers_solaris_x_and_binary_names(tmp_path):
    import tarfile

    archive = tmp_path / "g.tar"
    raw_name = os.fsdecode(b"caf\xe9-latin1")  # not UTF-8: tarfile writes hdrcharset=BINARY
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT, pax_headers={"uname": "globaluser"}) as tar:
        for name in ("one", raw_name):
            info = tarfile.TarInfo(name)
            info.size = 3
            info.mtime = 1_600_000_000
            tar.addfile(info, io.BytesIO(b"abc"))
    data = bytearray(archive.read_bytes())
    assert b"hdrcharset=BINARY" in data
    # Turn the per-member 'x' header into the old Solaris 'X' (same syntax) and fix its checksum.
    pos = data.index(b"hdrcharset") // 512 * 512 - 512
    assert data[pos + 156 : pos + 157] == b"x"
    data[pos + 156 : pos + 157] = b"X"
    data[pos + 148 : pos + 156] = b"        "
    data[pos + 148 : pos + 156] = b"%06o\0 " % sum(data[pos : pos + 512])
    archive.write_bytes(bytes(data))
    reader = ArchiveReader(StreamTape(str(archive)))
    members = [e.member for e in reader]
    assert [m.path for m in members] == ["one", raw_name]
    assert all(m.uname == "globaluser" for m in members)
    dest = tmp_path / "dest"
    dest.mkdir()
    with Extractor(str(dest)) as x:
        for entry in ArchiveReader(StreamTape(str(archive))):
            assert x.extract(entry)
    assert sorted(os.listdir(os.fsencode(dest))) == [b"caf\xe9-latin1", b"one"]


def test_parse_number_reads_octal_base256_and_both_checksums():
    assert parse.parse_number(b"0000644\0") == 0o644
    assert parse.parse_number(b"  644 \0") == 0o644
    assert parse.parse_number(b"\0" * 8) == 0
    assert parse.parse_number(b"\x80" + (3_000_000).to_bytes(7, "big")) == 3_000_000
    assert parse.parse_number(b"\xff" * 8) == -1
    with pytest.raises(parse.HeaderError):
        parse.parse_number(b"12x4\0")
    block = bytearray(512)
    block[0:4] = b"\xe9t\xe9!"  # high bytes: signed and unsigned sums differ
    block[156:157] = b"0"
    unsigned = sum(block) + 8 * 32
    signed = unsigned - 256 * 2
    for value in (unsigned, signed):
        block[148:156] = b"%06o\0 " % value
        assert parse.checksum_ok(bytes(block))
    block[148:156] = b"%06o\0 " % (unsigned + 1)
    assert not parse.checksum_ok(bytes(block))
    assert parse.pax_time_ns(b"1700000000.5") == 1_700_000_000_500_000_000
    assert parse.pax_time_ns(b"-1.25") == -1_250_000_000


@pytest.mark.parametrize(
    "opts",
    [["--format=oldgnu"], ["--format=gnu"], ["--format=posix", "--sparse-version=0.1"], ["--format=posix"]],
    ids=["oldgnu-extension-blocks", "gnu-extension-blocks", "pax-0.1", "pax-1.0-map-over-blocks"],
)
def test_sparse_file_with_many_regions(tmp_path, opts):
    """150 data regions: oldgnu/gnu need sparse extension blocks, pax 1.0 a map longer than one block."""
    need_tool("tar")
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "holes", "wb") as f:
        f.truncate(150 * 65536 + 4096)
        for i in range(150):
            f.seek(i * 65536 + 8192)
            f.write(bytes([i % 256]) * 4096)
    archive = str(tmp_path / "a.tar")
    extra = (
        []
        if "--sparse-version" in " ".join(opts)
        else (["--sparse-version=1.0"] if "posix" in opts[0] else [])
    )
    subprocess.run(["tar", *opts, *extra, "--sparse", "-cf", archive, "-C", str(src), "holes"], check=True)
    (members,) = [e.member for e in ArchiveReader(StreamTape(archive))]
    assert len([r for r in members.sparse if r[1]]) == 150
    our_extract(StreamTape(archive), str(tmp_path / "ours"))
    assert data_map(str(tmp_path / "ours" / "holes")) == data_map(str(src / "holes"))
    with open(tmp_path / "ours" / "holes", "rb") as a, open(src / "holes", "rb") as b:
        assert a.read() == b.read()


def test_empty_tape_file_has_no_members_but_a_seek_past_the_end_is_an_error(tmp_path):
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    assert list(ArchiveReader(StreamTape(str(empty)))) == []
    need_tool("tar")
    src = str(tmp_path / "src")
    build_tree(src, long_names=False)
    archive = str(tmp_path / "a.tar")
    tar_create(src, archive, "gnu")
    reader = ArchiveReader(StreamTape(archive, record_size=10240))
    with pytest.raises(RescueError):  # the device says end of data, or the reader finds no header there
        reader.seek_record(10_000)
        list(reader)
    # Just past the last record: nothing where a header should be is a truncation, not an empty archive.
    records = os.path.getsize(archive) // 10240
    reader = ArchiveReader(StreamTape(archive, record_size=10240))
    reader.seek_record(records)
    with pytest.raises(TruncatedArchiveError):
        list(reader)
