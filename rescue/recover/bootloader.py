"""The bootloader stage: grub installed on the new disks, grub.cfg and (only when needed) the initramfs rebuilt.

Contract: `plan_bootloader(layout, device_map, changed, uuids, uefi_here, efivars_writable, stable_names)` is
pure and returns a BootPlan: the commands in order, the files to copy, the tools the target must have (each with
its Debian package), and why the initramfs is rebuilt (empty: it is not).  `install(target, layout, ...)` checks
the tools in the target, then runs the plan in a `chroot.Chroot` with the target's own tools.
- BIOS: `grub-install --target=i386-pc DISK` on every disk whose MBR held GRUB or that debconf's
  `grub-pc/install_devices` named, with all the disks of a RAID1 holding one of them, each through the device
  map to the disk here; then `debconf-set-selections` names the new disks (else the next grub-pc upgrade fails).
- UEFI: `grub-install --target=x86_64-efi --efi-directory=ESP --bootloader-id=ID` (the id of the original
  boot entry or EFI directory; `--uefi-secure-boot` when the system had shim; `--no-nvram` when efivars are not
  writable, else grub-install makes the efibootmgr entry), and the removable fallback EFI/BOOT/BOOTX64.EFI.
- Both: /dev/disk/by-uuid links made where missing, `update-grub`; `update-initramfs -u -k all` (or dracut)
  only when disk names or md/LVM/LUKS identities changed: it takes ~600 s under emulation, and with the same
  UUIDs the old initramfs boots.
A layout that records no bootloader at all (no GRUB in an MBR, no grub-pc/install_devices, no boot package, no
ESP, BIOS boot partition, EFI file or boot entry: a data disk, or a tree that never booted) gets an empty plan
that says so; anything recorded goes the ways above, or stops when it cannot.
A BIOS system recovered on a machine booted by UEFI is refused (out of scope), as is a missing tool, naming the
package to install in the target; a failing command stops the stage naming it and the log.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from typing import Callable, Dict, List, Optional, Tuple

from rescue.errors import RefusedError, RescueError
from rescue.recover.chroot import Chroot, ChrootError, Runner

TOOL_DIRS = ("usr/sbin", "usr/bin", "sbin", "bin")
PACKAGES = {
    "grub-install:bios": "grub-pc",
    "grub-install:uefi": "grub-efi-amd64",
    "update-grub": "grub2-common (with grub-pc or grub-efi-amd64)",
    "efibootmgr": "efibootmgr",
    "update-initramfs": "initramfs-tools",
    "shim": "shim-signed",
}
SHIM_FILES = ("usr/lib/shim/shimx64.efi.signed", "usr/lib/shim/shimx64.efi")


class BootloaderError(RescueError):
    """A bootloader step failed or the target lacks a tool; the message says what to do."""


@dataclasses.dataclass
class BootPlan:
    firmware: str
    commands: List[Tuple[List[str], Optional[str]]]  # (argv in the chroot, stdin)
    copies: List[Tuple[str, str]]  # (source, destination) relative to the target, after grub-install
    tools: List[Tuple[str, str]]  # (program or file in the target, package that brings it)
    initramfs: List[str]  # why it is rebuilt; empty: it is not
    nothing: str = ""  # set: there is no bootloader to install, and why

    def lines(self) -> List[str]:
        if self.nothing:
            return [self.nothing]
        out = [" ".join(argv) + (f" <<< {stdin.strip()!r}" if stdin else "") for argv, stdin in self.commands]
        out += [f"copy {src} -> {dst}" for src, dst in self.copies]
        if not self.initramfs:
            out.append("initramfs kept (same disk names and md/LVM/LUKS identities)")
        return out


def bios_disks(layout: dict) -> List[str]:
    """The layout's disks that boot grub-pc: its MBR held GRUB or debconf named it, with their RAID1 partners."""
    boot = layout.get("boot") or {}
    disks = {d["path"]: d for d in layout.get("disks", [])}
    found = [d for d in boot.get("grub_in_mbr") or [] if d in disks]
    for name in boot.get("grub_pc_install_devices") or []:
        for path, disk in disks.items():
            ids = {path} | {f"/dev/disk/by-id/{b}" for b in disk.get("by_id") or []}
            if name in ids and path not in found:
                found.append(path)
    owner = {p["node"]: d for d in disks for p in (disks[d].get("table") or {}).get("partitions", [])}
    for md in layout.get("md", []):
        if md.get("level") != "raid1":
            continue
        member_disks = [owner.get(m["device"], m["device"]) for m in md["members"]]
        if any(d in found for d in member_disks):
            found += [d for d in member_disks if d in disks and d not in found]
    return found


