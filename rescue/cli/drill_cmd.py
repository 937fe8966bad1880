"""`rescue drill`: run the recovery drill from a source checkout, or say how to run it.

The drill (drill/run.py in the source tree, `make drill`) needs more than this program: the patched tgt it
builds from Debian's source, QEMU, the rescue image built by iso.mkinitramfs, and the test helpers.  So this
command runs it only when the package is imported from a checkout that holds drill/run.py, with the same
interpreter, and passes its exit code on; from rescue.pyz or an installed copy it explains where to run it
and exits 2.  It never pretends: no checkout, no drill.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Optional

from rescue.errors import RescueError

STEPS = "smoke,contract,classic,rescue,dd"


def checkout() -> Optional[str]:
    """The source checkout this package was imported from, when it holds the drill."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(os.path.join(here, "drill", "run.py")) and os.path.isfile(
        os.path.join(here, "Makefile")
    ):
        return here
    return None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "drill",
        help="run the recovery drill (QEMU + virtual SCSI tape) from a source checkout",
        description="Run the recovery drill: a virtual SCSI tape (patched tgt on 127.0.0.1) in QEMU guests; "
        "backup, wipe, bare-metal restore, compare; a report with step times and throughput. Needs a source "
        "checkout (where `make drill` does the same, installing what it needs as root).",
    )
    p.add_argument("--steps", default=STEPS, help=f"comma-separated subset of {STEPS}")
    p.add_argument(
        "--workdir", metavar="DIR", help="where the drill keeps its images (default build/out/drill)"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    top = checkout()
    if top is None:
        raise RescueError(
            "drill: this copy of rescue is not a source checkout; the drill needs one (QEMU, tgt built from "
            "Debian's source, the rescue image): in a clone of the rescue repository run `make drill` as root"
        )
    argv = [sys.executable, "-m", "drill", "--steps", args.steps]
    if args.workdir:
        argv += ["--workdir", args.workdir]
    return subprocess.run(argv, cwd=top).returncode
