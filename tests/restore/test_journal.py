"""The restore journal and the steps after the files (unit level: no tape)."""

from __future__ import annotations

import os

import pytest

from rescue.archive.member import DIR, FILE, Member
from rescue.restore.finalize import boot_steps, install_reload_unit, reload_db_advice
from rescue.restore.journal import NAME, Journal, JournalError, read_journal
from rescue.tapeset.label import Label

pytestmark = pytest.mark.usefixtures("extract_mode")


def member(path, record, offset, kind=FILE):
    return Member(path=path, type=kind, record=record, offset=offset, mode=0o750, mtime_ns=123)


def test_journal_round_trip_and_resume_point(tmp_path):
    j = Journal(str(tmp_path), {"backup_id": "b1", "archive_file": 1})
    j.add(member("etc", 0, 0, DIR))
    j.add(member("etc/passwd", 0, 512))
    j.add(member("etc/hosts", 3, 1024))
    j.close()
    state = read_journal(str(tmp_path))
    assert state.header["backup_id"] == "b1" and state.count == 3
    assert state.last == (3, 1024)
    assert state.done(3, 1024) and state.done(0, 512) and not state.done(3, 1536) and not state.done(4, 0)
    assert state.dirs == [("etc", 0o750, 123)]


def test_a_torn_last_line_is_ignored(tmp_path):
    j = Journal(str(tmp_path), {"backup_id": "b1"})
    j.add(member("a", 0, 0))
    j.add(member("b", 1, 0))
    j.close()
    with open(tmp_path / NAME, "ab") as f:
        f.write(b'[7, 0, "c", "fi')  # the crash came in the middle of a write
    assert read_journal(str(tmp_path)).last == (1, 0)


def test_appending_after_resume_keeps_earlier_lines(tmp_path):
    Journal(str(tmp_path), {"backup_id": "b1"}).close()
    j = Journal(str(tmp_path), {"backup_id": "b1"}, append=True)
    j.add(member("x", 2, 0))
    j.close()
    assert read_journal(str(tmp_path)).last == (2, 0)
    j.remove()
    assert read_journal(str(tmp_path)) is None


def test_not_a_journal_is_refused(tmp_path):
    (tmp_path / NAME).write_text("hello\n")
    with pytest.raises(JournalError, match="not a rescue restore journal"):
        read_journal(str(tmp_path))


def test_boot_steps_name_fstab_uuids_and_the_bootloader(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "boot").mkdir()
    (tmp_path / "etc/fstab").write_text(
        "# comment\nUUID=1234 / ext4 defaults 0 1\nproc /proc proc defaults 0 0\n"
    )
    lines = boot_steps(str(tmp_path))
    assert any("UUID=1234" in ln for ln in lines)
    assert any("grub-install" in ln for ln in lines)
    assert boot_steps(str(tmp_path / "etc")) == []


def test_reload_advice_names_the_dumps():
    label = Label(dumps=["var/lib/rescue/dumps/mariadb.sql"])
    assert "rescue db reload" in "\n".join(reload_db_advice(label))
    assert reload_db_advice(Label()) == []


def test_reload_unit_refuses_to_write_through_a_restored_symlink(tmp_path):
    os.symlink("/nonexistent-elsewhere", tmp_path / "etc")
    with pytest.raises(Exception, match="symlink"):
        install_reload_unit(str(tmp_path))


def test_lines_reach_the_file_in_batches_and_all_at_close(tmp_path, monkeypatch):
    import rescue.restore.journal as journal

    now = [0.0]
    monkeypatch.setattr(journal, "BATCH", 3)
    j = Journal(str(tmp_path), {"backup_id": "b"}, clock=lambda: now[0])
    j.add(member("a", 0, 0))
    j.add(member("b", 0, 512))
    assert read_journal(str(tmp_path)).count == 0  # still in the batch
    j.add(member("c", 0, 1024))
    assert read_journal(str(tmp_path)).count == 3  # a full batch is written
    j.add(member("d", 1, 0))
    now[0] = 1.0  # INTERVAL passed: the next add writes
    j.add(member("e", 1, 512))
    assert read_journal(str(tmp_path)).last == (1, 512)
    j.add(member("f", 2, 0))
    j.close()
    assert read_journal(str(tmp_path)).last == (2, 0)


def test_names_that_need_escaping_survive_the_journal(tmp_path):
    odd = ['quote"back\\slash', "new\nline\ttab", "caf\u00e9/\udcff-not-utf8", "\x01ctl"]
    j = Journal(str(tmp_path), {"backup_id": "b1", "archive_file": 0})
    for i, path in enumerate(odd):
        j.add(member(path, i, 0, DIR))
    j.close()
    state = read_journal(str(tmp_path))
    assert state.count == len(odd) and state.last == (len(odd) - 1, 0)
    assert [d[0] for d in state.dirs] == odd


def test_the_header_keeps_the_selection_and_a_resume_must_ask_for_the_same(tmp_path):
    from rescue.restore.journal import check_selection, selection

    sel = selection(["etc", "var/www", "etc"], ["*.tmp"], True)
    Journal(
        str(tmp_path), {"backup_id": "b1", "device": "night.tap", "catalog": None, "selection": sel}
    ).close()
    header = read_journal(str(tmp_path)).header
    assert header["version"] == 2 and header["device"] == "night.tap"
    assert header["selection"] == {
        "paths": ["etc", "var/www"],
        "excludes": ["*.tmp"],
        "default_excludes": True,
    }
    check_selection("t", header, selection(["var/www", "etc"], ["*.tmp"], True))  # order does not matter
    with pytest.raises(JournalError, match="etc var/www excluding [*].tmp, this one asks for etc excluding"):
        check_selection("t", header, selection(["etc"], ["*.tmp"], True))
    check_selection("t", {"backup_id": "b1"}, sel)  # a version 1 journal recorded no selection
