"""`rescue backup` from the command line: flags and rescue.conf reach the job, refusals are one line with exit 2,
nothing is left behind by a typo, SIGTERM ends it like SIGINT, and the summary's counts agree with the catalog."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rescue.archive.member import FILE
from rescue.cli import main
from rescue.tape.simh import SimhTape
from rescue.tapeset.catalog import open_catalog
from rescue.tapeset.label import read_label
from tests.support.backups import backup_config, make_tree


@pytest.fixture
def setup(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    make_tree(root)
    conf = backup_config(tmp_path)
    monkeypatch.delenv("TAPE", raising=False)
    return root, conf, tmp_path / "night.tap"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def rescue_process(*argv, **kw):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    env.pop("TAPE", None)
    return subprocess.run(
        [sys.executable, "-m", "rescue", *map(str, argv)], env=env, capture_output=True, **kw
    )


def test_flags_after_the_command_and_the_config_reach_the_job(setup, capsys):
    root, conf, tap = setup
    code, out, err = run(
        capsys, "backup", root, "-f", tap, "--config", conf, "--record-size", "20b", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    with SimhTape(str(tap)) as tape:
        label = read_label(tape)
    assert label.record_size == 10240 and label.backup_id == doc["backup_id"]
    assert doc["catalog_path"].startswith(str(conf.parent / "catalogs"))


def test_counts_agree_with_the_catalog_and_say_which_is_which(setup, capsys):
    root, conf, tap = setup
    code, out, err = run(capsys, "-f", tap, "backup", root, "--config", conf, "--json")
    assert code == 0, err
    doc = json.loads(out)
    members = list(open_catalog(doc["catalog_path"])[1])
    regular = [m for m in members if m.type == FILE]
    assert doc["members"] == len(members)
    assert doc["files"] == len(regular)
    assert doc["bytes"] == sum(m.size for m in regular)
    code, out, err = run(capsys, "-f", tap, "backup", root, "--config", conf, "--ignore-retention")
    first = out.splitlines()[0]
    assert (
        f"{len(members)} members ({len(regular)} regular files)" in first and "of file data stored" in first
    )


def test_backup_names_the_set_it_overwrites(setup, capsys):
    root, conf, tap = setup
    assert run(capsys, "-f", tap, "backup", root, "--config", conf)[0] == 0
    with SimhTape(str(tap)) as tape:
        old = read_label(tape)
    code, _, err = run(capsys, "-f", tap, "backup", root, "--config", conf)
    assert code == 0, err
    assert f"rescue: {tap}: overwriting backup {old.backup_id} of {old.created}, host {old.host}\n" in err


def test_missing_root_is_one_line_and_leaves_no_image(setup, capsys):
    _, conf, tap = setup
    code, out, err = run(capsys, "-f", tap, "backup", conf.parent / "no-such-root", "--config", conf)
    assert (code, out) == (2, "")
    assert (
        err
        == f"rescue: {conf.parent / 'no-such-root'}: not a directory; name the root of the tree to back up\n"
    )
    assert not tap.exists()


def test_an_image_taken_offline_is_refused(setup, capsys):
    root, conf, tap = setup
    assert run(capsys, "mt", "-f", tap, "weof", "1")[0] == 0
    assert run(capsys, "mt", "-f", tap, "offline")[0] == 0
    size = tap.stat().st_size
    code, _, err = run(capsys, "backup", root, "-f", tap, "--config", conf)
    assert code == 2 and err.startswith(f"rescue: {tap}: drive offline") and err.count("\n") == 1
    assert tap.stat().st_size == size


@pytest.mark.parametrize("flag", ["--retention", "--keep-catalogs"])
def test_negative_counts_are_refused_in_one_line(setup, flag):
    root, conf, tap = setup
    result = rescue_process("-f", tap, "backup", root, "--config", conf, flag, "-1", text=True)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"rescue: {flag}: -1 cannot be negative\n"
    assert not tap.exists()


def test_json_error_goes_to_stderr_when_the_archive_is_on_stdout(setup):
    _, conf, _ = setup
    result = rescue_process(
        "-f", "-", "backup", conf.parent / "absent", "--config", conf, "--json", text=True
    )
    assert (result.returncode, result.stdout) == (2, "")
    message, obj = result.stderr.splitlines()
    assert message.startswith("rescue: ") and json.loads(obj)["exit_code"] == 2


def test_sigterm_ends_like_sigint_and_keeps_no_half_catalog(setup, tmp_path):
    """The archive goes to a pipe nobody reads, so the backup is certainly writing when SIGTERM arrives."""
    root, conf, _ = setup
    (root / "big").write_bytes(os.urandom(1 << 20))
    catalogs = tmp_path / "catalogs"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    cmd = [sys.executable, "-m", "rescue", "-f", "-", "backup", str(root), "--config", str(conf)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(catalogs.glob(".incoming-*")):
        time.sleep(0.01)
    time.sleep(0.3)
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    lines = err.decode().splitlines()
    assert lines[-1] == "rescue: terminated (SIGTERM)" and "Traceback" not in err.decode()
    assert os.listdir(catalogs) == []