def bootloader_id(boot: dict) -> str:
    """The EFI directory of the entry the system booted (else the first non-fallback one, else debian)."""
    efi = boot.get("efibootmgr") or {}
    entries = {e["num"]: e for e in efi.get("entries", [])}
    for num in [efi.get("current")] + list(efi.get("order") or []):
        m = re.search(r"\\EFI\\([^\\]+)\\", (entries.get(num) or {}).get("path") or "", re.I)
        if m and m.group(1).upper() != "BOOT":
            return m.group(1)
    for f in boot.get("efi_files") or []:
        top = f.split("/")[0]
        if "/" in f and top.upper() != "BOOT":
            return top
    return "debian"


def initramfs_reasons(layout: dict, device_map: Dict[str, str], changed: List[str], uuids: Dict[str, str]):
    """Why the initramfs must be rebuilt: disk names changed, or an md/LVM/LUKS identity changed."""
    reasons = [
        f"disk {d['path']} is {device_map[d['path']]} here"
        for d in layout.get("disks", [])
        if device_map.get(d["path"], d["path"]) != d["path"]
    ]
    stack = {m["uuid"] for m in layout.get("md", [])} | {k["uuid"] for k in layout.get("luks", [])}
    reasons += [f"UUID {old} is {new} now" for old, new in uuids.items() if old in stack and old != new]
    reasons += [c for c in changed if re.search(r"\b(md|lvm|luks|volume group|array)\b", c, re.I)]
    return reasons


def stable_names(
    layout: dict,
    device_map: Dict[str, str],
    by_id_here: Dict[str, str],
    serial_here: Callable[[str], Optional[str]],
) -> Dict[str, str]:
    """Disk here -> the name debconf should hold: its /dev/disk/by-id link, else (no udev in a rescue system) the
    layout disk's by-id name when this disk has that disk's serial: udev makes the same name from it at boot."""
    names = dict(by_id_here)
    wanted = set((layout.get("boot") or {}).get("grub_pc_install_devices") or [])
    for disk in layout.get("disks", []):
        new, serial = device_map.get(disk["path"]), disk.get("serial")
        if not new or new in names or not serial or serial_here(new) != serial:
            continue
        ids = sorted(
            (f"/dev/disk/by-id/{b}" for b in disk.get("by_id") or [] if serial in b and "-part" not in b),
            key=lambda n: n not in wanted,
        )
        if ids:
            names[new] = ids[0]
    return names


def _stable(dev: str, stable_names: Dict[str, str]) -> str:
    return stable_names.get(dev, dev)


NO_BOOTLOADER = "no bootloader in the layout: nothing installed"
BOOT_KEYS = ("grub_in_mbr", "grub_pc_install_devices", "packages", "esp", "bios_boot", "efi_files")


def recorded(boot: dict) -> List[str]:
    """The boot facts of a capture that show a bootloader (empty: the layout records none)."""
    found = [k for k in BOOT_KEYS if boot.get(k)]
    return found + (["efibootmgr"] if (boot.get("efibootmgr") or {}).get("entries") else [])


