"""Running the build machine's tools for the iso builders, and the one error they report.

Contract: `run(cmd, **kw)` returns the command's stdout; a missing program or a non-zero exit raises BuildError
with one line (the program, and the last lines of what it printed). Each builder's main() prints a BuildError as
`PROG: message` on stderr and exits 2. `log(prog, msg)` is a progress line on stderr.
"""

from __future__ import annotations

import subprocess
import sys


class BuildError(Exception):
    pass


def log(prog: str, msg: str) -> None:
    print(f"{prog}: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    except FileNotFoundError as e:
        raise BuildError(f"{cmd[0]}: not installed (see build/system-deps.sh)") from e
    if p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-3:]
        raise BuildError(f"{' '.join(cmd[:3])}... failed: {' / '.join(tail) or f'exit {p.returncode}'}")
    return p.stdout
