"""Debian packages for the image: the kernel's package name, the dependency closure, the .deb files
(`apt-get download`, cached), unpacked trees (`dpkg-deb -x`, cached) and one merged index of their files.

Contract: only the build machine's configured Debian archive is contacted (apt-get). Downloads go to a cache
directory and are reused; each package unpacks into its own directory of debroot/, beside and then renamed, so
a concurrent build never sees half a package. `canonical(rel)` maps a package path into merged /usr
(bookworm packages still ship /bin, /sbin, /lib); `index_trees` gives canonical path -> the file providing it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from iso.contents import SKIP_PACKAGES
from iso.external import BuildError, log, run

MERGED = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}


def canonical(rel: str) -> str:
    """Path inside a merged-/usr tree (bookworm packages still ship /bin, /sbin, /lib)."""
    rel = os.path.normpath(rel).lstrip("/")
    head, _, tail = rel.partition("/")
    if head in MERGED:
        return MERGED[head] + ("/" + tail if tail else "")
    return rel


def kernel_package() -> str:
    try:
        out = run(["apt-cache", "depends", "linux-image-amd64"])
    except BuildError:
        out = ""
    if "Depends: linux-image-" not in out and os.geteuid() == 0:
        # A fresh machine may have no package lists yet.
        log("mkinitramfs", "apt-get update")
        run(["apt-get", "update", "-qq"])
        out = run(["apt-cache", "depends", "linux-image-amd64"])
    m = re.search(r"Depends: (linux-image-\S+-amd64)", out)
    if not m:
        raise BuildError("apt-cache knows no linux-image-amd64: run apt-get update")
    return m.group(1)


def package_closure(names: list[str]) -> list[str]:
    out = run(
        [
            "apt-cache",
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
        ]
        + ["--no-replaces", "--no-enhances", *names]
    )
    found = {line.strip() for line in out.splitlines() if line and not line.startswith((" ", "<"))}
    return sorted(found - SKIP_PACKAGES)


def deb_files(packages: list[str], debs: Path) -> list[Path]:
    """The .deb of each package's candidate version, downloading the missing ones."""
    out = run(["apt-cache", "show", "--no-all-versions", *packages])
    wanted = {}
    for stanza in out.strip().split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|Architecture): (.+)$", stanza, re.M))
        if fields.get("Package") in packages:
            version = fields["Version"].replace(":", "%3a")
            wanted[fields["Package"]] = debs / f"{fields['Package']}_{version}_{fields['Architecture']}.deb"
    missing = [p for p, f in wanted.items() if not f.exists()]
    if missing:
        log("mkinitramfs", f"apt-get download {len(missing)} packages into {debs}")
        debs.mkdir(parents=True, exist_ok=True)
        run(["apt-get", "download", *missing], cwd=debs)
    lost = [str(f) for f in wanted.values() if not f.exists()]
    if lost:
        raise BuildError(f"apt-get download did not produce {', '.join(lost)}")
    return [wanted[p] for p in sorted(wanted)]


def unpack(debs: list[Path], debroot: Path) -> list[Path]:
    trees = []
    for deb in debs:
        tree = debroot / deb.stem
        if not tree.exists():
            # Unpack beside, then rename: a concurrent build never sees half a package.
            debroot.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{deb.stem}-", dir=debroot))
            run(["dpkg-deb", "-x", str(deb), str(tmp)])
            try:
                tmp.rename(tree)
            except OSError:  # another build got there first
                shutil.rmtree(tmp)
        trees.append(tree)
    return trees


def index_trees(trees: list[Path]) -> dict[str, Path]:
    """Merged view of all unpacked packages: canonical relative path -> the file (or symlink) providing it."""
    index: dict[str, Path] = {}
    for tree in trees:
        for dirpath, dirnames, filenames in os.walk(tree):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                rel = canonical(str(path.relative_to(tree)))
                if path.is_dir() and not path.is_symlink():
                    index.setdefault(rel, path)
                else:
                    index[rel] = path
    return index
