"""The common-member fast paths give what the general code gives, and leave everything else to it: pax records
split at newlines (parse._plain_pax against parse._general_pax) and the Member of a plain header with only
mtime/atime/ctime records (assemble._plain against assemble._general), over generated headers of every format
and type, long names in prefix or pax, GNU sparse and xattr records, and number fields a hostile archive holds."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rescue.archive import assemble, parse
from rescue.archive import tarformat as tf

_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")
MAGICS = {"ustar": tf.USTAR_MAGIC, "gnu": tf.GNU_MAGIC, "v7": bytes(8)}
NAMES = [
    b"a",
    b"etc/passwd",
    b"./srv/f1.dat",
    b"/abs/x",
    b"dir/",
    b"a//b",
    b"a/../b",
    b"",
    b"caf\xc3\xa9",
    b"\xff\xfe",
]
NUMBERS = [
    b"0000644\0",
    b"0000755 ",
    b"   644\0\0",
    b"0001750\0",
    b"\0" * 8,
    b" " * 8,
    b"00x0644\0",
    b"\x80" + bytes(6) + b"\x07",
    b"07\x0077\0\0\0",
]
TIMES = [b"15304322577\0", b"00000000000\0", b"\xff" + b"\xff" * 11, b"1796318588 \0"]
PAX = [
    ("mtime", b"1796318588.601762818"),
    ("atime", b"1796318588.6"),
    ("ctime", b"1796318588"),
    ("mtime", b"-12.5"),
    ("mtime", b"x"),
    ("path", b"long/name"),
    ("linkpath", b"long/target"),
    ("uid", b"4000000"),
    ("SCHILY.xattr.user.k", b"v\n"),
    ("GNU.sparse.major", b"1"),
    ("GNU.sparse.realsize", b"4096"),
    ("comment", b"hello"),
]


def header(
    name, typeflag, fmt, mode, uid, mtime, size=b"00000000012\0", link=b"t", prefix=b""
) -> parse.Header:
    fields = [name, mode, uid, b"0000012\0", size, mtime, b" " * 8, typeflag, link, MAGICS[fmt]]
    fields += [b"root", b"wheel", b"0000003\0", b"0000004\0", prefix]
    block = bytearray(_HEADER.pack(*fields))
    block[148:156] = b"%06o\0 " % sum(block)
    return parse.parse_header(bytes(block))


def outcome(build):
    try:
        p = build()
    except parse.HeaderError as e:
        return "error", str(e)
    if p is None:
        return None
    return p.member, p.data_size, p.sparse_format, p.acls, p.absolute, p.unknown_keys, p.skip_reason


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(NAMES),
    st.sampled_from([b"0", b"\0", b"1", b"2", b"3", b"5", b"6", b"7", b"S", b"Z"]),
    st.sampled_from(sorted(MAGICS)),
    st.sampled_from(NUMBERS),
    st.sampled_from(NUMBERS),
    st.sampled_from(TIMES),
    st.sampled_from([b"", b"usr/share"]),
    st.lists(st.sampled_from(PAX), max_size=4),
)
def test_plain_member_is_the_general_member(name, typeflag, fmt, mode, uid, mtime, prefix, pax):
    hdr = header(name, typeflag, fmt, mode, uid, mtime, prefix=prefix)
    general = outcome(lambda: assemble._general(hdr, pax, None, None, None, 0))
    plain = outcome(lambda: assemble._plain(hdr, pax))
    if plain is not None:
        assert plain == general
    assert outcome(lambda: assemble.build_member(hdr, pax)) == general


def test_plain_member_takes_the_common_members_and_leaves_the_rest():
    times = [("mtime", b"1796318588.5"), ("atime", b"1"), ("ctime", b"2")]
    regular = header(b"./srv/f", b"0", "ustar", b"0000644\0", b"0000000\0", TIMES[0])
    assert assemble._plain(regular, times).member.mtime_ns == 1796318588_500_000_000
    assert assemble._plain(header(b"d", b"5", "gnu", b"0000755\0", b"0\0", TIMES[0]), []).data_size == 0
    for hdr, pax in [
        (regular, [("path", b"x")]),  # a pax name
        (regular, [("SCHILY.xattr.user.k", b"v")]),
        (header(b"d/", b"0", "ustar", b"0000644\0", b"0\0", TIMES[0]), []),  # a directory by its slash
        (header(b"f", b"0", "ustar", b"0000644\0", b"0\0", TIMES[0], prefix=b"usr"), []),  # a prefixed name
        (header(b"f", b"0", "v7", b"0000644\0", b"0\0", TIMES[0]), []),
        (header(b"f", b"S", "gnu", b"0000644\0", b"0\0", TIMES[0]), []),  # oldgnu sparse
        (header(b"f", b"\0", "gnu", b"0000644\0", b"0\0", TIMES[0]), []),  # pre-POSIX regular file
    ]:
        assert assemble._plain(hdr, pax) is None


@given(st.binary(max_size=13) | st.sampled_from(NUMBERS + TIMES + [b"7\0", b"+7\0", b"7_7\0", b"\xff" * 8]))
def test_number_fields_fast_and_general_agree(field):
    assert pax_outcome(parse.parse_number, field) == pax_outcome(parse._general_number, field)


def pax_outcome(parse_fn, data):
    try:
        return parse_fn(data)
    except parse.HeaderError as e:
        return "error", str(e)


RECORD_TEXT = st.sampled_from(
    [b"mtime", b"path", b"k", b"", b"a=b", b"x\ny", b"\0", b"caf\xc3\xa9", b" ", b"1"]
)


@st.composite
def pax_data(draw):
    out = b""
    for _ in range(draw(st.integers(0, 4))):
        body = b" %s=%s\n" % (draw(RECORD_TEXT), draw(RECORD_TEXT))
        length = len(body) + len(str(len(body) + 2))
        length = draw(st.sampled_from([length, length + 1, length - 1, 0]))
        digits = draw(
            st.sampled_from([b"%d" % length, b"0%d" % length, b"+%d" % length, b"0" * 24 + b"%d" % length])
        )
        out += digits + body
    return out + draw(st.sampled_from([b"", b"\0\0", b"\n", b"9"]))


@settings(max_examples=1500, deadline=None)
@given(pax_data())
def test_plain_pax_is_the_general_pax(data):
    general = pax_outcome(parse._general_pax, data)
    plain = parse._plain_pax(data)
    if plain is not None:
        assert plain == general
    assert pax_outcome(parse.parse_pax, data) == general


@pytest.mark.parametrize(
    "data",
    [
        b"30 mtime=1796318588.601762818\n30 atime=1796318588.601725152\n",
        b"18 SCHILY.xattr.a=\n",
        b"7 =ab\n\n",  # an empty key; the next line is no record
        b"12 k=a\nb=c\n",  # a value with a newline: general code
        b"9 path=a\n\0\0",  # NUL padding: general code
    ],
)
def test_plain_pax_examples(data):
    assert pax_outcome(parse.parse_pax, data) == pax_outcome(parse._general_pax, data)
