"""Build the small rescue ISO: the rescue system of iso.mkinitramfs, bootable by BIOS and UEFI, CD or USB stick.

    python3 -m iso.mkimage --out rescue.iso [--method grub-mkrescue|xorriso] [--image DIR] [--pyz FILE]
                           [--add SRC:DEST]

- `--image DIR` takes vmlinuz + initrd.img from DIR; without it iso.mkinitramfs builds them into
  build/out/image (passing --pyz and --add on).
- The ISO holds /boot/vmlinuz, /boot/initrd.img and GRUB's menu /boot/grub/grub.cfg (serial console ttyS0 and
  the screen; `rescue.media=wait` makes /init look for this medium so its /rescue/rescue.pyz is the one run).
- `--method grub-mkrescue` (default): GRUB's own tool (grub-pc-bin + grub-efi-amd64-bin): El Torito BIOS image,
  an EFI System Partition image as second El Torito entry, isohybrid MBR and GPT.
- `--method xorriso`: the same parts put together by hand: grub-mkstandalone images for BIOS (i386-pc-eltorito)
  and UEFI (BOOTX64.EFI in a FAT image made with mtools), and xorriso's own El Torito options - the FAT image as
  an appended GPT partition that the EFI El Torito entry points into, GRUB's hybrid MBR for BIOS USB boot.
- Finally iso.remaster adds /rescue/ (rescue.pyz, the classic scripts, README.txt) and checks the result; its
  report (boot records, checksums, size) is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from iso import OUT, ROOT, mkinitramfs
from iso.external import BuildError, log, run
from iso.remaster import remaster

VOLID = "RESCUE"
GRUB_PC = Path("/usr/lib/grub/i386-pc")

GRUB_CFG = """\
# rescue: boot menu (serial console ttyS0 at 115200 baud and the screen)
set timeout=2
set default=0
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial

