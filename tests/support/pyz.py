"""Builders of the tests of the built rescue.pyz: `build_pyz()` runs build/pyz.py; `pythons()` lists the interpreters
to try: every CPython 3.9+ that pyenv has (found from `pyenv root`), and the system's python3.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD = ROOT / "build" / "pyz.py"


def build_pyz(out: Path, *options: str) -> Path:
    subprocess.run([sys.executable, str(BUILD), "--out", str(out), *options], check=True, capture_output=True)
    return out


def pythons() -> List[Tuple[str, str]]:
    """(label, interpreter) for every CPython >= 3.9 found: pyenv's versions and the system python3."""
    found = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            root = ""
        versions = Path(root, "versions") if root else None
        if versions and versions.is_dir():
            for entry in sorted(versions.iterdir()):
                m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", entry.name)
                exe = entry / "bin" / "python3"
                if m and (int(m.group(1)), int(m.group(2))) >= (3, 9) and exe.exists():
                    found.append((f"pyenv-{entry.name}", str(exe)))
    for system in ("/usr/bin/python3",):
        if os.path.exists(system):
            found.append(("system", system))
    if not found:
        found.append(("current", sys.executable))
    return found
