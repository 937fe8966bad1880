"""Build `dist/rescue.pyz`: the `rescue` package as one file, made with shiv, reproducibly.

Contract:
- The archive holds the `rescue` package, a generated `rescue/_buildinfo.py` (the source commit, `+dirty` when the
  work tree differs from it), shiv's own bootstrap and our `__main__.py`; no other third-party code.
- Same sources, same bytes: SOURCE_DATE_EPOCH is the commit time (shiv then fixes every zip timestamp), files are
  added in sorted order with normalised modes (0644), and the build id is shiv's hash of the contents.
- `#!/usr/bin/env python3`, runs on Python 3.9 and newer, with `python3 -I`, from read-only media.
- shiv unpacks the package into `~/.shiv` on first start. A rescue system often has a read-only or missing home,
  so our `__main__.py` (ROOT_CHOOSER below) picks the first writable place of `~/.shiv`, `$XDG_RUNTIME_DIR/shiv`,
  `/run/shiv` and `<tempdir>/shiv-<uid>` before handing over to shiv's bootstrap; `SHIV_ROOT` set by the user wins.
  When none is usable it runs the package straight from the archive (zipimport), without unpacking.

Usage: `python build/pyz.py [--out dist/rescue.pyz]` (`make pyz`).  Prints the path, size and sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHEBANG = "/usr/bin/env python3"

# Runs before shiv's bootstrap on every start of the pyz; standard library only, Python 3.9+.
ROOT_CHOOSER = '''\
# -*- coding: utf-8 -*-
"""Entry of rescue.pyz: choose where shiv unpacks the package, then start shiv's bootstrap."""
import os
import stat
import tempfile


def _usable(path):
    """True when `path` is (or can be made) a directory of ours that we can write to."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or not os.access(path, os.W_OK | os.X_OK):
        return False
    # A shared place such as /tmp: refuse a directory someone else made (they could plant code in it).
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        return False
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".probe")
    except OSError:  # read-only filesystem, full disk
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def _choose_root():
    candidates = [os.path.join(os.path.expanduser("~"), ".shiv")]
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], "shiv"))
    if os.geteuid() == 0:
        candidates.append("/run/shiv")  # tmpfs on every systemd or initramfs system
    candidates.append(os.path.join(tempfile.gettempdir(), "shiv-%d" % os.geteuid()))
    for path in candidates:
        if _usable(path):
            return path
    return None


if not os.environ.get("SHIV_ROOT"):
    _root = _choose_root()
    if _root is None:
        # Nowhere to unpack: run the package straight from the archive (zipimport; rescue is pure Python).
        import sys

        sys.path.insert(0, os.path.join(sys.argv[0], "site-packages"))
        from rescue.cli import main

        sys.exit(main())
    os.environ["SHIV_ROOT"] = _root

import _bootstrap  # noqa: E402  (shiv's runtime, inside this archive)

_bootstrap.bootstrap()
'''


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout


def source_commit() -> tuple[str, int]:
    """(short commit id, "+dirty" when the tracked tree differs; commit time as SOURCE_DATE_EPOCH)."""
    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        epoch = int(git("log", "-1", "--format=%ct").strip())
        # Dirty: a tracked file changed, or an untracked one sits in the package (it would be in the pyz).
        dirty = (
            git("status", "--porcelain", "--untracked-files=no").strip() != ""
            or git("status", "--porcelain", "--untracked-files=all", "--", "rescue").strip() != ""
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown", 315532800  # not a git checkout: 1980-01-01, the earliest zip time
    return commit + ("+dirty" if dirty else ""), epoch


def stage_package(dest: Path, commit: str) -> None:
    """Copy rescue/ (sources only) into dest with fixed modes, and write the build info module."""
    src = ROOT / "rescue"
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if "__pycache__" in rel.parts or path.suffix == ".pyc" or rel.name == "_buildinfo.py":
            continue
        target = dest / "rescue" / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        target.chmod(0o644)
    info = dest / "rescue" / "_buildinfo.py"
    info.write_text(f'"""Written by build/pyz.py."""\n\nCOMMIT = "{commit}"\n', encoding="utf-8")
    info.chmod(0o644)


def replace_main(pyz: Path) -> None:
    """Rewrite the archive with ROOT_CHOOSER as __main__.py, keeping every entry's metadata and order.

    Directory entries are added for the package's directories: zipimport finds a namespace package (a directory
    without __init__.py) only through its entry, and shiv writes none.
    """
    tmp = pyz.with_suffix(".tmp")
    with zipfile.ZipFile(pyz) as old, tmp.open("wb") as fd:
        fd.write(b"#!" + SHEBANG.encode() + b"\n")
        infos = old.infolist()
        dirs = sorted({n.rsplit("/", 1)[0] + "/" for n in (i.filename for i in infos) if "/" in n})
        dirs = sorted({"/".join(d.split("/")[:k]) + "/" for d in dirs for k in range(1, d.count("/") + 1)})
        with zipfile.ZipFile(fd, "w") as new:
            for name in dirs:
                entry = zipfile.ZipInfo(name, date_time=infos[0].date_time)
                entry.external_attr = (0o40755 << 16) | 0x10  # drwxr-xr-x, MS-DOS directory bit
                new.writestr(entry, b"")
            for info in infos:
                data = old.read(info)
                if info.filename == "__main__.py":
                    data = ROOT_CHOOSER.encode("utf-8")
                new.writestr(info, data, compress_type=info.compress_type)
    tmp.chmod(0o755)
    tmp.replace(pyz)


def build(out: Path, commit_override: str | None = None) -> Path:
    commit, epoch = source_commit()
    commit = commit_override or commit
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    with tempfile.TemporaryDirectory(prefix="rescue-pyz-") as tmp:
        site = Path(tmp) / "site-packages"
        stage_package(site, commit)
        cmd = [
            sys.executable,
            "-m",
            "shiv",
            "--site-packages",
            str(site),
            "--entry-point",
            "rescue.cli:main",
            "--python",
            SHEBANG,
            "--reproducible",
            "--compressed",
            "--output-file",
            str(out),
        ]
        subprocess.run(cmd, check=True, env=env, cwd=tmp)
    replace_main(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "rescue.pyz", help="output file")
    parser.add_argument(
        "--commit", help="record this instead of the git commit (a build from a source tarball)"
    )
    args = parser.parse_args(argv)
    if args.commit and not re.fullmatch(r"[\w.+-]+", args.commit):
        parser.error("--commit: letters, digits, . _ + - only")
    out = build(args.out.resolve(), args.commit)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out} {out.stat().st_size} bytes sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
