"""What the rescue image holds, by name: the Debian packages its files come from, the programs copied (with their
libraries and the links to them), the kernel modules loaded at boot, and what is left out of Python's standard
library. Adding a tool to the image is an entry here; iso/mkinitramfs.py does the rest.
"""

from __future__ import annotations

import re

# Packages whose files we pick from; their dependencies are added by apt-cache, minus SKIP_PACKAGES.
PACKAGES = [
    "bash",
    "busybox-static",
    "python3-minimal",
    "libpython3-stdlib",
    "mt-st",
    "tar",
    "util-linux",
    "fdisk",
    "mount",
    "e2fsprogs",
    "xfsprogs",
    "lvm2",
    "mdadm",
    "dosfstools",
    "btrfs-progs",
    "cryptsetup-bin",
]
# Maintainer-script machinery and big things nothing we copy links against (download time only).
SKIP_PACKAGES = {
    "adduser",
    "cdebconf",
    "debconf",
    "dpkg",
    "init-system-helpers",
    "install-info",
    "libdebian-installer4",
    "libfile-find-rule-perl",
    "libicu72",
    "libnumber-compare-perl",
    "libperl5.36",
    "libtext-glob-perl",
    "lsb-base",
    "mailcap",
    "mime-support",
    "passwd",
    "perl",
    "perl-base",
    "perl-modules-5.36",
    "readline-common",
    "sysvinit-utils",
    "udev",
    "usr-is-merged",
    "usrmerge",
}
# Programs copied with their libraries (and every symlink to them, e.g. mkfs.ext4 -> mke2fs, pvcreate -> lvm).
PROGRAMS = [
    "bash",
    "setsid",
    "mt-st",
    "stinit",
    "tar",
    "sfdisk",
    "fdisk",
    "lsblk",
    "blkid",
    "wipefs",
    "mkswap",
    "swaplabel",
    "swapon",
    "swapoff",
    "blockdev",
    "findmnt",
    "mount",
    "umount",
    "losetup",
    "partx",
    "mke2fs",
    "e2fsck",
    "tune2fs",
    "resize2fs",
    "dumpe2fs",
    "e2label",
    "mkfs.xfs",
    "xfs_repair",
    "xfs_db",
    "xfs_admin",
    "xfs_growfs",
    "lvm",
    "dmsetup",
    "mdadm",
    "mkfs.fat",
    "fsck.fat",
    "fatlabel",
    "mkfs.btrfs",
    "btrfs",
    "btrfstune",
    "cryptsetup",
    "python3.11",
    "python3",
]
# Debian sets these up with update-alternatives in maintainer scripts, which dpkg-deb -x does not run.
# /bin/sh is bash, not busybox: Debian's busybox-static runs its own applets before PATH ("prefer applets"), so
# under busybox sh `tar` and `mt` would be busybox's, not GNU tar and mt-st. For the same reason util-linux's
# setsid (PROGRAMS): busybox's would start its own sh.
ALTERNATIVES = {"usr/bin/mt": "/usr/bin/mt-st", "usr/bin/sh": "/usr/bin/bash"}
# Kernel modules (by name; dependencies follow). Built-in ones are skipped.
MODULES = [
    # tape and SCSI: st(4), sg(4), and the buses QEMU and real machines attach them to
    "scsi_mod",
    "sd_mod",
    "sr_mod",
    "st",
    "sg",
    "virtio_pci",
    "virtio_scsi",
    "virtio_blk",
    "ata_piix",
    "ahci",
    "usb_storage",
    "uas",
    "xhci_pci",
    "ehci_pci",
    # filesystems and the layers under them; crc32c first: ext4, xfs and btrfs ask the crypto API for it when
    # they load or mount, and without modprobe nothing loads it on demand
    "crc32c_generic",
    "ext4",
    "xfs",
    "isofs",
    "vfat",
    "nls_cp437",
    "nls_utf8",
    "nls_ascii",
    "btrfs",
    "efivarfs",
    "loop",
    # NVMe disks
    "nvme",
    # the layers recover recreates: md RAID, LVM (device-mapper), LUKS2 (dm-crypt with aes-xts-plain64;
    # cryptsetup also encrypts its keyslots through the kernel's AF_ALG sockets)
    "md_mod",
    "raid1",
    "raid0",
    "dm_mod",
    "dm_crypt",
    "xts",
    "ecb",
    "af_alg",
    "algif_skcipher",
    "algif_hash",
    # a host directory shared with QEMU's -virtfs (rescue.run=9p:TAG:FILE)
    "9p",
    "9pnet_virtio",
]
# Faster variants for CPUs that have the instructions (insmod fails harmlessly on others, e.g. under TCG).
OPTIONAL_MODULES = [
    "crc32c_intel",
    "raid10",
    "essiv",
    "aesni_intel",
    "sha256_ssse3",
    "dm_mirror",
    "dm_snapshot",
]
# Standard library parts a rescue system never uses (tests, GUIs, packaging, databases).
PRUNE_STDLIB = {
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "turtle.py",
    "ensurepip",
    "pydoc_data",
    "lib2to3",
    "distutils",
    "venv",
    "sqlite3",
    "dbm",
    "curses",
    "unittest",
    "xmlrpc",
    "wsgiref",
    "site-packages",
    "dist-packages",
}
PRUNE_DYNLOAD = re.compile(
    r"^_(sqlite3|dbm|gdbm|curses|curses_panel|tkinter|test\w*|xxtestfuzz|ctypes_test)\."
)
