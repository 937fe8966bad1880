"""What the drill builds before it boots a guest: the patched tgt, rescue.pyz and the rescue image holding it.

The production system the boot steps install is built by drill/bootdrill.py (`build()`), only when they run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent


def prepare(workdir: Path, log: Callable[[str], None]) -> Path:
    """Build what the drill needs: the patched tgt, rescue.pyz, the rescue image with that pyz."""
    subprocess.run(["bash", str(ROOT / "drill" / "build-tgt.sh")], check=True)
    log("building dist/rescue.pyz")
    subprocess.run([sys.executable, str(ROOT / "build" / "pyz.py")], check=True, stdout=subprocess.DEVNULL)
    image = workdir / "image"
    log("building the rescue image (iso.mkinitramfs)")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "iso.mkinitramfs",
            "--out",
            str(image),
            "--pyz",
            str(ROOT / "dist" / "rescue.pyz"),
        ],
        check=True,
        cwd=ROOT,
    )
    return image
