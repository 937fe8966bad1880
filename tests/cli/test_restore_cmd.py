"""`rescue restore` from the command line: bad input gives one line and a documented exit code; --json; and a
`python -m rescue restore` killed with SIGKILL, then `--resume`d, leaves the tree a full restore gives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rescue.cli import main
from tests.support import need_tool
from tests.support.tapes import (
    catalog_members,
    gnu_tar,
    make_tree,
    tree_state,
    write_catalog_file,
    write_tap,
)

RS = 10240


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_tool("tar")
    base = tmp_path_factory.mktemp("cli")
    tree = make_tree(str(base / "tree"))
    tar = gnu_tar(tree, str(base / "a.tar"))
    return {"tar": tar, "tap": write_tap(str(base / "set.tap"), tar, RS), "base": base}


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("rescue: ") and "warning" not in ln]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_json_summary_of_a_restore(world, tmp_path, capsys):
    code, out, err = run_cli(capsys, "-f", world["tap"], "restore", "-C", str(tmp_path), "etc", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["exit_code"] == 0 and summary["files"] == 5 and summary["errors"] == []
    assert summary["records_read"] > 0 and "seeks" in summary and "warnings" in summary
    assert summary["bytes"] == sum(len(p.read_bytes()) for p in (tmp_path / "etc").rglob("*") if p.is_file())


def test_wrong_device(tmp_path, capsys):
    code, _, err = run_cli(capsys, "-f", str(tmp_path / "nothing.tap"), "restore", "-C", str(tmp_path))
    assert code == 2
    assert "nothing.tap" in one_error_line(err)


def test_blank_tape(tmp_path, capsys):
    blank = tmp_path / "blank.tap"
    blank.write_bytes(b"")
    code, _, err = run_cli(capsys, "-f", str(blank), "restore", "-C", str(tmp_path))
    assert code == 2
    assert "blank" in one_error_line(err)


def test_tape_from_another_host_warns_and_shows_it(world, tmp_path, capsys):
    tap = write_tap(str(tmp_path / "other.tap"), world["tar"], RS, host="db7.example.org")
    (tmp_path / "t").mkdir()
    code, _, err = run_cli(capsys, "-f", tap, "restore", "-C", str(tmp_path / "t"), "--dry-run")
    assert code == 0
    assert "db7.example.org" in err and "warning" in err and "not " in err


def test_catalog_of_another_backup_is_refused(world, tmp_path, capsys):
    other = write_catalog_file(
        str(tmp_path / "other.jsonl.gz"), catalog_members(world["tar"], RS), RS, backup_id="another-backup"
    )
    (tmp_path / "t").mkdir()  # an empty target: the catalog is what is refused
    code, _, err = run_cli(
        capsys, "-f", world["tap"], "restore", "-C", str(tmp_path / "t"), "--catalog", other
    )
    assert code == 2
    line = one_error_line(err)
    assert "another-backup" in line and "--no-catalog" in line


def test_catalog_that_does_not_match_the_tape_refuses_to_seek_and_offers_streaming(world, tmp_path, capsys):
    members = catalog_members(world["tar"], RS)
    for m in members:  # every position one block off: a catalog of some other archive
        m.offset += 512
        m.record, m.offset = m.record + m.offset // RS, m.offset % RS
    bad = write_catalog_file(str(tmp_path / "shifted.jsonl.gz"), members, RS)
    target = tmp_path / "t"
    target.mkdir()
    args = ["-f", world["tap"], "restore", "-C", str(target), "--seek-threshold", "0", "var/www"]
    code, _, err = run_cli(capsys, *args, "--catalog", bad)
    assert code == 2
    line = one_error_line(err)
    assert "catalog does not match" in line and "--no-catalog" in line
    assert not (target / "var/www/big.bin").exists()
    code, _, err = run_cli(capsys, *args, "--no-catalog", "--yes")
    assert code == 0, err
    assert (target / "var/www/big.bin").stat().st_size == 300_000


def test_non_empty_target_needs_yes(world, tmp_path, capsys):
    (tmp_path / "something").write_text("x")
    (tmp_path / "lost+found").mkdir()
    code, _, err = run_cli(capsys, "-f", world["tap"], "restore", "-C", str(tmp_path), "etc")
    assert code == 2
    assert "--yes" in one_error_line(err)
    assert not (tmp_path / "etc").exists()
    code, _, err = run_cli(capsys, "-f", world["tap"], "restore", "-C", str(tmp_path), "etc", "--yes")
    assert code == 0, err
    assert (tmp_path / "etc/passwd").exists()


def test_empty_target_with_lost_found_needs_no_yes(world, tmp_path, capsys):
    (tmp_path / "lost+found").mkdir()
    code, _, err = run_cli(capsys, "-f", world["tap"], "restore", "-C", str(tmp_path), "etc/hostname")
    assert code == 0, err


def test_restore_over_root_needs_yes(world, capsys):
    code, _, err = run_cli(capsys, "-f", world["tap"], "restore", "-C", "/", "etc/hostname")
    assert code == 2
    assert "--yes" in one_error_line(err)


def test_missing_target_and_resume_without_journal(world, tmp_path, capsys):
    code, _, err = run_cli(capsys, "-f", world["tap"], "restore", "-C", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in one_error_line(err)
    code, _, err = run_cli(capsys, "-f", world["tap"], "restore", "-C", str(tmp_path), "--resume")
    assert code == 2 and "no restore journal" in one_error_line(err)


def test_reload_db_installs_a_one_shot_unit(world, tmp_path, capsys):
    code, _, err = run_cli(capsys, "-f", world["tap"], "restore", "-C", str(tmp_path), "etc", "--reload-db")
    assert code == 0, err
    unit = (tmp_path / "etc/systemd/system/rescue-db-reload.service").read_text()
    assert "Type=oneshot" in unit and "db reload" in unit and "ConditionPathExists=" in unit
    assert os.readlink(tmp_path / "etc/systemd/system/multi-user.target.wants/rescue-db-reload.service")
    assert (tmp_path / "var/lib/rescue/reload-db-pending").exists()


# -- kill -9 and --resume ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """A few thousand small files, so a restore takes long enough to be killed in the middle."""
    need_tool("tar")
    base = tmp_path_factory.mktemp("many")
    root = base / "tree"
    for d in range(40):
        sub = root / f"d{d:02d}"
        sub.mkdir(parents=True)
        for f in range(80):
            (sub / f"f{f:03d}").write_bytes(os.urandom(64 + (d * 80 + f) % 4000))
        os.utime(sub, (1_500_000_000, 1_500_000_000))
    tar = gnu_tar(str(root), str(base / "m.tar"))
    tap = write_tap(str(base / "m.tap"), tar, RS)
    bare = write_tap(str(base / "bare.tap"), tar, RS, rescue_set=False)
    full = base / "full"
    full.mkdir()
    assert main(["-f", tap, "restore", "-C", str(full)]) == 0
    return {"tap": tap, "bare": bare, "tar": tar, "full": tree_state(str(full))}


@pytest.mark.parametrize(
    "kind", ["tap", "bare"]
)  # with a catalog (seeking), and a plain tar tape (streaming)
def test_kill_9_in_the_middle_then_resume_gives_the_same_tree(many, tmp_path, kind):
    target = tmp_path / "t"
    target.mkdir()
    journal = target / ".rescue-restore.journal"
    cmd = [sys.executable, "-m", "rescue", "-f", many[kind], "restore", "-C", str(target)]
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    lines = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists():
            lines = journal.read_bytes().count(b"\n")
            if lines > 300:
                break
        time.sleep(0.002)
    assert proc.poll() is None, "the restore finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = journal.read_bytes().count(b"\n") - 1
    assert 300 <= done < 3240
    result = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "resuming after" in result.stderr
    assert tree_state(str(target)) == many["full"]
    assert not journal.exists()
    assert not [p for p in target.rglob(".rescue-tmp.*")]


def test_paths_that_match_nothing(world, tmp_path, capsys):
    code, _, err = run_cli(capsys, "-f", world["tap"], "restore", "-C", str(tmp_path), "no/such/path")
    assert code == 2
    assert "no/such/path" in one_error_line(err)
    assert os.listdir(tmp_path) == []


def test_catalog_may_be_named_by_its_directory(world, tmp_path, capsys):
    spool = world["tap"] + ".spool"  # holds catalog.jsonl.gz, as a backup's catalog directory does
    code, out, err = run_cli(
        capsys, "-f", world["tap"], "restore", "-C", str(tmp_path), "--catalog", spool, "--dry-run", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["plan"]["files"] > 0


def test_a_path_not_on_tape_is_named_and_exits_2_after_restoring_the_rest(world, tmp_path, capsys):
    code, out, err = run_cli(
        capsys, "-f", world["tap"], "restore", "-C", str(tmp_path), "etc/ssh", "/etc/nonexist", "--json"
    )
    assert code == 2, err
    assert "etc/nonexist: not found on tape" in err and "Traceback" not in err
    summary = json.loads(out)
    assert summary["exit_code"] == 2 and summary["not_found"] == ["etc/nonexist"]
    assert (tmp_path / "etc/ssh/sshd_config").exists()


def test_dry_run_into_a_missing_target_is_one_error_line(world, tmp_path, capsys):
    code, _, err = run_cli(capsys, "-f", world["tap"], "restore", "-C", str(tmp_path / "nope"), "--dry-run")
    assert code == 2
    line = one_error_line(err)
    assert "does not exist" in line and "mount" in line
    assert "rescue backup of host" not in err  # said before the label was read


def test_sigterm_ends_like_sigint_keeping_the_journal_then_resume_completes(many, tmp_path):
    """`systemctl stop` sends SIGTERM: one line, exit 2, the journal kept.  The archive comes through a pipe we
    hold open, so the restore is certainly in the middle when the signal arrives."""
    target = tmp_path / "t"
    target.mkdir()
    journal = target / ".rescue-restore.journal"
    data = open(many["tar"], "rb").read()
    cmd = [sys.executable, "-m", "rescue", "-f", "-", "restore", "-C", str(target)]
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (journal.exists() and journal.read_bytes().count(b"\n") > 100):
        time.sleep(0.01)
    time.sleep(0.3)  # it has read all it was given and waits for more
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGTERM)
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    proc.stdin.close()
    assert proc.returncode == 2, err
    assert err.splitlines()[-1] == "rescue: terminated (SIGTERM)" and "Traceback" not in err
    assert journal.exists() and journal.read_bytes().count(b"\n") > 100
    result = subprocess.run(cmd + ["--resume"], env=env, input=data, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert tree_state(str(target)) == many["full"]


def test_restore_refuses_an_image_taken_offline(world, tmp_path, capsys):
    tap = tmp_path / "off.tap"
    tap.write_bytes(open(world["tap"], "rb").read())
    assert main(["mt", "-f", str(tap), "offline"]) == 0
    capsys.readouterr()
    code, out, err = run_cli(capsys, "restore", "-f", str(tap), "-C", str(tmp_path / "t"))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"rescue: {tap}: drive offline") and "rescue mt load" in err
    assert main(["mt", "-f", str(tap), "load"]) == 0
    (tmp_path / "t").mkdir()
    assert run_cli(capsys, "restore", "-f", str(tap), "-C", str(tmp_path / "t"))[0] == 0


def test_negative_seek_threshold_is_refused_before_the_tape_is_read(world, tmp_path, capsys):
    code, out, err = run_cli(
        capsys, "-f", world["tap"], "restore", "-C", str(tmp_path), "--seek-threshold", "-5"
    )
    assert (code, out) == (2, "")
    assert err == "rescue: --seek-threshold: -5 cannot be negative (0 seeks over every gap)\n"
