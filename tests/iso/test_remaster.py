"""iso.remaster without booting: it keeps the boot records, adds /rescue/ with the files' checksums in its
report, replaces an older /rescue/, and refuses bad arguments with one line."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

from tests.support import need_tool
from tests.support.images import MEDIUM, ROOT


def remaster(*args: str) -> subprocess.CompletedProcess:
    need_tool("xorriso")
    return subprocess.run(
        [sys.executable, "-m", "iso.remaster", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def read_from_iso(iso: Path, path: str, dest: Path) -> bytes:
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", path, str(dest)],
        check=True,
        capture_output=True,
    )
    return dest.read_bytes()


def test_report_lists_boot_records_checksums_and_size(iso_xorriso, changed_pyz, tmp_path):
    out = tmp_path / "out.iso"
    p = remaster(str(iso_xorriso), str(out), "--pyz", str(changed_pyz))
    assert p.returncode == 0, p.stderr
    assert re.search(r"^output .*GPT.*El Torito \['BIOS', 'UEFI'\]$", p.stdout, re.M)
    sums = dict(
        (name, digest) for digest, name in re.findall(r"^sha256  (\w+)  /rescue/(\S+)$", p.stdout, re.M)
    )
    assert sums["rescue.pyz"] == hashlib.sha256(changed_pyz.read_bytes()).hexdigest()
    for name in ("backup-tar.sh", "restore-tar.sh", "README.txt"):
        assert sums[name] == hashlib.sha256((MEDIUM / name).read_bytes()).hexdigest()
    assert f"size    {out.stat().st_size} bytes" in p.stdout
    assert read_from_iso(out, "/rescue/rescue.pyz", tmp_path / "back.pyz") == changed_pyz.read_bytes()


def test_remastering_again_replaces_the_rescue_directory(iso_grub_mkrescue, pyz, changed_pyz, tmp_path):
    first, second = tmp_path / "first.iso", tmp_path / "second.iso"
    assert remaster(str(iso_grub_mkrescue), str(first), "--pyz", str(changed_pyz)).returncode == 0
    p = remaster(str(first), str(second), "--pyz", str(pyz))
    assert p.returncode == 0, p.stderr
    assert read_from_iso(second, "/rescue/rescue.pyz", tmp_path / "back.pyz") == pyz.read_bytes()
    assert "El Torito ['BIOS', 'UEFI']" in p.stdout.splitlines()[1]


def test_an_iso_without_boot_records_stays_without(pyz, tmp_path):
    need_tool("xorriso")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "hello.txt").write_text("data disc\n")
    plain = tmp_path / "plain.iso"
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-o", str(plain), str(tree)], check=True, capture_output=True
    )
    out = tmp_path / "out.iso"
    p = remaster(str(plain), str(out), "--pyz", str(pyz))
    assert p.returncode == 0, p.stderr
    assert "El Torito []" in p.stdout
    assert read_from_iso(out, "/hello.txt", tmp_path / "hello.txt") == b"data disc\n"


def test_bad_arguments_are_one_line_errors(pyz, tmp_path):
    p = remaster(str(tmp_path / "missing.iso"), str(tmp_path / "out.iso"), "--pyz", str(pyz))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "missing.iso: no such ISO" in p.stderr
    some = tmp_path / "some.iso"
    some.write_bytes(b"")
    p = remaster(str(some), str(some), "--pyz", str(pyz))
    assert p.returncode == 2 and "must differ" in p.stderr
    p = remaster(str(some), str(tmp_path / "o.iso"), "--pyz", str(tmp_path / "none.pyz"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1
