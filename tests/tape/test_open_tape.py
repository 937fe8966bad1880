"""open_tape(): one factory picks the backend from the device name, $TAPE or /dev/nst0."""

from __future__ import annotations

import pytest

from rescue.tape import backend_kind, default_device, open_tape
from rescue.tape.base import NoMediumError, TapeError
from rescue.tape.simh_format import record_bytes


def test_default_device_is_tape_variable_then_nst0(monkeypatch):
    monkeypatch.delenv("TAPE", raising=False)
    assert default_device() == "/dev/nst0"
    monkeypatch.setenv("TAPE", "/srv/night.tap")
    assert default_device() == "/srv/night.tap"


def test_missing_default_drive_says_how_to_name_one(monkeypatch):
    monkeypatch.setenv("TAPE", "/dev/nst97")
    with pytest.raises(NoMediumError, match=r"^/dev/nst97: no such device; give -f DEVICE or set \$TAPE$"):
        open_tape()


def test_names_pick_their_backends(tmp_path):
    (tmp_path / "vol").mkdir()
    (tmp_path / "a.tar").write_bytes(bytes(1024))
    (tmp_path / "image.dat").write_bytes(record_bytes(b"x" * 100))
    assert backend_kind("/dev/null") == "st"  # any character device
    assert backend_kind(str(tmp_path / "vol")) == "dir"
    assert backend_kind(str(tmp_path / "a.tar")) == "stream"
    assert backend_kind(str(tmp_path / "image.dat")) == "simh"  # sniffed
    assert backend_kind(str(tmp_path / "new.tap"), write=True) == "simh"
    assert backend_kind(str(tmp_path / "new") + "/", write=True) == "dir"
    assert backend_kind(str(tmp_path / "new.tar"), write=True) == "stream"
    assert backend_kind("-") == "stream"


def test_opened_backends_have_their_kind(tmp_path):
    with open_tape(str(tmp_path / "t.tap"), write=True) as t:
        assert t.kind == "simh"
    with open_tape(str(tmp_path / "d") + "/", write=True) as t:
        assert t.kind == "dir"
    with open_tape(str(tmp_path / "s.tar"), write=True) as t:
        assert t.kind == "stream"


def test_unknown_new_name_for_writing_is_refused_with_the_choices(tmp_path):
    with pytest.raises(TapeError, match=r"new\.bin: does not exist; name a new tape image \*\.tap"):
        open_tape(str(tmp_path / "new.bin"), write=True)


def test_missing_image_to_read_names_it(tmp_path):
    with pytest.raises(NoMediumError, match="gone.tap"):
        open_tape(str(tmp_path / "gone.tap"))
