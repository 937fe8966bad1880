"""The image tree being built: files copied from the package index into a staging root, following symlinks and
ELF dependencies, and files of the build machine added to it.

Contract: every write goes through Image.place(), which never leaves the staging root: the image's own symlinks
are followed as the booted system would (an absolute target starts at the root), a symlink or file at the
destination is replaced rather than written through, and a path that climbs above the root is refused
(BuildError). So `--add SRC:/usr/sbin/mkswap` replaces the applet link, never the build machine's busybox.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Optional

from iso.external import BuildError, run
from iso.packages import canonical

LIB_DIRS = ["usr/lib/x86_64-linux-gnu", "usr/lib", "usr/lib64"]


class Image:
    """Copies files from the package index into the staging root, following symlinks and ELF dependencies."""

    def __init__(self, index: dict[str, Path], root: Path):
        self.index = index
        self.root = root
        self.done: set[str] = set()

    def has(self, rel: str) -> bool:
        return canonical(rel) in self.index

    def add(self, rel: str) -> None:
        rel = canonical(rel)
        if rel in self.done:
            return
        self.done.add(rel)
        src = self.index.get(rel)
        if src is None:
            raise BuildError(f"/{rel} is in none of the downloaded packages (add its package to PACKAGES)")
        if src.is_dir() and not src.is_symlink():
            self.place(rel, directory=True)
            return
        dest = self.place(rel)
        if src.is_symlink():
            link = os.readlink(src)
            target = canonical(link if link.startswith("/") else os.path.join(os.path.dirname(rel), link))
            dest.symlink_to("/" + target)
            if target in self.index:
                self.add(target)
            return
        shutil.copy2(src, dest)
        if is_elf(dest):
            for lib in elf_needs(dest):
                self.add(self.find_library(lib, rel))

    def add_tree(self, rel: str, skip=lambda rel: False) -> None:
        rel = canonical(rel)
        prefix = rel + "/"
        for path in sorted(p for p in self.index if p == rel or p.startswith(prefix)):
            if not skip(path):
                self.add(path)

    def find_library(self, name: str, needed_by: str) -> str:
        if "/" in name:  # the interpreter, e.g. /lib64/ld-linux-x86-64.so.2
            return canonical(name)
        for d in LIB_DIRS:
            if f"{d}/{name}" in self.index:
                return f"{d}/{name}"
        raise BuildError(f"{name} (needed by /{needed_by}) is in none of the downloaded packages")

    def program(self, name: str) -> None:
        for d in ("usr/sbin", "usr/bin"):
            rel = f"{d}/{name}"
            if rel in self.index:
                self.add(rel)
                # Also the names that point at it (mkfs.ext4 -> mke2fs, vgchange -> lvm).
                for other in ("usr/sbin", "usr/bin"):
                    for path, src in self.index.items():
                        if path.startswith(other + "/") and path.count("/") == 2 and src.is_symlink():
                            link = os.readlink(src)
                            target = (
                                link if link.startswith("/") else os.path.join(os.path.dirname(path), link)
                            )
                            if canonical(target) == rel:
                                self.add(path)
                return
        raise BuildError(f"program {name} is in none of the downloaded packages")

    def place(self, rel: str, directory: bool = False) -> Path:
        """Where to write /rel: a path inside the tree whose directories exist and are real directories.

        The image's own symlinks are followed as the booted system would (an absolute target starts at the tree's
        root), never as the build machine would: a link such as /usr/sbin/mkswap -> /usr/bin/busybox must not
        lead a write to the build machine's busybox. A path that climbs above the tree's root is refused. A
        symlink or file already at the destination itself is removed, so the caller replaces it instead of
        writing through it.
        """
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if not parts:
            raise BuildError(f"/{rel}: not a file path")
        real: list[str] = []
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if not real:
                    raise BuildError(f"/{rel}: resolves outside the image tree (refused)")
                real.pop()
                continue
            path = self.root.joinpath(*real, name)
            if path.is_symlink() and (parts or directory):
                hops += 1
                if hops > 40:
                    raise BuildError(f"/{rel}: too many levels of symbolic links in the image tree")
                link = os.readlink(path)
                if link.startswith("/"):
                    real = []
                parts = [p for p in link.split("/") if p not in ("", ".")] + parts
                continue
            if parts or directory:
                if not path.exists():
                    path.mkdir()
                elif not path.is_dir():
                    raise BuildError(f"/{rel}: /{'/'.join(real + [name])} is a file in the image tree")
            real.append(name)
        dest = self.root.joinpath(*real)
        if not directory and (dest.is_symlink() or dest.exists()):
            if dest.is_dir() and not dest.is_symlink():
                raise BuildError(f"/{rel}: a directory in the image tree")
            dest.unlink()
        return dest

    def link(self, rel: str, target: str) -> None:
        dest = self.root / canonical(rel)
        if not (dest.exists() or dest.is_symlink()):
            self.place(canonical(rel)).symlink_to(target)

    def write(self, rel: str, text: str, mode: int = 0o644) -> None:
        dest = self.place(rel)
        dest.write_text(text)
        dest.chmod(mode)

    def copy(self, src: Path, rel: str, mode: Optional[int] = None) -> None:
        """Copy a file, symlink or directory tree of the build machine to /rel (through place())."""
        if src.is_symlink():
            self.place(rel).symlink_to(os.readlink(src))
        elif src.is_dir():
            self.place(rel, directory=True)
            for child in sorted(src.iterdir()):
                self.copy(child, f"{rel}/{child.name}")
        else:
            dest = self.place(rel)
            shutil.copy2(src, dest)
            if mode is not None:
                dest.chmod(mode)


def add_extra(image: Image, spec: str) -> None:
    """--add SRC:DEST: a file or directory of the build machine at DEST in the image, replacing what is there."""
    src, sep, dest = spec.partition(":")
    if not sep or not dest.startswith("/"):
        raise BuildError(f"--add {spec}: expected SRC:/absolute/dest")
    if not os.path.lexists(src):
        raise BuildError(f"--add {spec}: {src}: no such file or directory")
    image.copy(Path(src), dest.lstrip("/"))


def is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def elf_needs(path: Path) -> list[str]:
    out = run(["readelf", "-d", "-l", "-W", str(path)])
    needs = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    interp = re.search(r"Requesting program interpreter: ([^\]]+)\]", out)
    return needs + ([interp.group(1)] if interp else [])
