"""Kernel modules of the image: a module's dependencies (read from its .modinfo section, as modprobe reads
modules.dep) and the whole list copied into the image in load order, for /init's insmod loop (no modprobe:
the image has no modules.dep and loads everything at boot).
"""

from __future__ import annotations

import lzma
import os
import re
from pathlib import Path

from iso.external import BuildError
from iso.image import Image


def module_depends(path: Path) -> list[str]:
    """The `depends=` entry of a module's .modinfo section (what modprobe reads from modules.dep)."""
    data = path.read_bytes()
    if path.suffix == ".xz":
        data = lzma.decompress(data)
    m = re.search(rb"(?:^|\x00)depends=([^\x00]*)\x00", data)
    return [d for d in m.group(1).decode().split(",") if d] if m else []


def add_modules(image: Image, kver: str, wanted: list[str], optional: list[str]) -> list[str]:
    """Copy the modules and return their paths (relative to /lib/modules/KVER) in load order."""
    base = f"usr/lib/modules/{kver}"
    by_name = {}
    for rel in image.index:
        if rel.startswith(base + "/kernel/") and re.search(r"\.ko(\.xz)?$", rel):
            by_name[re.sub(r"\.ko(\.xz)?$", "", os.path.basename(rel)).replace("-", "_")] = rel
    builtin_file = image.index.get(f"{base}/modules.builtin")
    builtin = set()
    if builtin_file:
        for line in builtin_file.read_text().splitlines():
            builtin.add(os.path.basename(line).replace(".ko", "").replace("-", "_"))
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, required: bool) -> None:
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in by_name:
            if name in builtin or not required:
                return
            raise BuildError(f"kernel module {name} is neither a module nor built into {kver}")
        for dep in module_depends(image.index[by_name[name]]):
            visit(dep, True)
        image.add(by_name[name])
        order.append(by_name[name][len(base) + 1 :])

    for name in wanted:
        visit(name, True)
    for name in optional:
        visit(name, False)
    return order
