"""What follows the files of a restore: the boot steps hook and the database reload.

Stages, in the order `rescue.restore.job` calls them after the last member is extracted:

1. `boot_steps(target, label)`: the hook point for making the restored system bootable: reinstalling the
   bootloader in a chroot and rewriting fstab when the filesystems were recreated with other UUIDs. That work
   belongs to the disk layout stage (`layout recreate`), which knows the new disks; until it is wired in here,
   this function only inspects the restored tree and returns what the administrator must check, so a restore
   never claims to have done it. Contract: it may read and write under `target` only, returns lines for a
   person, and raises RescueError for a fatal problem.
2. `reload_db_advice(label)`: how to load the database dumps the backup took (`rescue db reload`).
3. `install_reload_unit(target, label)` (`restore --reload-db`): a one-shot systemd unit in the target that
   reloads the dumps at first boot, after the database servers start, and removes its own trigger so it runs
   once (systemd.unit(5) ConditionPathExists=, systemd.service(5) Type=oneshot).
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import List, Optional

from rescue.errors import RescueError

UNIT_NAME = "rescue-db-reload.service"
STAMP = "var/lib/rescue/reload-db-pending"
PROGRAM = "var/lib/rescue/rescue.pyz"


def _inside(target: str, rel: str) -> str:
    """A path under the target; refuses a symlinked parent so a restored tree cannot redirect our writes."""
    path = target
    for part in rel.split("/")[:-1]:
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise RescueError(f"{path}: is a symlink in the restored tree; refusing to write through it")
    return os.path.join(target, rel)


def boot_steps(target: str, label=None) -> List[str]:
    """Hook point for bootloader and fstab (see the module docstring). Returns lines for the administrator."""
    lines = []
    fstab = os.path.join(target, "etc/fstab")
    if os.path.isfile(fstab) and not os.path.islink(fstab):
        with open(fstab, encoding="utf-8", errors="replace") as f:
            sources = [ln.split()[0] for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
        uuids = [s for s in sources if s.startswith(("UUID=", "LABEL=", "PARTUUID="))]
        if uuids:
            lines.append(
                f"fstab: {len(uuids)} filesystem(s) named by UUID/LABEL ({', '.join(uuids[:4])}"
                f"{' ...' if len(uuids) > 4 else ''}); they must match the new disks (blkid)"
            )
    if os.path.isdir(os.path.join(target, "boot")):
        lines.append(
            "bootloader: not reinstalled by restore; 'rescue bootloader install' runs grub-install and update-grub "
            "in a chroot of the target ('rescue recover' runs every stage)"
        )
    return lines


def reload_db_advice(label) -> List[str]:
    dumps = list(getattr(label, "dumps", None) or [])
    if not dumps:
        return []
    return [
        "database dumps restored: " + ", ".join(dumps),
        "reload them in the restored system with: rescue db reload  (or restore with --reload-db to do it at "
        "first boot)",
    ]


def _running_program() -> Optional[str]:
    """The rescue.pyz this process runs from, if it runs from one."""
    argv0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return argv0 if argv0.endswith(".pyz") and os.path.isfile(argv0) else None


def unit_text(command: str) -> str:
    return "\n".join(
        [
            "[Unit]",
            "Description=Reload the database dumps restored by rescue (runs once)",
            f"ConditionPathExists=/{STAMP}",
            "Wants=mariadb.service mysql.service postgresql.service",
            "After=mariadb.service mysql.service postgresql.service network.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"ExecStart={command} db reload",
            f"ExecStartPost=/bin/rm -f /{STAMP}",
            "RemainAfterExit=no",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def install_reload_unit(target: str, label=None) -> List[str]:
    """Install and enable the one-shot unit in the target; return what was done."""
    program = _running_program()
    if program:
        dest = _inside(target, PROGRAM)
        os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
        shutil.copyfile(program, dest)
        os.chmod(dest, 0o755)
        command = f"/usr/bin/env python3 /{PROGRAM}"
    else:
        command = "/usr/bin/env rescue"
    unit = _inside(target, f"etc/systemd/system/{UNIT_NAME}")
    os.makedirs(os.path.dirname(unit), mode=0o755, exist_ok=True)
    with open(unit, "w", encoding="utf-8") as f:
        f.write(unit_text(command))
    wants = _inside(target, f"etc/systemd/system/multi-user.target.wants/{UNIT_NAME}")
    os.makedirs(os.path.dirname(wants), mode=0o755, exist_ok=True)
    if os.path.lexists(wants):
        os.unlink(wants)
    # The symlink `systemctl enable` makes, relative to the unit directory.
    os.symlink(f"../{UNIT_NAME}", wants)
    stamp = _inside(target, STAMP)
    os.makedirs(os.path.dirname(stamp), mode=0o755, exist_ok=True)
    with open(stamp, "w", encoding="utf-8") as f:
        f.write("written by rescue restore --reload-db; removed after the reload\n")
    return [f"installed /etc/systemd/system/{UNIT_NAME}: the databases reload once at first boot"]
