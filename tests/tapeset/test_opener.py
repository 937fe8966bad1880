"""rescue.tapeset.opener: one policy for label, catalog and archive, and restore and verify applying it alike."""

from __future__ import annotations

import io
import os

import pytest

from rescue.errors import RescueError, UsageError
from rescue.restore.job import RestoreOptions, run_restore
from rescue.scan.verify import VerifyOptions, run_verify
from rescue.tape import open_tape
from rescue.tapeset.opener import CatalogMismatchError, open_set
from tests.support import need_tool
from tests.support.tapes import (
    catalog_members,
    flip_bytes,
    gnu_tar,
    make_tree,
    tap_records,
    tree_state,
    write_catalog_file,
    write_tap,
)

RS = 10240


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_tool("tar")
    base = tmp_path_factory.mktemp("opener")
    tree = make_tree(str(base / "tree"))
    tar = gnu_tar(tree, str(base / "a.tar"), fmt="posix")
    return {"base": base, "tar": tar, "tap": write_tap(str(base / "set.tap"), tar, RS), "tree": tree}


def copy_tap(world, tmp_path, name="t.tap") -> str:
    path = str(tmp_path / name)
    with open(world["tap"], "rb") as f, open(path, "wb") as out:
        out.write(f.read())
    return path


def damaged_catalog(world, tmp_path) -> str:
    """Two flipped bytes inside catalog.jsonl.gz (tape file 2): the tar headers around it are intact."""
    tap = copy_tap(world, tmp_path)
    start, _ = tap_records(tap)[2][0]
    flip_bytes(tap, [start + 512 + 40, start + 512 + 90])
    return tap


def restore(tap, target, **kw):
    os.makedirs(target, exist_ok=True)
    msgs = io.StringIO()
    with open_tape(str(tap)) as tape:
        result = run_restore(tape, RestoreOptions(target=str(target), messages=msgs, **kw))
    result.text = msgs.getvalue()
    return result


def verify(tap, **kw):
    msgs = io.StringIO()
    with open_tape(str(tap)) as tape:
        result = run_verify(tape, VerifyOptions(messages=msgs, results=io.StringIO(), **kw))
    result.text = msgs.getvalue()
    return result


def test_a_good_set_opens_with_its_label_catalog_and_archive_file(world):
    with open_tape(world["tap"]) as tape, open_set(tape) as ts:
        assert ts.label is not None and ts.rescue_set and ts.archive_file == 1
        assert ts.catalog_name.endswith("tape file 2") and not ts.incomplete and not ts.warnings
        assert ts.record_size == RS and len(list(ts.members())) == len(catalog_members(world["tar"], RS))
        spool = os.path.dirname(ts.catalog)
    assert not os.path.exists(spool)  # the spool directory lives as long as the set is open


def test_a_damaged_catalog_is_no_catalog_naming_tape_file_2(world, tmp_path):
    tap = damaged_catalog(world, tmp_path)
    with open_tape(tap) as tape, open_set(tape) as ts:
        assert ts.catalog is None and not ts.incomplete
        assert "tape file 2 (the catalog) is damaged" in ts.no_catalog_reason
        assert "rescue-catalog-" not in ts.no_catalog_reason  # no temporary path


def test_restore_and_verify_both_fall_back_on_a_damaged_catalog(world, tmp_path):
    tap = damaged_catalog(world, tmp_path)
    r = restore(tap, tmp_path / "t")
    assert r.exit_code == 0 and r.mode == "stream", r.text
    assert "tape file 2 (the catalog) is damaged" in r.text and "one streaming pass" in r.text
    assert tree_state(str(tmp_path / "t"))["etc/passwd"][0] == "file"
    v = verify(tap)
    # verify reads the whole archive still, and reports the damaged catalog as what is wrong with the tape
    assert v.exit_code == 1 and v.members == len(catalog_members(world["tar"], RS))
    assert [d for d in v.differences if "tape file 2 (the catalog) is damaged" in d] == v.differences


def other_catalog(world, tmp_path, **header) -> str:
    members = catalog_members(world["tar"], RS)
    return write_catalog_file(
        str(tmp_path / "other.jsonl.gz"), members, header.pop("record_size", RS), **header
    )


@pytest.mark.parametrize(
    "header, words",
    [
        ({"backup_id": "00000000-0000-4000-8000-00000000beef"}, "catalog of backup 00000000-0000-4000-8000"),
        ({"record_size": 2 * RS}, f"catalog record size {2 * RS} differs from the tape's {RS}"),
    ],
    ids=["another-backup", "record-size"],
)
def test_restore_and_verify_both_refuse_a_catalog_that_does_not_fit_the_tape(world, tmp_path, header, words):
    cat = other_catalog(world, tmp_path, **header)
    for job in (
        lambda: restore(world["tap"], tmp_path / "t", catalog=cat),
        lambda: verify(world["tap"], catalog=cat),
    ):
        with pytest.raises(CatalogMismatchError, match=words) as e:
            job()
        assert e.value.exit_code == 2
    assert os.listdir(tmp_path / "t") == []  # refused before anything was written


def test_label_and_catalog_that_disagree_are_refused_by_restore_and_verify(world, tmp_path):
    tap = str(tmp_path / "t.tap")
    catalog = catalog_members(world["tar"], RS)
    write_tap(tap, world["tar"], RS, backup_id="1b4e28ba-2fa1-11d2-883f-0016d3cca427", catalog=catalog)
    # write_tap wrote the catalog with that id too: change the label only, as in the issue.
    tap2 = str(tmp_path / "u.tap")
    write_tap(tap2, world["tar"], RS, catalog=catalog)
    with open(tap, "rb") as f:
        label0 = f.read(tap_records(tap)[0][-1][0] + RS + 8)
    with open(tap2, "rb") as f:
        rest = f.read()[len(label0) :]
    with open(tap2, "wb") as f:
        f.write(label0 + rest)
    for job in (lambda: restore(tap2, tmp_path / "t"), lambda: verify(tap2)):
        with pytest.raises(CatalogMismatchError, match="label and catalog on this tape disagree"):
            job()


