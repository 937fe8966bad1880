"""Header encoding (rescue.archive.headers): pax records, octal limits, checksums, and what GNU tar makes of them."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rescue.archive import tarformat as tf
from rescue.archive.headers import (
    HeaderEncoder,
    encode_xattr_keyword,
    end_of_archive,
    format_mtime,
    pax_record,
    sparse_map,
)
from rescue.archive.member import Member
from tests.support import need_tool
from tests.support.archive import gnu_tar


def pax_records(blocks: bytes) -> dict:
    """Parse the records of a leading pax 'x' header (test-side parser, independent of the encoder)."""
    assert blocks[156:157] == tf.XHDTYPE
    size = int(blocks[124:136].rstrip(b"\0"), 8)
    data = blocks[512 : 512 + size]
    out = {}
    while data:
        length = int(data.split(b" ", 1)[0])
        record, data = data[:length], data[length:]
        assert record.endswith(b"\n")
        key, _, value = record.split(b" ", 1)[1][:-1].partition(b"=")
        out[key] = value
    return out


@given(st.binary(min_size=1, max_size=40).filter(lambda k: b"=" not in k), st.binary(max_size=2000))
def test_pax_record_length_counts_itself(keyword, value):
    record = pax_record(keyword, value)
    length, _, rest = record.partition(b" ")
    assert int(length) == len(record)
    assert rest == keyword + b"=" + value + b"\n"


@pytest.mark.parametrize(
    "ns, text",
    [
        (1795674308_683310510, b"1795674308.68331051"),
        (1_000_000_000, b"1"),
        (5, b"0.000000005"),
        (-500_000_000, b"-0.5"),
        (-1_000_000_001, b"-1.000000001"),
    ],
)
def test_mtime_is_written_like_gnu_tar(ns, text):
    assert format_mtime(ns) == text


def test_checksum_matches_the_posix_definition():
    enc = HeaderEncoder()
    for m in (
        Member("etc/passwd", "file", size=1234, mode=0o4755, uid=7, gid=8, uname="u" * 32, mtime_ns=10**18),
        Member("d", "dir", mode=0o1777),
        Member("x" * 200, "symlink", linkname="\u00e9" * 80),
    ):
        blocks = enc.encode(m)
        for at in range(0, len(blocks), 512):
            block = blocks[at : at + 512]
            if block[257:265] == tf.USTAR_MAGIC:
                assert int(block[148:154], 8) == tf.header_checksum(block)
                assert block[154:156] == b"\0 "


def test_short_ascii_member_has_no_pax_header():
    blocks = HeaderEncoder().encode(Member("etc/hosts", "file", size=10, mtime_ns=1_700_000_000 * 10**9))
    assert len(blocks) == 512
    assert blocks[:10] == b"etc/hosts\0"
    assert blocks[156:157] == tf.REGTYPE and blocks[257:265] == tf.USTAR_MAGIC


def test_values_that_do_not_fit_go_to_pax_records():
    m = Member(
        "p" * 150,
        "file",
        size=tf.MAX_OCTAL_SIZE + 1,
        uid=tf.MAX_OCTAL_ID + 1,
        gid=3_000_000,
        uname="a-very-long-user-name-over-32-bytes",
        gname="gr\u00fcn",
        mtime_ns=-2 * 10**9,
    )
    recs = pax_records(HeaderEncoder().encode(m))
    assert recs[b"path"] == b"p" * 150
    assert recs[b"size"] == str(tf.MAX_OCTAL_SIZE + 1).encode()
    assert recs[b"uid"] == str(tf.MAX_OCTAL_ID + 1).encode() and recs[b"gid"] == b"3000000"
    assert recs[b"uname"] == b"a-very-long-user-name-over-32-bytes"
    assert recs[b"gname"] == "gr\u00fcn".encode()
    assert recs[b"mtime"] == b"-2"


def test_non_utf8_name_is_written_raw_without_hdrcharset():
    name = os.fsdecode(b"caf\xe9")
    recs = pax_records(HeaderEncoder().encode(Member(name, "file")))
    assert recs == {b"path": b"caf\xe9"}


def test_xattr_names_are_percent_encoded_like_gnu_tar():
    assert encode_xattr_keyword("user.a=b%c") == b"SCHILY.xattr.user.a%3Db%25c"
    recs = pax_records(HeaderEncoder().encode(Member("f", "file", xattrs={"user.bin": b"\0\xff=\n"})))
    assert recs[b"SCHILY.xattr.user.bin"] == b"\0\xff=\n"


def test_sparse_member_uses_gnu_sparse_1_0_keywords_only():
    m = Member("var/lib/disk.img", "file", size=10**10, sparse=[(4096, 512), (10**10, 0)], mtime_ns=10**18)
    blocks = HeaderEncoder().encode(m)
    recs = pax_records(blocks)
    assert recs == {
        b"GNU.sparse.major": b"1",
        b"GNU.sparse.minor": b"0",
        b"GNU.sparse.name": b"var/lib/disk.img",
        b"GNU.sparse.realsize": b"10000000000",
    }
    ustar = blocks[-512:]
    assert ustar[:100].rstrip(b"\0") == b"var/lib/GNUSparseFile.0/disk.img"
    assert int(ustar[124:136].rstrip(b"\0"), 8) == 512 + 512
    assert sparse_map(m.sparse) == b"2\n4096\n512\n10000000000\n0\n".ljust(512, b"\0")


def test_gnu_tar_lists_a_member_over_8_gib_without_warnings(tmp_path):
    """A non-sparse > 8 GiB member: header from the encoder, data a hole in a sparse archive file."""
    need_tool("tar")
    size = 8 * 1024**3 + 3
    m = Member(
        "big.bin", "file", size=size, mode=0o600, uname="root", gname="root", mtime_ns=1_700_000_000 * 10**9
    )
    archive = tmp_path / "big.tar"
    with open(archive, "wb") as f:
        f.write(HeaderEncoder().encode(m))
        f.seek(tf.padded(size), os.SEEK_CUR)
        f.write(end_of_archive())
    proc = gnu_tar("-tvf", archive)
    assert proc.returncode == 0 and proc.stderr == b""
    assert b" %d " % size in proc.stdout and proc.stdout.rstrip().endswith(b"big.bin")


_members = st.builds(
    Member,
    path=st.one_of(
        st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=120),
        st.sampled_from(["etc/passwd", "caf\u00e9", os.fsdecode(b"bad\xff"), "d/"]),
    ),
    type=st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo", "chardev", "blockdev"]),
    size=st.sampled_from([0, 1, 511, 512, 10**6, tf.MAX_OCTAL_SIZE, tf.MAX_OCTAL_SIZE + 1]),
    mode=st.integers(0, 0o7777),
    uid=st.sampled_from([0, 1000, tf.MAX_OCTAL_ID, tf.MAX_OCTAL_ID + 1]),
    gid=st.sampled_from([0, 100, tf.MAX_OCTAL_ID + 1]),
    uname=st.sampled_from(["", "root", "u" * 33, "j\u00fcrgen"]),
    gname=st.sampled_from(["", "wheel"]),
    mtime_ns=st.one_of(
        st.integers(0, (tf.MAX_OCTAL_SIZE + 2) * 10**9),
        st.sampled_from([0, 1_700_000_000 * 10**9, 1_795_674_308_683_310_510, -1]),
    ),
    linkname=st.sampled_from(["", "../target", "l" * 101, "\u00e9"]),
    xattrs=st.sampled_from([{}, {"user.a": b"1"}]),
    sparse=st.sampled_from([None, [(0, 512), (4096, 0)]]),
)


@given(_members, st.integers(0, 7))
def test_fast_path_writes_exactly_what_encode_returns(m, blocks_before):
    """encode_into (the writer's per-file fast path) either declines or produces encode()'s bytes."""
    enc = HeaderEncoder()
    buf = bytearray(b"\xaa" * (4096 + 512 * blocks_before))
    pos = 512 * blocks_before
    n = enc.encode_into(buf, pos, m)
    if n == 0:
        assert buf == b"\xaa" * len(buf)  # declined without writing anything
        return
    assert bytes(buf[pos : pos + n]) == enc.encode(m)
    assert buf[:pos] == b"\xaa" * pos and buf[pos + n :] == b"\xaa" * (len(buf) - pos - n)


def test_fast_path_takes_the_common_members():
    enc = HeaderEncoder()
    buf = bytearray(1536)
    common = Member("srv/f.dat", "file", 4000, 0o644, 0, 0, "root", "root", 1_795_674_308_683_310_510)
    assert enc.encode_into(buf, 0, common) == 1536  # pax mtime record + ustar
    whole_second = Member("srv", "dir", mtime_ns=1_700_000_000 * 10**9)
    assert enc.encode_into(buf, 0, whole_second) == 512
