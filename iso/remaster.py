"""Add rescue to an existing bootable ISO: `rescue.pyz`, the classic scripts and a README under /rescue/.

    python3 -m iso.remaster IN.iso OUT.iso [--pyz dist/rescue.pyz] [--add FILE ...]

IN.iso is any ISO 9660 image (SystemRescue, a Debian or Ubuntu live image, our own from iso.mkimage). xorriso
loads it, adds (or replaces) /rescue/ and writes OUT.iso with `-boot_image any replay`: the boot records of IN
are written again as they were, so OUT boots the way IN did - by BIOS (El Torito), by UEFI (the El Torito EFI
image and/or the appended EFI system partition) and from a USB stick (isohybrid MBR/GPT).

Then it checks OUT and prints a report on stdout: the El Torito platforms and system area (MBR/GPT) of IN and
OUT must be the same kinds, the boot catalog must exist, every added file is read back from OUT and compared
by SHA-256 (printed), and the size of OUT is printed. Exit 0 when all holds, 2 (one line on stderr) otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from iso import MEDIUM, ROOT
from iso.external import BuildError

# What goes into /rescue/ besides rescue.pyz (from iso/medium/).
CLASSIC = ["backup-tar.sh", "restore-tar.sh", "README.txt"]


def xorriso(*args: str) -> str:
    cmd = ["xorriso", "-abort_on", "FAILURE", *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise BuildError("xorriso: not installed (apt-get install xorriso)") from e
    if p.returncode != 0:
        lines = [ln for ln in p.stderr.splitlines() if re.search(r": (FAILURE|SORRY|FATAL) :", ln)]
        lines = [ln for ln in lines if "NOTE" not in ln] or p.stderr.splitlines()
        raise BuildError(f"xorriso {' '.join(args[:2])}: {lines[0].strip() if lines else p.returncode}")
    return p.stdout + p.stderr


def boot_report(iso: Path) -> dict:
    """The kinds of boot records in an ISO: El Torito platforms, catalog, MBR, GPT, appended partitions."""
    out = xorriso("-indev", str(iso), "-report_el_torito", "plain", "-report_system_area", "plain")
    platforms = sorted(set(re.findall(r"^El Torito boot img :\s+\d+\s+(\S+)", out, re.M)))
    summary = " ".join(re.findall(r"^System area summary\s*:\s*(.*)$", out, re.M))
    return {
        "catalog": bool(re.search(r"^El Torito catalog\s*:", out, re.M)),
        "platforms": platforms,
        "mbr": "MBR" in summary,
        "gpt": "GPT" in summary,
        "appended": sorted(set(re.findall(r"^GPT partition name :\s+\d+\s+(\S*)", out, re.M)))
        if "GPT" in summary
        else [],
        "summary": summary.strip(),
    }


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stage(dest: Path, pyz: Path, extra: list[Path]) -> dict[str, Path]:
    files = {"rescue.pyz": pyz, **{name: MEDIUM / name for name in CLASSIC}}
    for path in extra:
        files[path.name] = path
    for name, src in files.items():
        if not src.is_file():
            raise BuildError(
                f"{src}: no such file" + (" (make pyz builds it)" if name == "rescue.pyz" else "")
            )
        shutil.copyfile(src, dest / name)
        (dest / name).chmod(0o755 if name.endswith((".sh", ".pyz")) else 0o644)
    return files


def write(src: Path, out: Path, tree: Path, extra: list[str]) -> None:
    if out.exists():
        out.unlink()
    xorriso(
        "-indev", str(src),
        "-outdev", str(out),
        "-boot_image", "any", "replay",
        *extra,
        # Make /rescue exactly the staged tree (replacing an older /rescue of a remastered image).
        "-update_r", str(tree), "/rescue",
    )  # fmt: skip


def remaster(src: Path, out: Path, pyz: Path, extra: list[Path]) -> dict:
    """Write and check OUT (report on stdout); returns OUT's boot_report()."""
    if not src.is_file():
        raise BuildError(f"{src}: no such ISO")
    if src.resolve() == out.resolve():
        raise BuildError(f"{out}: the output must differ from the input")
    before = boot_report(src)
    with tempfile.TemporaryDirectory(prefix="remaster-") as tmp:
        tree = Path(tmp) / "rescue"
        tree.mkdir()
        files = stage(tree, pyz, extra)
        try:
            write(src, out, tree, [])
        except BuildError as e:
            if "APM" not in before["summary"]:
                raise
            # grub-mkrescue's images carry an HFS+ hybrid for Intel Macs (APM, HFS+ in GPT); xorriso cannot
            # lay that out again around added files ("GPT partitions overlap"). Keep BIOS, UEFI, MBR and GPT.
            print(f"note    HFS+/APM (Intel Mac boot) of {src} dropped: replaying it failed ({e})")
            write(src, out, tree, ["-hfsplus", "off"])
        after = boot_report(out)
        print(f"input   {src}: {before['summary'] or 'no boot records'}; El Torito {before['platforms']}")
        print(f"output  {out}: {after['summary'] or 'no boot records'}; El Torito {after['platforms']}")
        for key in ("catalog", "platforms", "mbr", "gpt"):
            if before[key] != after[key]:
                raise BuildError(
                    f"{out}: boot records differ from {src} ({key}: {before[key]} -> {after[key]})"
                )
        if before["platforms"] and not after["catalog"]:
            raise BuildError(f"{out}: no El Torito boot catalog")
        back = Path(tmp) / "back"
        xorriso("-osirrox", "on", "-indev", str(out), "-extract", "/rescue", str(back))
        for name in sorted(files):
            want, got = sha256(tree / name), sha256(back / name) if (back / name).exists() else "missing"
            if want != got:
                raise BuildError(f"{out}: /rescue/{name} reads back as {got}, expected {want}")
            print(f"sha256  {want}  /rescue/{name}")
    print(f"size    {out.stat().st_size} bytes ({out.stat().st_size / 2**20:.1f} MiB)")
    return after


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="remaster", description="Add rescue.pyz and the classic scripts to an ISO."
    )
    p.add_argument("input", type=Path, help="existing bootable ISO")
    p.add_argument("output", type=Path, help="ISO to write")
    p.add_argument("--pyz", type=Path, default=ROOT / "dist" / "rescue.pyz", help="default dist/rescue.pyz")
    p.add_argument("--add", type=Path, action="append", default=[], help="another file for /rescue/")
    args = p.parse_args(argv)
    try:
        remaster(args.input, args.output, args.pyz, args.add)
    except BuildError as e:
        print(f"remaster: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