def test_one_damaged_byte_in_the_label_header_still_restores_the_set(world, tmp_path):
    tap = copy_tap(world, tmp_path)
    start, _ = tap_records(tap)[0][0]
    flip_bytes(tap, [start + 100])  # the mode field of rescue-label.json's header: its checksum fails
    r = restore(tap, tmp_path / "t", paths=["etc"])
    assert r.exit_code == 0 and r.mode == "catalog", r.text
    assert "damaged label" in r.text and "reading the tape as the rescue set" in r.text
    assert "etc/passwd" in tree_state(str(tmp_path / "t")) and "RESTORE.txt" not in os.listdir(tmp_path / "t")
    v = verify(tap)  # everything checks against the catalog; the damaged label is the one defect
    assert v.exit_code == 1 and len(v.differences) == 1 and "damaged label" in v.differences[0]


def test_a_label_destroyed_entirely_is_recognised_by_tape_files_1_and_2(world, tmp_path):
    tap = copy_tap(world, tmp_path)
    start, length = tap_records(tap)[0][0]
    with open(tap, "r+b") as f:
        f.seek(start)
        f.write(os.urandom(length))
    r = restore(tap, tmp_path / "t", paths=["var/www"])
    assert r.exit_code == 0 and r.mode == "catalog", r.text
    assert "tape files 1 and 2 are read as the rescue archive and catalog" in r.text
    state = tree_state(str(tmp_path / "t"))
    assert state["var/www/big.bin"][0] == "file"


def test_archive_file_option_reads_an_archive_no_heuristic_finds(world, tmp_path):
    # Two plain tar archives on one tape, no label: the second is wanted.
    from rescue.tape.simh import SimhTape

    tap = str(tmp_path / "two.tap")
    with SimhTape(tap, write=True) as tape, open(world["tar"], "rb") as f:
        data = f.read()
        for _ in range(2):
            for i in range(0, len(data), RS):
                tape.write_record(data[i : i + RS])
            tape.write_filemarks(1)
    with open_tape(tap) as tape, open_set(tape, archive_file=1) as ts:
        assert ts.archive_file == 1 and ts.catalog is None
    r = restore(tap, tmp_path / "t", paths=["etc"], archive_file=1)
    assert r.exit_code == 0 and r.mode == "stream" and "tape file 1" in r.text, r.text
    with pytest.raises(UsageError, match="numbered from 0"):
        restore(tap, tmp_path / "u", archive_file=-1)


def test_a_file_that_is_not_tar_does_not_look_like_a_tar_archive(tmp_path):
    text = tmp_path / "services"
    text.write_text("ssh  22/tcp\n" * 2000)
    for job in (lambda: restore(str(text), tmp_path / "t"), lambda: verify(str(text))):
        with pytest.raises(UsageError, match="does not look like a tar archive or tape image") as e:
            job()
        assert e.value.exit_code == 2


def test_a_set_without_its_catalog_is_incomplete(world, tmp_path):
    tap = copy_tap(world, tmp_path)
    cut = tap_records(tap)[2][0][0] - 4  # where tape file 2 begins: the backup died before its catalog
    with open(tap, "r+b") as f:
        f.truncate(cut)
    for read_catalog in (True, False):
        with open_tape(tap) as tape, open_set(tape, read_catalog=read_catalog) as ts:
            assert ts.incomplete and ts.catalog is None
    v = verify(tap)
    assert v.exit_code == 1 and any("incomplete" in d for d in v.differences)
    with pytest.raises(RescueError, match="not on the tape"):
        with open(tap, "r+b") as f:
            f.truncate(tap_records(tap)[1][0][0] - 4)  # only the label left
        verify(tap)


def test_a_directory_volume_with_small_records_restores_by_its_catalog(tmp_path):
    # The volume's files count in 256 KiB records unless told: the opener tells it the set's record size, so
    # the catalog's record numbers name the records read.
    from rescue.backup.job import run_backup
    from tests.support.backups import make_tree as small_tree
    from tests.support.backups import options

    tree = tmp_path / "tree"
    small_tree(tree)
    vol = str(tmp_path) + "/vol/"
    with open_tape(vol, write=True) as tape:
        run_backup(tape, str(tree), options(tmp_path), out=io.StringIO())
    r = restore(vol, tmp_path / "t", paths=["etc", "boot"])
    assert r.exit_code == 0 and r.mode == "catalog", r.text
    assert (tmp_path / "t/boot/vmlinuz").read_bytes() == (tree / "boot/vmlinuz").read_bytes()


def test_a_tape_holding_only_a_cut_label_is_fatal_not_a_plain_tar_restore(world, tmp_path):
    tap = copy_tap(world, tmp_path)
    start, length = tap_records(tap)[0][0]
    with open(tap, "r+b") as f:
        f.truncate(start + length - 100)  # inside the label's first record: nothing after it
    with pytest.raises(
        RescueError, match="nothing readable in tape file 0|damaged rescue label and no archive"
    ):
        restore(tap, tmp_path / "t")
    assert os.listdir(tmp_path / "t") == []  # not the label's own files, as if it were a plain tar tape
