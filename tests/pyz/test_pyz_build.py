"""build/pyz.py: what is in rescue.pyz, that it is reproducible, and where it runs (read-only media and homes,
`python3 -I`, every Python found)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from rescue import __version__
from tests.support import need, need_tool
from tests.support.pyz import ROOT, build_pyz, pythons

pytestmark = pytest.mark.pyz

VERSION_RE = rf"^rescue {re.escape(__version__)} \(commit ([0-9a-f]{{7,}})(\+dirty)?\)$"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def head_commit() -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def version_of(python: str, pyz: Path, *opts: str, env=None, cwd=None) -> str:
    p = subprocess.run(
        [python, *opts, str(pyz), "--version"], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return p.stdout.strip()


def test_version_names_the_source_commit(pyz):
    m = re.match(VERSION_RE, version_of("python3", pyz))
    assert m, "unexpected --version output"
    assert m.group(1) == head_commit()


def test_pyz_starts_with_env_python3_shebang(pyz):
    assert pyz.read_bytes().split(b"\n", 1)[0] == b"#!/usr/bin/env python3"
    assert os.access(pyz, os.X_OK)


def test_pyz_holds_only_rescue_and_shivs_bootstrap(pyz):
    with zipfile.ZipFile(pyz) as z:
        names = z.namelist()
    others = [
        n
        for n in names
        if not n.startswith(("site-packages/rescue/", "_bootstrap/"))
        and n not in ("environment.json", "__main__.py", "site-packages/")
    ]
    assert others == []
    assert "site-packages/rescue/cli/__init__.py" in names
    assert "site-packages/rescue/_buildinfo.py" in names
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]


def test_zip_timestamps_are_the_commit_time(pyz):
    epoch = int(
        subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True, check=True
        ).stdout
    )
    want = time.gmtime(epoch)[:6]
    with zipfile.ZipFile(pyz) as z:
        stamps = {info.date_time for info in z.infolist()}
    # zip stores even seconds
    assert stamps == {want[:5] + (want[5] // 2 * 2,)}


def test_two_builds_are_byte_identical(pyz, tmp_path):
    first = build_pyz(tmp_path / "a.pyz")
    second = build_pyz(tmp_path / "b.pyz")
    if sha256(first) != sha256(second):
        # The tree is shared with concurrent edits: a source file may have changed between two builds. A third
        # build from the same (now settled) sources must then equal the second; real nondeterminism would not.
        third = build_pyz(tmp_path / "c.pyz")
        assert sha256(second) == sha256(third)


def test_shiv_root_from_the_environment_wins(pyz, tmp_path):
    root = tmp_path / "shiv-root"
    env = dict(os.environ, SHIV_ROOT=str(root))
    assert re.match(VERSION_RE, version_of("python3", pyz, env=env))
    assert [p.name for p in root.iterdir() if p.name.startswith("rescue.pyz_")]


def test_isolated_mode_runs_the_archived_package_not_pythonpath(pyz, tmp_path):
    fake = tmp_path / "fake" / "rescue"
    (fake / "cli").mkdir(parents=True)
    (fake / "__init__.py").write_text("__version__ = 'fake'\n")
    (fake / "cli" / "__init__.py").write_text("def main():\n    print('FAKE')\n")
    env = dict(os.environ, PYTHONPATH=str(fake.parent), SHIV_ROOT=str(tmp_path / "root"))
    out = version_of("python3", pyz, "-I", env=env, cwd=str(fake.parent))
    assert re.match(VERSION_RE, out)


@pytest.mark.parametrize("label,python", pythons(), ids=[label for label, _ in pythons()])
def test_runs_isolated_on_every_python_found(pyz, tmp_path, label, python):
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "root"))
    assert re.match(VERSION_RE, version_of(python, pyz, "-I", env=env))


def test_runs_from_read_only_media_with_read_only_home_as_root(pyz, tmp_path):
    """A rescue CD as root: the pyz on a read-only mount, $HOME read-only; shiv must unpack into /run (tmpfs)."""
    need(os.geteuid() == 0, "needs root (mount namespaces)")
    need_tool("unshare", "mount")
    media, home = tmp_path / "media", tmp_path / "home"
    media.mkdir()
    home.mkdir()
    shutil.copy2(pyz, media / "rescue.pyz")
    script = f"""
        set -e
        mount --bind -o ro {media} {media}
        mount --bind -o ro {home} {home}
        mount -t tmpfs tmpfs /run
        ! touch {home}/probe 2>/dev/null
        HOME={home} python3 -I {media}/rescue.pyz --version
        ls /run/shiv
    """
    env = {k: v for k, v in os.environ.items() if k != "SHIV_ROOT"}
    p = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert re.match(VERSION_RE, lines[0])
    assert any(line.startswith("rescue.pyz_") for line in lines[1:])


def version_as_nobody(pyz_path, home, tmp):
    """Run `python3 -I PYZ --version` as the user nobody with the given HOME and TMPDIR; check what it prints."""
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
    env = {k: v for k, v in os.environ.items() if k not in ("SHIV_ROOT", "XDG_RUNTIME_DIR")}
    env.update(HOME=str(home), TMPDIR=str(tmp))
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-I", str(pyz_path)]
    p = subprocess.run([*cmd, "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert re.match(VERSION_RE, p.stdout.strip())


def test_runs_as_user_whose_home_is_not_writable_unpacking_into_tmp(pyz):
    """Not root, home not writable: shiv unpacks into <tempdir>/shiv-<uid> (a directory only that user owns)."""
    need(os.geteuid() == 0, "needs root to switch to the user nobody")
    need_tool("setpriv")
    base = Path(tempfile.mkdtemp(prefix="rescue-pyz-user-", dir="/tmp"))
    try:
        base.chmod(0o755)
        media, home, tmp = base / "media", base / "home", base / "tmp"
        for d in (media, home):
            d.mkdir(mode=0o555)
        tmp.mkdir()
        tmp.chmod(0o1777)
        shutil.copy2(pyz, media / "rescue.pyz")
        (media / "rescue.pyz").chmod(0o444)
        media.chmod(0o555)
        version_as_nobody(media / "rescue.pyz", home, tmp)
        unpacked = tmp / "shiv-65534"
        assert unpacked.is_dir() and unpacked.stat().st_uid == 65534
        assert [q.name for q in unpacked.iterdir() if q.name.startswith("rescue.pyz_")]
    finally:
        shutil.rmtree(base)


def test_a_tmp_directory_planted_by_another_user_is_not_used(pyz):
    """<tempdir>/shiv-<uid> made by someone else could hold their code: the pyz must not unpack into it (and,
    with nowhere else to unpack, runs straight from the archive)."""
    need(os.geteuid() == 0, "needs root to switch to the user nobody")
    need_tool("setpriv")
    base = Path(tempfile.mkdtemp(prefix="rescue-pyz-plant-", dir="/tmp"))
    try:
        base.chmod(0o755)
        home, tmp = base / "home", base / "tmp"
        home.mkdir(mode=0o555)
        tmp.mkdir()
        tmp.chmod(0o1777)
        planted = tmp / "shiv-65534"
        planted.mkdir(mode=0o777)
        planted.chmod(0o777)  # root-owned and world-writable
        shutil.copy2(pyz, base / "rescue.pyz")
        (base / "rescue.pyz").chmod(0o444)
        version_as_nobody(base / "rescue.pyz", home, tmp)
        assert list(planted.iterdir()) == []
    finally:
        shutil.rmtree(base)


def test_runs_as_an_executable_through_its_shebang(pyz, tmp_path):
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "root"))
    p = subprocess.run([str(pyz), "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert re.match(VERSION_RE, p.stdout.strip())


def test_a_recorded_commit_can_be_given_for_builds_outside_git(tmp_path):
    out = build_pyz(tmp_path / "r.pyz", "--commit", "v0.1.0-tarball")
    assert version_of("python3", out, env=dict(os.environ, SHIV_ROOT=str(tmp_path / "root"))).endswith(
        "(commit v0.1.0-tarball)"
    )