def plan_bootloader(
    layout, device_map, changed, uuids, uefi_here, efivars_writable, stable_names
) -> BootPlan:
    boot = layout.get("boot") or {}
    firmware = boot.get("firmware") or "bios"
    if "boot" in layout and not recorded(boot):
        return BootPlan(firmware, [], [], [], [], nothing=NO_BOOTLOADER)
    if firmware == "bios" and uefi_here:
        raise RefusedError(
            "the backup is of a BIOS system and this machine booted the rescue system by UEFI: BIOS -> UEFI is "
            "not supported; boot the rescue system in legacy (CSM) mode, or install the bootloader by hand"
        )
    packages = set(boot.get("packages") or [])
    commands: List[Tuple[List[str], Optional[str]]] = []
    copies: List[Tuple[str, str]] = []
    if firmware == "bios":
        tools = [("grub-install", PACKAGES["grub-install:bios"])]
        disks = [device_map.get(d, d) for d in bios_disks(layout)]
        if not disks:
            raise BootloaderError(
                "the layout names no disk that booted grub-pc (no GRUB in any MBR, no "
                "grub-pc/install_devices); run grub-install on the boot disk by hand"
            )
        commands += [(["grub-install", "--target=i386-pc", d], None) for d in disks]
        if "grub-pc" in packages:
            names = ", ".join(_stable(d, stable_names) for d in disks)
            commands.append(
                (["debconf-set-selections"], f"grub-pc grub-pc/install_devices multiselect {names}\n")
            )
            tools.append(("debconf-set-selections", "debconf"))
    else:
        esp = next((e["mount_point"] for e in boot.get("esp") or [] if e.get("mount_point")), "/boot/efi")
        ident = bootloader_id(boot)
        shim = bool(boot.get("shim"))
        tools = [("grub-install", PACKAGES["grub-install:uefi"])]
        argv = ["grub-install", "--target=x86_64-efi", f"--efi-directory={esp}", f"--bootloader-id={ident}"]
        if shim:
            argv.append("--uefi-secure-boot")
            tools.append(("shim", PACKAGES["shim"]))
        if efivars_writable:
            tools.append(("efibootmgr", PACKAGES["efibootmgr"]))
        else:
            argv.append("--no-nvram")
        commands.append((argv, None))
        efi = esp.strip("/") + "/EFI"
        first = "shimx64.efi" if shim else "grubx64.efi"
        copies.append((f"{efi}/{ident}/{first}", f"{efi}/BOOT/BOOTX64.EFI"))
        if shim:
            copies += [(f"{efi}/{ident}/{n}", f"{efi}/BOOT/{n}") for n in ("grubx64.efi", "mmx64.efi")]
    tools.append(("update-grub", PACKAGES["update-grub"]))
    commands.append((["update-grub"], None))
    reasons = initramfs_reasons(layout, device_map, changed, uuids)
    if reasons:
        commands.append((["update-initramfs", "-u", "-k", "all"], None))
        tools.append(("update-initramfs", PACKAGES["update-initramfs"]))
    return BootPlan(firmware, commands, copies, tools, reasons)


def find_in_target(target: str, tool: str) -> Optional[str]:
    if tool == "shim":
        return next((f for f in SHIM_FILES if os.path.lexists(os.path.join(target, f))), None)
    for d in TOOL_DIRS:
        if os.path.lexists(os.path.join(target, d, tool)):
            return f"/{d}/{tool}"
    return None


def missing_tools(target: str, plan: BootPlan) -> List[str]:
    """One line per tool the target lacks, naming the package; dracut stands in for update-initramfs."""
    lines = []
    for tool, package in plan.tools:
        if find_in_target(target, tool):
            continue
        if tool == "update-initramfs" and find_in_target(target, "dracut"):
            _use_dracut(plan)
            continue
        lines.append(f"the target has no {tool}: install {package} in the target")
    return lines


def _use_dracut(plan: BootPlan) -> None:
    plan.commands = [
        (["dracut", "--force", "--regenerate-all"], None) if argv[0] == "update-initramfs" else (argv, stdin)
        for argv, stdin in plan.commands
    ]


def install(target: str, plan: BootPlan, runner: Runner, blkid_export: str, log_path: str, out) -> List[str]:
    """Run `plan` in a chroot of `target`; return what was done.  Raises BootloaderError naming what to do."""
    if plan.nothing:
        return [plan.nothing]
    lacking = missing_tools(target, plan)
    if lacking:
        raise BootloaderError(
            "; ".join(lacking) + f" (chroot {target} apt-get install ..., or dpkg --root={target} -i ...),"
            " then run: rescue recover --resume"
        )
    done = []
    try:
        with Chroot(target, runner, efi=plan.firmware == "uefi") as ch:
            for link in ch.ensure_by_uuid(blkid_export):
                done.append(f"made {link}")
            for i, (argv, stdin) in enumerate(plan.commands):
                if plan.copies and i == 1:
                    done += _copy(target, plan.copies)
                out.write(f"bootloader: {' '.join(argv)}\n")
                out.flush()
                code, text = ch.run(argv, stdin)
                if code != 0:
                    last = text.strip().splitlines()[-1:] or ["no message"]
                    raise BootloaderError(
                        f"bootloader: {' '.join(argv)} in the target: exit {code}: {last[0]} (log: {log_path}); "
                        "fix it, then run: rescue recover --resume"
                    )
                done.append(" ".join(argv))
    except ChrootError as e:
        raise BootloaderError(f"bootloader: could not prepare the chroot: {e}") from None
    return done


def _copy(target: str, copies: List[Tuple[str, str]]) -> List[str]:
    done = []
    for src, dst in copies:
        s, d = os.path.join(target, src), os.path.join(target, dst)
        if not os.path.isfile(s):
            continue  # mmx64.efi is optional; grub-install reports a real failure itself
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copyfile(s, d)
        done.append(f"copied /{src} -> /{dst}")
    return done
