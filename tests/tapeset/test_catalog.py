"""The catalog file: header line, one member per line, gzip; streaming both ways."""

import gzip
import io
import json

import pytest

from rescue.archive.member import Member
from rescue.tapeset.catalog import CatalogError, CatalogWriter, open_catalog


def sample(i):
    return Member(
        path=f"etc/file{i}",
        type="file",
        size=i,
        mode=0o4755,
        uid=1000,
        gid=100,
        uname="alice",
        gname="users",
        mtime_ns=1_700_000_000_123_456_789 + i,
        xattrs={"user.note": b"x"},
        sha256="ab" * 32,
        record=i // 3,
        offset=(i % 3) * 512,
    )


def test_members_round_trip_in_tape_order(tmp_path):
    path = str(tmp_path / "catalog.jsonl.gz")
    with CatalogWriter(path, {"backup_id": "b1", "record_size": 262144}) as w:
        for i in range(5):
            w.add(sample(i))
        w.add(Member(path="dev/sda", type="blockdev", mode=0o660, devmajor=8, devminor=0))
        w.add(Member(path="lib/ld.so", type="symlink", linkname="../usr/lib/ld.so"))
    header, members = open_catalog(path)
    assert header["format"] == "rescue-catalog" and header["backup_id"] == "b1"
    got = list(members)
    assert [m.path for m in got] == [f"etc/file{i}" for i in range(5)] + ["dev/sda", "lib/ld.so"]
    assert got[4].mtime_ns == sample(4).mtime_ns and got[4].record == 1 and got[4].offset == 512
    assert got[4].xattrs == {"user.note": b""}  # names only
    assert (got[5].devmajor, got[5].devminor) == (8, 0)
    assert got[6].linkname == "../usr/lib/ld.so"


def test_catalog_is_readable_with_zcat(tmp_path):
    path = tmp_path / "c.gz"
    with CatalogWriter(str(path), {"backup_id": "b"}) as w:
        w.add(sample(1))
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert json.loads(lines[0])["version"] == 1
    assert json.loads(lines[1])["path"] == "etc/file1"


def test_same_content_gives_same_bytes():
    def build():
        buf = io.BytesIO()
        w = CatalogWriter(buf, {"backup_id": "b"})
        w.add(sample(2))
        w.close()
        return buf.getvalue()

    assert build() == build()


def test_non_utf8_names_survive(tmp_path):
    name = b"srv/caf\xe9".decode("utf-8", "surrogateescape")
    path = str(tmp_path / "c.gz")
    with CatalogWriter(path, {}) as w:
        w.add(Member(path=name, type="file"))
    _, members = open_catalog(path)
    assert next(members).path.encode("utf-8", "surrogateescape") == b"srv/caf\xe9"


def test_a_file_that_is_not_a_catalog_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b'{"hello": 1}\n'))
    with pytest.raises(CatalogError, match="not a rescue catalog"):
        open_catalog(str(path))
    path.write_bytes(b"plain text")
    with pytest.raises(CatalogError, match="not a rescue catalog"):
        open_catalog(str(path))


def test_a_damaged_line_names_its_line_number(tmp_path):
    path = tmp_path / "c.gz"
    path.write_bytes(
        gzip.compress(b'{"format":"rescue-catalog","version":1}\n{"path":"a","type":"file"}\n{oops\n')
    )
    _, members = open_catalog(str(path))
    with pytest.raises(CatalogError, match="line 3"):
        list(members)
