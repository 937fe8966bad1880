"""Building the rescue media. `medium/` holds what ships on them (the image's /init, the classic mt/tar scripts
and the README of /rescue/); the modules here are the build tools, run from the source tree's root:

    python3 -m iso.mkinitramfs   vmlinuz + initrd.img of the small rescue system (contents.py says what is in it)
    python3 -m iso.mkimage       the small bootable ISO around them (BIOS and UEFI, CD or USB stick)
    python3 -m iso.remaster      rescue added to an existing ISO under /rescue/

They need the build machine's Debian tools (apt-get, dpkg-deb, readelf, zstd, xorriso, grub), not the `rescue`
package, and write only below build/out/ and the output paths they are given.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MEDIUM = HERE / "medium"
OUT = ROOT / "build" / "out"
