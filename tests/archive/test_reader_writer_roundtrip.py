"""Archives our writer makes come back through our reader and extractor identical to the source tree, every
member at the catalog position the writer reported and with the SHA-256 it computed."""

from __future__ import annotations

import os

from rescue.archive.extract import Extractor
from rescue.archive.reader import ArchiveReader
from rescue.tape.simh import SimhTape
from rescue.tape.stream import StreamTape
from tests.support.archive import build_tree, snapshot, write_tree_archive


def test_writer_archive_restores_identically_with_catalog_checksums(tmp_path):
    src = tmp_path / "src"
    build_tree(src)
    archive = tmp_path / "a.tar"
    _, written = write_tree_archive(src, archive, record_size=64 * 1024)
    by_path = {m.path: m for m in written}
    dest = tmp_path / "dest"
    dest.mkdir()
    seen = []
    with StreamTape(str(archive), record_size=64 * 1024) as tape, Extractor(str(dest)) as x:
        for entry in ArchiveReader(tape):
            m = entry.member
            w = by_path[m.path]
            assert (m.record, m.offset) == (w.record, w.offset), m.path
            assert x.extract(entry, w.sha256 if m.type == "file" else None), (m.path, x.warnings)
            seen.append(m.path)
    assert x.warnings == []
    assert sorted(seen) == sorted(by_path)
    ours, theirs = snapshot(dest), snapshot(src)
    ours.pop(".", None)
    theirs.pop(".", None)
    assert ours == theirs


def test_catalog_positions_seek_straight_to_members_on_a_tape(tmp_path):
    src = tmp_path / "src"
    build_tree(src)
    archive = tmp_path / "a.tar"
    _, written = write_tree_archive(src, archive, record_size=8192)
    tap = str(tmp_path / "a.tap")
    data = archive.read_bytes()
    with SimhTape(tap, write=True) as t:
        for i in range(0, len(data), 8192):
            t.write_record(data[i : i + 8192])
        t.write_filemarks(1)
    files = [m for m in written if m.type == "file" and m.size > 0]
    picks = [files[-1], files[0], files[len(files) // 2]]  # out of order: seeks back and forth
    with SimhTape(tap) as t:
        reader = ArchiveReader(t)
        for want in picks:
            reader.seek_record(want.record, want.offset)
            entry = next(iter(reader))
            assert entry.member.path == want.path
            body = entry.read()
            if want.sparse is None:
                with open(os.path.join(src, want.path), "rb") as f:
                    assert body == f.read()