menuentry "rescue (screen and serial console ttyS0)" {
    linux /boot/vmlinuz console=tty0 console=ttyS0,115200 rescue.media=wait
    initrd /boot/initrd.img
}
menuentry "rescue (screen only)" {
    linux /boot/vmlinuz rescue.media=wait
    initrd /boot/initrd.img
}
"""
# Embedded in the standalone images of --method xorriso: find this ISO, then read its menu.
EMBEDDED_CFG = """\
search --no-floppy --set=root --file /boot/rescue-image
set prefix=($root)/boot/grub
configfile /boot/grub/grub.cfg
"""
BIOS_MODULES = "biosdisk iso9660 part_msdos part_gpt normal configfile linux search search_fs_file serial terminal echo test memdisk tar"
EFI_MODULES = "iso9660 fat part_msdos part_gpt normal configfile linux search search_fs_file serial terminal echo test efi_gop efi_uga all_video memdisk tar"


PROG = "mkimage"


def grub_mkrescue(tree: Path, iso: Path) -> None:
    run(["grub-mkrescue", "--output", str(iso), str(tree), "--", "-volid", VOLID])


def xorriso_build(tree: Path, iso: Path, work: Path) -> None:
    cfg = work / "embedded.cfg"
    cfg.write_text(EMBEDDED_CFG)
    (tree / "boot" / "rescue-image").write_text("this is the rescue image\n")
    bios = tree / "boot" / "grub" / "bios.img"
    common = ["--locales=", "--fonts=", "--themes=", f"boot/grub/grub.cfg={cfg}"]
    run(["grub-mkstandalone", "-O", "i386-pc-eltorito", "-o", str(bios), f"--install-modules={BIOS_MODULES}"]
        + [f"--modules={BIOS_MODULES}", *common])  # fmt: skip
    efi = work / "BOOTX64.EFI"
    run(["grub-mkstandalone", "-O", "x86_64-efi", "-o", str(efi), f"--install-modules={EFI_MODULES}"]
        + [f"--modules={EFI_MODULES}", *common])  # fmt: skip
    esp = work / "efiboot.img"
    size_kib = max(1440, (efi.stat().st_size // 1024 + 256) // 32 * 32 + 32)
    run(["mkfs.vfat", "-C", "-n", "RESCUE_EFI", str(esp), str(size_kib)])
    run(["mmd", "-i", str(esp), "::/EFI", "::/EFI/BOOT"])
    run(["mcopy", "-i", str(esp), str(efi), "::/EFI/BOOT/BOOTX64.EFI"])
    run(
        [
            "xorriso", "-as", "mkisofs",
            "-o", str(iso),
            "-V", VOLID, "-r", "-J", "-joliet-long",
            # BIOS from a USB stick: GRUB's hybrid MBR, patched to load the El Torito BIOS image.
            "--grub2-mbr", str(GRUB_PC / "boot_hybrid.img"),
            "-partition_offset", "16",
            "--mbr-force-bootable",
            # UEFI: the FAT image as GPT partition 2; the EFI El Torito entry points into it.
            "-append_partition", "2", "0xef", str(esp),
            "-appended_part_as_gpt",
            "-c", "/boot/boot.catalog",
            "-b", "/boot/grub/bios.img", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
            "--grub2-boot-info",
            "-eltorito-alt-boot",
            "-e", "--interval:appended_partition_2:all::", "-no-emul-boot",
            str(tree),
        ]
    )  # fmt: skip


def build(args: argparse.Namespace) -> None:
    out = Path(args.out).resolve()
    if args.image:
        image = Path(args.image)
    else:
        image = OUT / "image"
        cmd = ["--out", str(image)]
        if args.pyz:
            cmd += ["--pyz", args.pyz]
        for spec in args.add:
            cmd += ["--add", spec]
        log(PROG, "iso.mkinitramfs")
        mkinitramfs.build(mkinitramfs.parser().parse_args(cmd))
    for name in ("vmlinuz", "initrd.img"):
        if not (image / name).is_file():
            raise BuildError(f"{image / name}: missing (python3 -m iso.mkinitramfs --out {image} builds it)")

    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"iso-{args.method}-", dir=OUT))
    try:
        assemble(args, image, work, out)
    finally:
        shutil.rmtree(work)


def assemble(args: argparse.Namespace, image: Path, work: Path, out: Path) -> None:
    tree = work / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    shutil.copyfile(image / "vmlinuz", tree / "boot" / "vmlinuz")
    shutil.copyfile(image / "initrd.img", tree / "boot" / "initrd.img")
    (tree / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    bare = work / "bare.iso"
    log(PROG, f"{args.method} -> {bare}")
    if args.method == "grub-mkrescue":
        grub_mkrescue(tree, bare)
    else:
        xorriso_build(tree, bare, work)
    out.parent.mkdir(parents=True, exist_ok=True)
    after = remaster(bare, out, Path(args.pyz) if args.pyz else ROOT / "dist" / "rescue.pyz", [])
    # grub-mkrescue leaves out a platform whose GRUB files are not installed; an image for BIOS only is a bug.
    if "BIOS" not in after["platforms"] or "UEFI" not in after["platforms"]:
        raise BuildError(
            f"{out}: not bootable by both BIOS and UEFI (install grub-pc-bin and grub-efi-amd64-bin)"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description="Build the small bootable rescue ISO.")
    p.add_argument("--out", required=True, help="the ISO to write")
    p.add_argument("--method", choices=["grub-mkrescue", "xorriso"], default="grub-mkrescue")
    p.add_argument("--image", help="directory with vmlinuz and initrd.img (default: run iso.mkinitramfs)")
    p.add_argument("--pyz", help="rescue.pyz (default dist/rescue.pyz)")
    p.add_argument("--add", action="append", default=[], metavar="SRC:DEST", help="extra file for the initrd")
    args = p.parse_args(argv)
    if args.pyz:
        args.pyz = os.path.abspath(args.pyz)
    try:
        build(args)
    except BuildError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
