"""The header parser's fast paths give exactly what the general code gives: the checksum sum taken from Adler-32
for NUL-padded blocks, and "./"-prefixed names (GNU tar's `-C dir .`) made relative without splitting."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from rescue.archive import parse


def _slow_normalize(name: str):
    absolute = name.startswith("/")
    return "/".join(p for p in name.split("/") if p not in ("", ".")), absolute


@given(st.binary(min_size=512, max_size=512), st.integers(min_value=0, max_value=512))
def test_checksum_byte_sum_equals_sum_for_any_block(noise, zeros):
    block = bytes(zeros) + noise[zeros:]
    assert parse._byte_sum(block) == sum(block)


def test_checksum_byte_sum_at_the_wrap_point():
    # 256 NULs and 256 bytes of 0xff: the largest sum the Adler-32 path takes (65280 < 65521).
    block = bytes(256) + b"\xff" * 256
    assert parse._byte_sum(block) == sum(block) == 65280
    block = bytes(255) + b"\xff" * 257  # one NUL fewer: over the bound, the plain sum is used
    assert parse._byte_sum(block) == sum(block)


def test_header_with_a_wrong_checksum_still_refused():
    block = bytearray(512)
    block[0:5] = b"hello"
    block[100:108] = b"0000644\0"
    block[124:136] = b"00000000000\0"
    block[156:157] = b"0"
    block[257:263] = b"ustar\0"
    block[148:156] = b"        "
    good = sum(block)
    block[148:156] = b"%06o\0 " % good
    assert parse.parse_header(bytes(block)).size == 0
    block[148:156] = b"%06o\0 " % (good + 65521)  # equal modulo 65521: must still be refused
    try:
        parse.parse_header(bytes(block))
    except parse.HeaderError:
        pass
    else:
        raise AssertionError("a checksum off by 65521 was accepted")


@given(st.lists(st.sampled_from(["", ".", "..", "a", "b.c", "/", "./", "x/"]), min_size=1, max_size=6))
def test_dot_slash_names_normalize_like_the_general_rule(parts):
    name = "./" + "/".join(parts)
    assert parse.normalize_name(name) == _slow_normalize(name)


def test_dot_slash_name_fast_path_examples():
    assert parse.normalize_name("./etc/passwd") == ("etc/passwd", False)
    assert parse.normalize_name("./") == ("", False)
    assert parse.normalize_name("./.") == ("", False)
    assert parse.normalize_name(".//etc") == ("etc", False)
    assert parse.normalize_name("./a/./b") == ("a/b", False)
    assert parse.normalize_name("./../x") == ("../x", False)  # ".." stays: extraction refuses it
    assert parse.normalize_name(os.path.join(".", "a", "")) == ("a", False)
