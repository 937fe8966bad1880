"""Commands run inside the target: a chroot with /dev, /proc, /sys and /run bind-mounted (efivarfs on UEFI).

Contract: `with Chroot(target, runner, efi=False) as ch: ch.run([...])` (`ch.popen([...])` for a server).
Entering mounts, in order, /dev, /proc, /sys, /run onto the same paths under the target (plain binds, not
recursive, so each unmounts by itself) and efivarfs on TARGET/sys/firmware/efi/efivars when `efi`; leaving
unmounts everything it mounted, in reverse, also when a step raised (a lazy unmount when a plain one fails, so a
busy mount never keeps the target held).
`ensure_by_uuid(blkid_export)` creates the /dev/disk/by-uuid links the rescue system's missing udev did not
(update-grub writes `root=/dev/vda1` instead of `root=UUID=` without them); leaving removes the links it made.
`runner(argv, stdin=None) -> (returncode, output)` is the single place commands run (the log is its business).
"""

from __future__ import annotations

import os
import subprocess
from typing import Callable, List, Optional, TextIO, Tuple

from rescue.layout.tools import tool_env

Runner = Callable[..., Tuple[int, str]]
BINDS = ("dev", "proc", "sys", "run")
EFIVARS = "sys/firmware/efi/efivars"


class ChrootError(Exception):
    pass


def logged_runner(log: TextIO) -> Runner:
    """A runner that appends each command, its input and output and its exit status to `log`."""

    def run(argv: List[str], stdin: Optional[str] = None) -> Tuple[int, str]:
        log.write(f"$ {' '.join(argv)}\n" + (stdin or ""))
        try:
            proc = subprocess.run(
                argv, input=(stdin or "").encode(), capture_output=True, env=tool_env(), check=False
            )
        except OSError as e:
            log.write(f"{e}\n[not run]\n")
            return 127, str(e)
        out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        log.write(out + f"[exit {proc.returncode}]\n")
        log.flush()
        return proc.returncode, out

    return run


def parse_blkid_export(text: str) -> List[dict]:
    """`blkid -o export` (blocks of KEY=value separated by blank lines) -> [{"DEVNAME": ..., "UUID": ...}]."""
    found = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if fields.get("DEVNAME"):
            found.append(fields)
    return found


class Chroot:
    def __init__(self, target: str, runner: Runner, efi: bool = False, dev_root: str = "/dev"):
        self.target, self.runner, self.efi, self.dev_root = target, runner, efi, dev_root
        self.mounted: List[str] = []
        self.links: List[str] = []
        self.dirs: List[str] = []

    def __enter__(self) -> Chroot:
        try:
            for name in BINDS:
                point = os.path.join(self.target, name)
                os.makedirs(point, exist_ok=True)
                self._mount(["mount", "--bind", f"/{name}", point], point)
            if self.efi:
                point = os.path.join(self.target, EFIVARS)
                if os.path.isdir(point):
                    self._mount(["mount", "-t", "efivarfs", "efivarfs", point], point)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _mount(self, argv: List[str], point: str) -> None:
        code, out = self.runner(argv)
        if code != 0:
            raise ChrootError(f"{' '.join(argv)}: exit {code}: {out.strip()[-200:]}")
        self.mounted.append(point)

    def __exit__(self, *exc) -> None:
        for link in reversed(self.links):
            try:
                os.unlink(link)
            except OSError:
                pass
        self.links = []
        for d in reversed(self.dirs):
            try:
                os.rmdir(d)
            except OSError:
                pass
        self.dirs = []
        for point in reversed(self.mounted):
            code, _ = self.runner(["umount", point])
            if code != 0:
                self.runner(["umount", "-l", point])
        self.mounted = []

    def run(self, argv: List[str], stdin: Optional[str] = None) -> Tuple[int, str]:
        return self.runner(["chroot", self.target, *argv], stdin=stdin)

    def popen(self, argv: List[str], **kwargs) -> subprocess.Popen:
        """A command in the target that keeps running (a server); the caller waits for it and logs it."""
        return subprocess.Popen(["chroot", self.target, *argv], env=tool_env(), **kwargs)

    def ensure_by_uuid(self, blkid_export: str) -> List[str]:
        """Create missing /dev/disk/by-uuid/UUID -> ../../NAME links; return the ones made."""
        top = os.path.join(self.dev_root, "disk/by-uuid")
        made = []
        for dev in parse_blkid_export(blkid_export):
            uuid, name = dev.get("UUID"), dev["DEVNAME"]
            if not uuid or not name.startswith("/dev/"):
                continue
            link = os.path.join(top, uuid)
            if os.path.lexists(link):
                continue
            for d in (os.path.dirname(top), top):
                if not os.path.isdir(d):
                    os.mkdir(d)
                    self.dirs.append(d)
            os.symlink("../../" + name[len("/dev/") :], link)
            self.links.append(link)
            made.append(f"{link} -> {name}")
        return made
