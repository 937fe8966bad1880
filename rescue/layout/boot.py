"""Boot facts of a capture: firmware kind, EFI boot entries, the ESP, and which bootloader is installed where.

Contract: `boot_facts(cap, disks, filesystems, mounts) -> dict` (see docs/layout-format.md, "boot").  It reads
/sys/firmware/efi (present: UEFI), `efibootmgr -v` on UEFI, the first sector of each captured disk (GRUB's
boot.img carries the string "GRUB" in its 512 bytes, so a disk whose MBR holds it boots grub-pc), the Debian
package database of the root (grub-pc, grub-efi-amd64, grub-efi-amd64-signed, shim-signed) and the debconf
answer naming grub-pc's install devices.  `parse_dpkg_installed(text)` is the pure part.  Part 2 of the bare
metal work (the bootloader stage) acts on these; capture only records them.
"""

from __future__ import annotations

import os
import re
from typing import List, Optional

from rescue.layout import parse_fs
from rescue.layout.tools import read_text

BOOT_PACKAGES = ("grub-pc", "grub-efi-amd64", "grub-efi-amd64-signed", "shim-signed", "systemd-boot")


def parse_dpkg_installed(text: str, names=BOOT_PACKAGES) -> List[str]:
    """Which of `names` /var/lib/dpkg/status lists as installed."""
    found = []
    for stanza in text.split("\n\n"):
        pkg = re.search(r"^Package: (\S+)$", stanza, re.M)
        status = re.search(r"^Status: .* installed$", stanza, re.M)
        if pkg and status and pkg.group(1) in names:
            found.append(pkg.group(1))
    return sorted(found)


def parse_grub_pc_devices(config_dat: str) -> List[str]:
    """debconf's `grub-pc/install_devices` value from /var/cache/debconf/config.dat."""
    for stanza in config_dat.split("\n\n"):
        if re.search(r"^Name: grub-pc/install_devices$", stanza, re.M):
            m = re.search(r"^Value: (.*)$", stanza, re.M)
            if m:
                return [d.strip() for d in m.group(1).split(",") if d.strip()]
    return []


def _mbr_has_grub(path: str) -> Optional[bool]:
    try:
        with open(path, "rb") as f:
            return b"GRUB" in f.read(512)
    except OSError:
        return None


def boot_facts(cap, disks: List[dict], filesystems: List[dict], mounts: List[dict]) -> dict:
    uefi = os.path.isdir("/sys/firmware/efi")
    efi = None
    if uefi:
        text = cap.run(["efibootmgr", "-v"])
        efi = parse_fs.parse_efibootmgr(text) if text else None
    esp = []
    for disk in disks:
        for part in (disk.get("table") or {}).get("partitions", []):
            if part["role"] == "esp":
                point = next((m["mount_point"] for m in mounts if m["source_device"] == part["node"]), None)
                esp.append({"device": part["node"], "disk": disk["path"], "mount_point": point})
    bios_boot = [
        {"device": p["node"], "disk": d["path"]}
        for d in disks
        for p in (d.get("table") or {}).get("partitions", [])
        if p["role"] == "bios_boot"
    ]
    packages = parse_dpkg_installed(read_text(os.path.join(cap.root, "var/lib/dpkg/status")) or "")
    debconf = read_text(os.path.join(cap.root, "var/cache/debconf/config.dat")) or ""
    efi_files = []
    for e in esp:
        if e["mount_point"]:
            top = os.path.join(cap.root, e["mount_point"].lstrip("/"), "EFI")
            for dirpath, _, names in os.walk(top):
                efi_files += [
                    os.path.relpath(os.path.join(dirpath, n), top)
                    for n in names
                    if n.lower().endswith(".efi")
                ]
    return {
        "firmware": "uefi" if uefi else "bios",
        "efibootmgr": efi,
        "esp": esp,
        "bios_boot": bios_boot,
        "packages": packages,
        "grub_pc_install_devices": parse_grub_pc_devices(debconf),
        "grub_in_mbr": [d["path"] for d in disks if _mbr_has_grub(d["path"])],
        "efi_files": sorted(efi_files),
        "shim": any(f.lower().endswith("shimx64.efi") for f in efi_files) or "shim-signed" in packages,
    }
