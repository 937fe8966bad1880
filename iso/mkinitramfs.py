"""Build the small rescue system: a Debian kernel and an initramfs that holds everything (no root filesystem).

    python3 -m iso.mkinitramfs [--out DIR] [--pyz FILE] [--add SRC:DEST ...] [--module NAME ...]

writes DIR/vmlinuz and DIR/initrd.img (default DIR: build/out/image), usable as they are with
`qemu-system-x86_64 -kernel DIR/vmlinuz -initrd DIR/initrd.img -append "console=ttyS0"`, and by iso.mkimage.

Contents (iso/contents.py names them), all from Debian packages of the build machine's release fetched with
`apt-get download` (no other network place) into build/out/debs/ and unpacked with `dpkg-deb -x` into
build/out/debroot/ (both kept, so a second run downloads nothing; iso/packages.py):
- the kernel of linux-image-amd64 and the modules of MODULES (plus what they depend on), loaded by /init in
  dependency order (iso/kernel_modules.py);
- bash as /bin/sh; busybox (busybox-static) for the small tools; its applets are linked only where no real tool of
  the same name exists, so mt-st's `mt`, GNU tar, util-linux's `mount` etc. come first on PATH;
- python3 with its standard library, minus what a rescue never uses (PRUNE_STDLIB);
- mt-st, GNU tar, util-linux (sfdisk, wipefs, mkswap, lsblk, blkid ...), e2fsprogs, xfsprogs, btrfs-progs,
  dosfstools, mdadm, lvm2, cryptsetup, with the shared libraries they need (read from their ELF headers);
  no udev (see README: no /dev/disk/by-*, lsblk without FSTYPE/UUID);
- `rescue.pyz` at /rescue/rescue.pyz and a `rescue` command, the classic scripts and README of iso/medium/
  beside it; iso/medium/init as /init (its header tells the kernel command line options: `rescue.run=...` for
  unattended runs).

Every write goes through Image.place() (iso/image.py): it never leaves the build tree. The cpio archive
(iso/cpio.py) is reproducible: sorted entries, owner root, fixed mtime (SOURCE_DATE_EPOCH, default 0).
Exit 0 when both files are written, 2 with one line on stderr otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path

from iso import MEDIUM, OUT, ROOT
from iso.contents import (
    ALTERNATIVES,
    MODULES,
    OPTIONAL_MODULES,
    PACKAGES,
    PROGRAMS,
    PRUNE_DYNLOAD,
    PRUNE_STDLIB,
)
from iso.cpio import cpio_newc
from iso.external import BuildError, log, run
from iso.image import Image, add_extra
from iso.kernel_modules import add_modules
from iso.packages import MERGED, canonical, deb_files, index_trees, kernel_package, package_closure, unpack

PROG = "mkinitramfs"
DIRECTORIES = ("dev", "proc", "sys", "run", "mnt", "cdrom", "root", "etc", "var/log", "rescue")
CLASSIC = ("backup-tar.sh", "restore-tar.sh", "README.txt")
RESCUE_COMMAND = (
    "#!/bin/sh\n# rescue.pyz from the boot medium if /init found one there, else the built-in one.\n"
    'exec python3 "${RESCUE_PYZ:-/rescue/rescue.pyz}" "$@"\n'
)
ETC = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": "root:x:0:\ndisk:x:6:\ntape:x:26:\n",
    "etc/fstab": "",
    "etc/hostname": "rescue\n",
    "etc/profile": 'export PATH=/usr/sbin:/usr/bin HOME=/root DM_DISABLE_UDEV=1\nexport PS1="rescue# "\n',
}


def build(args: argparse.Namespace) -> None:
    kpkg = kernel_package()
    kver = kpkg[len("linux-image-") :]
    packages = package_closure(PACKAGES)
    debs = deb_files(packages, OUT / "debs") + deb_files([kpkg], OUT / "debs")
    log(PROG, f"{len(debs)} packages, kernel {kver}")
    index = index_trees(unpack(debs, OUT / "debroot"))

    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="initramfs-", dir=OUT))
    try:
        stage = work / "root"
        image = empty_tree(index, stage)
        add_tools(image)
        add_python(image)
        add_busybox(image)
        order = add_modules(image, kver, MODULES + args.module, OPTIONAL_MODULES)
        image.add(f"usr/lib/modules/{kver}/modules.builtin")
        image.write("etc/rescue/modules", "".join(f"/lib/modules/{kver}/{m}\n" for m in order))
        add_rescue(image, args.pyz)
        for spec in args.add:
            add_extra(image, spec)
        write_outputs(stage, work, Path(args.out), args.level, index[f"boot/vmlinuz-{kver}"], kver)
    finally:
        shutil.rmtree(work)


def empty_tree(index: dict, stage: Path) -> Image:
    """The staging root with merged /usr and the directories /init mounts on."""
    stage.mkdir()
    for top, target in MERGED.items():
        (stage / target).mkdir(parents=True, exist_ok=True)
        (stage / top).symlink_to(target)
    for d in DIRECTORIES:
        (stage / d).mkdir(parents=True, exist_ok=True)
    (stage / "tmp").mkdir(mode=0o1777)
    (stage / "tmp").chmod(0o1777)
    return Image(index, stage)


def add_tools(image: Image) -> None:
    for name in PROGRAMS:
        image.program(name)
    for rel, target in ALTERNATIVES.items():
        image.link(rel, target)
    for conf in ("etc/lvm/lvm.conf", "etc/stinit.def"):
        if image.has(conf):
            image.add(conf)


def add_python(image: Image) -> None:
    """Python's standard library, pruned; lib-dynload's extensions bring their libraries (libcrypto ...)."""
    pyver = "python3.11"
    for rel in image.index:
        m = re.fullmatch(r"usr/lib/(python3\.\d+)/os\.py", rel)
        if m:
            pyver = m.group(1)

    def prune(rel: str) -> bool:
        parts = rel.split("/")
        if "__pycache__" in parts or (len(parts) > 3 and parts[3] in PRUNE_STDLIB):
            return True
        return len(parts) == 5 and parts[3] == "lib-dynload" and bool(PRUNE_DYNLOAD.match(parts[4]))

    image.add_tree(f"usr/lib/{pyver}", skip=prune)


def add_busybox(image: Image) -> None:
    """busybox, linked as every applet no real program provides."""
    image.add("usr/bin/busybox")
    applets = run([str(image.root / "usr/bin/busybox"), "--list-full"]).split()
    for applet in applets:
        rel = canonical(applet)
        if not any((image.root / d / os.path.basename(rel)).exists() for d in ("usr/bin", "usr/sbin")):
            image.link(rel, "/usr/bin/busybox")


def add_rescue(image: Image, pyz_arg: str) -> None:
    """rescue.pyz, the classic scripts (as on the ISO, for restores with mt and GNU tar only), /init, /etc."""
    pyz = Path(pyz_arg) if pyz_arg else ROOT / "dist" / "rescue.pyz"
    if not pyz_arg and not pyz.exists():
        log(PROG, "building dist/rescue.pyz")
        run([sys.executable, str(ROOT / "build" / "pyz.py")])
    if not pyz.is_file():
        raise BuildError(f"{pyz}: no such file (make pyz builds it)")
    image.copy(pyz, "rescue/rescue.pyz", 0o755)
    for name in CLASSIC:
        image.copy(MEDIUM / name, f"rescue/{name}", 0o755 if name.endswith(".sh") else 0o644)
    image.write("usr/bin/rescue", RESCUE_COMMAND, 0o755)
    for rel, text in ETC.items():
        image.write(rel, text)
    image.link("etc/mtab", "/proc/self/mounts")
    image.copy(MEDIUM / "init", "init", 0o755)


def write_outputs(stage: Path, work: Path, out: Path, level: int, vmlinuz: Path, kver: str) -> None:
    """initrd.img (the cpio, zstd) and vmlinuz into `out`, each renamed into place when complete."""
    out.mkdir(parents=True, exist_ok=True)
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    nodes = {"dev/console": (stat.S_IFCHR, 5, 1), "dev/null": (stat.S_IFCHR, 1, 3)}
    raw = work / "initrd.cpio"
    with raw.open("wb") as f:
        cpio_newc(stage, f, mtime, nodes)
    tmp = out / f".initrd.img.{os.getpid()}"
    # zstd: the kernel unpacks it several times faster than gzip, which matters under TCG.
    run(["zstd", "-q", "-f", f"-{level}", "-T0", str(raw), "-o", str(tmp)])
    tmp.replace(out / "initrd.img")
    shutil.copyfile(vmlinuz, out / f".vmlinuz.{os.getpid()}")
    (out / f".vmlinuz.{os.getpid()}").replace(out / "vmlinuz")
    (out / "kernel-version").write_text(kver + "\n")
    for name in ("vmlinuz", "initrd.img"):
        log(PROG, f"{out / name}: {(out / name).stat().st_size} bytes")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Build vmlinuz + initrd.img of the rescue system.")
    p.add_argument("--out", default=str(OUT / "image"), help="output directory (default build/out/image)")
    p.add_argument("--pyz", help="rescue.pyz to put in (default dist/rescue.pyz, built if missing)")
    p.add_argument("--add", action="append", default=[], metavar="SRC:DEST", help="extra file or directory")
    p.add_argument("--module", action="append", default=[], metavar="NAME", help="extra kernel module")
    p.add_argument("--level", type=int, default=12, help="zstd level of the initrd (default 12)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        build(args)
    except BuildError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
