"""`rescue mt`: mt-st's operations on a .tap image and a directory volume, its status report, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rescue.cli import main
from rescue.tape import open_tape


def rescue(*args):
    return subprocess.run([sys.executable, "-m", "rescue", *args], capture_output=True, text=True)


def mt(capsys, device, *args):
    code = main(["-f", str(device), "mt", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_weof_rewind_fsf_status_in_separate_runs_reports_file_1_block_0(tmp_path):
    tap = str(tmp_path / "x.tap")
    for args in (("weof", "2"), ("rewind",), ("fsf", "1")):
        result = rescue("-f", tap, "mt", *args)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    status = rescue("-f", tap, "mt", "status")
    assert status.returncode == 0
    assert "File number=1, block number=0, partition=0." in status.stdout.splitlines()


def test_status_prints_what_mt_st_prints(tmp_path, capsys):
    tap = tmp_path / "s.tap"
    assert mt(capsys, tap, "weof", "1")[0] == 0
    code, out, err = mt(capsys, tap, "status")
    assert (code, err) == (0, "")
    assert out == (
        "SIMH tape image:\n"
        "File number=1, block number=0, partition=0.\n"
        "Tape block size 0 bytes. Density code 0x0 (default).\n"
        "Soft error count since last status=0\n"
        "General status bits on (89000000):\n"
        " EOF EOD ONLINE\n"
    )
    mt(capsys, tap, "rewind")
    out = mt(capsys, tap, "status")[1]
    assert "General status bits on (41000000):\n BOT ONLINE\n" in out


def test_status_json(tmp_path, capsys):
    tap = tmp_path / "j.tap"
    mt(capsys, tap, "weof", "3")
    mt(capsys, tap, "bsf", "1")
    code, out, _ = mt(capsys, tap, "status", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["operation"] == "status"
    assert (doc["status"]["file_number"], doc["status"]["position"]) == (2, 2)
    assert doc["status"]["flags"] == ["EOF", "ONLINE"]  # block 0 of a file after the first, as st counts it


def test_record_and_file_spacing_tell_and_seek(tmp_path, capsys):
    tap = tmp_path / "r.tap"
    with open_tape(str(tap), write=True) as tape:
        for _ in range(2):
            for i in range(5):
                tape.write_record(bytes([i]) * 100)
            tape.write_filemarks(1)
    assert mt(capsys, tap, "fsr", "3")[0] == 0
    assert mt(capsys, tap, "tell")[1] == "At block 3.\n"
    mt(capsys, tap, "bsr", "2")
    assert mt(capsys, tap, "tell")[1] == "At block 1.\n"
    mt(capsys, tap, "fsf", "1")
    assert mt(capsys, tap, "tell")[1] == "At block 6.\n"
    mt(capsys, tap, "seek", "9")
    out = mt(capsys, tap, "status")[1]
    assert "File number=1, block number=3, partition=0." in out
    mt(capsys, tap, "eod")
    doc = json.loads(mt(capsys, tap, "tell", "--json")[1])
    assert doc == {"device": str(tap), "operation": "tell", "block": 12}


def test_errors_exit_2_with_one_line_naming_the_device(tmp_path, capsys):
    tap = tmp_path / "e.tap"
    mt(capsys, tap, "weof", "1")
    code, out, err = mt(capsys, tap, "fsf", "4")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(f"rescue: {tap}: end of data")
    code, _, err = mt(capsys, tmp_path / "missing.tap", "status")
    assert code == 2 and "missing.tap: no such tape image" in err
    code, _, err = mt(capsys, tap, "setblk", "512")
    assert code == 2 and "variable-size records only" in err
    code, _, err = mt(capsys, tap, "compression", "1")
    assert code == 2 and f"{tap}: compression control is not supported" in err


def test_offline_then_load(tmp_path, capsys):
    tap = tmp_path / "o.tap"
    mt(capsys, tap, "weof", "1")
    assert mt(capsys, tap, "offline")[0] == 0
    code, out, _ = mt(capsys, tap, "status")
    assert code == 0 and "General status bits on (0):" in out
    code, _, err = mt(capsys, tap, "fsf", "1")
    assert code == 2 and "no medium" in err
    assert mt(capsys, tap, "load")[0] == 0
    assert " BOT ONLINE" in mt(capsys, tap, "status")[1]


def test_erase_from_the_position(tmp_path, capsys):
    tap = tmp_path / "er.tap"
    mt(capsys, tap, "weof", "3")
    mt(capsys, tap, "rewind")
    mt(capsys, tap, "fsf", "1")
    assert mt(capsys, tap, "erase")[0] == 0
    assert tap.stat().st_size == 4
    assert mt(capsys, tap, "eod")[0] == 0
    assert mt(capsys, tap, "tell")[1] == "At block 1.\n"


def test_directory_volume(tmp_path, capsys):
    vol = tmp_path / "vol"
    with open_tape(f"{vol}/", write=True) as tape:
        for _ in range(3):
            tape.write_record(b"r" * 1024)
            tape.write_filemarks(1)
    mt(capsys, vol, "fsf", "2")
    out = mt(capsys, vol, "status")[1]
    assert out.startswith("directory volume:\nFile number=2, block number=0, partition=0.\n")
    assert mt(capsys, vol, "tell")[1] == "At block 4.\n"


@pytest.mark.parametrize("args", [("seek",), ("rewind", "3"), ("fsf", "-1")])
def test_bad_arguments_are_usage_errors(tmp_path, capsys, args):
    code, _, err = mt(capsys, tmp_path / "u.tap", *args)
    assert code == 2 and err.startswith("rescue: mt")


def test_fsfm_and_bsfm_stop_at_the_filemark(tmp_path, capsys):
    tap = tmp_path / "m.tap"
    with open_tape(str(tap), write=True) as tape:
        for _ in range(3):
            tape.write_record(b"r" * 10)
            tape.write_filemarks(1)
    mt(capsys, tap, "fsfm", "2")  # on the BOT side of the second filemark: block 3
    assert mt(capsys, tap, "tell")[1] == "At block 3.\n"
    mt(capsys, tap, "bsfm", "1")  # back over it, then to its EOT side: block 2, the start of file 1
    assert mt(capsys, tap, "tell")[1] == "At block 2.\n"


def test_mt_uses_the_device_named_in_rescue_conf(tmp_path, monkeypatch):
    monkeypatch.delenv("TAPE", raising=False)
    tap = tmp_path / "conf.tap"
    conf = tmp_path / "rescue.conf"
    conf.write_text(f"[rescue]\ndevice = {tap}\n")
    assert rescue("mt", "--config", str(conf), "weof", "2").returncode == 0
    status = rescue("--config", str(conf), "mt", "status")
    assert status.returncode == 0, status.stderr
    assert "File number=2, block number=0, partition=0." in status.stdout


def test_device_and_config_are_accepted_after_the_command(tmp_path):
    tap = tmp_path / "after.tap"
    assert rescue("mt", "-f", str(tap), "weof", "1").returncode == 0
    assert rescue("mt", "-f", str(tap), "rewind").returncode == 0
    result = rescue("mt", "status", "-f", str(tap))
    assert result.returncode == 0 and " BOT ONLINE" in result.stdout
    # The one after the command wins, as the later of two -f does in tar.
    other = tmp_path / "other.tap"
    result = rescue("-f", str(other), "mt", "-f", str(tap), "tell")
    assert (result.returncode, result.stdout) == (0, "At block 0.\n")
    assert not other.exists()


def test_json_error_is_one_object_on_stdout_and_one_line_on_stderr(tmp_path):
    result = rescue("mt", "-f", str(tmp_path / "gone.tap"), "status", "--json")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "gone.tap" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 2 and "gone.tap" in doc["errors"][0]
