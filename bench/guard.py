"""Cleanup that survives the benchmark being killed: `guard.mount(path)` / `guard.remove(path)` register what
to undo; a small watcher process (its own session, so Ctrl-C to the bench does not reach it) waits for the end
of a pipe from this process and then unmounts what is still mounted (lazily: a killed child may hold it; the
loop device goes with it, `mount -o loop` sets autoclear) and removes what is left, whether the bench ended
normally, raised, or was killed with SIGKILL.  The normal path still cleans up itself, in order; the watcher
only finds what that path could not reach.
"""

from __future__ import annotations

import os
import subprocess
import sys

_WATCHER = r"""
import os, shutil, subprocess, sys
mounts, paths = [], []
for line in sys.stdin:
    kind, _, path = line.rstrip("\n").partition(" ")
    (mounts if kind == "mount" else paths).append(path)
for path in reversed(mounts):
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", path], capture_output=True)
for path in reversed(paths):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)
"""
_proc = None


def _send(kind: str, path: str) -> None:
    global _proc
    if _proc is None:
        _proc = subprocess.Popen(
            [sys.executable, "-c", _WATCHER], stdin=subprocess.PIPE, text=True, start_new_session=True
        )
    _proc.stdin.write(f"{kind} {os.path.abspath(path)}\n")
    _proc.stdin.flush()


def mount(path: str) -> None:
    """`path` is (about to be) a mount point: unmounted at the latest when this process ends."""
    _send("mount", path)


def remove(path: str) -> None:
    """`path` (a file or directory tree) is removed at the latest when this process ends."""
    _send("remove", path)
