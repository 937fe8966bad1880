"""Archives written by real GNU tar, in every format it writes, restore through our reader and extractor exactly
as `tar --extract` restores them (content, modes, owners, nanosecond mtimes, xattrs, ACLs, sparse maps, links),
from a plain archive file and from a SIMH tape image with the records tar wrote."""

from __future__ import annotations

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
from rescue.archive.reader import ArchiveReader
from rescue.tape.stream import StreamTape
from tests.support import need, need_tool
from tests.support.gnutar import (
    IS_ROOT,
    MTIME_NS,
    assert_positions,
    build_tree,
    data_map,
    gnu_extract,
    our_extract,
    snapshot,
    tar_create,
)

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
