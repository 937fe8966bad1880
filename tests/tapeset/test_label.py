"""The label and catalog tape files: round trips through a SIMH image, and plain GNU tar reading them."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from rescue.archive.tarformat import check_record_size
from rescue.tape.base import EndOfDataError
from rescue.tape.simh import SimhTape
from rescue.tapeset.catalog_tape import read_catalog, write_catalog
from rescue.tapeset.label import Label, read_label, write_label
from rescue.tapeset.smalltar import VolumeError
from tests.support import need_tool
from tests.support.tapes import make_label, split_tape

RECORD = 20 * 512


def test_label_round_trips_and_leaves_the_tape_at_file_1(tmp_path):
    tap = str(tmp_path / "t.tap")
    layout = {"format": "rescue-layout-minimal", "mounts": [{"mount_point": "/", "fstype": "ext4"}]}
    with SimhTape(tap, write=True) as tape:
        write_label(tape, make_label(), layout)
        tape.write_record(b"A" * RECORD)
        tape.write_filemarks(1)
    with SimhTape(tap) as tape:
        label = read_label(tape)
        assert label.host == "web1" and label.record_size == RECORD and label.retention_until is None
        assert label.dumps == ["var/lib/rescue/dumps/mariadb.sql"]
        assert label.layout == layout
        assert tape.read_record(RECORD) == b"A" * RECORD


def test_label_records_all_have_the_set_record_size(tmp_path):
    tap = str(tmp_path / "t.tap")
    with SimhTape(tap, write=True) as tape:
        write_label(tape, make_label(), None)
    with SimhTape(tap) as tape:
        sizes = []
        while True:
            record = tape.read_record(1 << 20)
            if not record:
                break
            sizes.append(len(record))
    assert sizes and set(sizes) == {RECORD}


def test_plain_tar_tape_has_no_label_and_is_left_rewound(tmp_path):
    need_tool("tar")
    (tmp_path / "f").write_text("x")
    archive = tmp_path / "a.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(tmp_path), "f"], check=True)
    tap = str(tmp_path / "t.tap")
    with SimhTape(tap, write=True) as tape:
        tape.write_record(archive.read_bytes())
        tape.write_filemarks(1)
    with SimhTape(tap) as tape:
        assert read_label(tape) is None
        assert tape.tell() == 0


def test_blank_tape_raises_end_of_data_naming_the_device(tmp_path):
    tap = str(tmp_path / "blank.tap")
    open(tap, "wb").close()
    with SimhTape(tap) as tape, pytest.raises(EndOfDataError, match="blank.tap: the tape is blank"):
        read_label(tape)


def test_gnu_tar_extracts_label_and_catalog_tape_files(tmp_path):
    need_tool("tar")
    catalog = tmp_path / "catalog.jsonl.gz"
    catalog.write_bytes(os.urandom(3 * RECORD + 17))  # spans records: content must survive the cutting
    filelist = tmp_path / "filelist.txt"
    filelist.write_text("-rw-r--r-- root/root 1 2026-11-26 02:00 etc/hostname\n")
    tap = str(tmp_path / "t.tap")
    with SimhTape(tap, write=True) as tape:
        write_label(tape, make_label(), {"mounts": []})
        tape.write_record(bytes(RECORD))
        tape.write_filemarks(1)
        write_catalog(tape, str(catalog), str(filelist), {"files": 1, "bytes": 1})
    pieces = split_tape(tap, str(tmp_path))
    assert len(pieces) == 3
    out = tmp_path / "label"
    out.mkdir()
    subprocess.run(["tar", "-xf", pieces[0], "-b", "20", "-C", str(out)], check=True)
    assert sorted(os.listdir(out)) == ["RESTORE.txt", "layout.json", "rescue-label.json"]
    assert json.loads((out / "rescue-label.json").read_text())["backup_id"] == make_label().backup_id
    restore = (out / "RESTORE.txt").read_text()
    assert "mt -f /dev/nst0 fsf 1" in restore
    assert "tar -xpf /dev/nst0 -b 20 --xattrs" in restore
    out = tmp_path / "cat"
    out.mkdir()
    subprocess.run(["tar", "-xf", pieces[2], "-b", "20", "-C", str(out)], check=True)
    assert (out / "catalog.jsonl.gz").read_bytes() == catalog.read_bytes()
    assert (out / "filelist.txt").read_text() == filelist.read_text()
    assert json.loads((out / "summary.json").read_text()) == {"files": 1, "bytes": 1}


def test_read_catalog_spaces_to_file_2_from_anywhere(tmp_path):
    catalog = tmp_path / "c.gz"
    catalog.write_bytes(b"catalog-bytes")
    filelist = tmp_path / "l.txt"
    filelist.write_text("list\n")
    tap = str(tmp_path / "t.tap")
    label = make_label()
    with SimhTape(tap, write=True) as tape:
        write_label(tape, label, None)
        for _ in range(3):
            tape.write_record(bytes(RECORD))
        tape.write_filemarks(1)
        write_catalog(tape, str(catalog), str(filelist), {"files": 7})
    with SimhTape(tap) as tape:
        tape.space_files(1)
        tape.read_record(RECORD)  # somewhere in the archive
        files = read_catalog(tape, label.catalog_file, str(tmp_path / "spool"))
    assert open(files.catalog, "rb").read() == b"catalog-bytes"
    assert open(files.filelist).read() == "list\n"
    assert files.summary == {"files": 7}


def test_missing_catalog_file_says_the_backup_did_not_finish(tmp_path):
    tap = str(tmp_path / "t.tap")
    label = make_label()
    with SimhTape(tap, write=True) as tape:
        write_label(tape, label, None)
        tape.write_record(bytes(RECORD))
        tape.write_filemarks(1)
    with SimhTape(tap) as tape, pytest.raises(VolumeError, match="did not finish"):
        read_catalog(tape, label.catalog_file, str(tmp_path / "spool"))
    with SimhTape(tap, write=True) as tape:
        tape.rewind()
        write_label(tape, label, None)  # label only: spacing to file 2 hits end of data
    with SimhTape(tap) as tape, pytest.raises(VolumeError, match="did not finish"):
        read_catalog(tape, label.catalog_file, str(tmp_path / "spool"))


def test_newer_label_version_is_refused(tmp_path):
    tap = str(tmp_path / "t.tap")
    with SimhTape(tap, write=True) as tape:
        write_label(tape, make_label(version=2), None)
    with SimhTape(tap) as tape, pytest.raises(VolumeError, match="newer than this rescue"):
        read_label(tape)


def test_odd_record_size_is_refused():
    with pytest.raises(Exception, match="multiple of 512"):
        check_record_size(1000)


def test_label_json_ignores_unknown_keys_and_rejects_other_formats():
    d = make_label().to_json()
    assert "layout" not in d and d["layout_file"] is None
    d["added_later"] = 1
    assert Label.from_json(json.dumps(d)).backup_id == make_label().backup_id
    with pytest.raises(VolumeError, match="not a rescue label"):
        Label.from_json({"format": "something-else"})
