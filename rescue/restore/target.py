"""The restore target: the checks made before anything is read from tape, and what a full file system means.

Contract:
- `check_target` runs first, before the label is read (tape motion takes seconds to minutes): TARGET must be an
  existing directory (else exit 2: "mount the new filesystem there or create it"); a non-empty one (anything
  but `lost+found` and the restore journal) needs `--yes` or `--resume`; `/` needs `--yes` or the typed word
  `overwrite` on a terminal. A dry run applies the same rules but writes nothing and asks nothing: a missing
  target is still fatal, the other two become notes saying what a real run needs.
- `check_space` compares the target's free space and inodes (statvfs(3); the root-reserved part counts for
  root) with the plan's bytes and members before the first member is written: a warning when they may not fit,
  a refusal without `--yes` when the data alone does not fit.
- A member that fails with ENOSPC or EDQUOT ends the restore (`TargetFullError`, exit 2): every later member
  would fail the same way, after the rest of the tape had been read for nothing.
- `remove_leftovers` deletes the temporary names an interrupted run left (rescue.archive.tempname).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import IO, Callable, List, Optional

from rescue.archive import tempname
from rescue.errors import RefusedError, RescueError, UsageError
from rescue.progress import human_bytes
from rescue.restore import journal as journal_mod

# Entries a freshly made filesystem already has; they do not make a target "not empty".
IGNORED_IN_TARGET = ("lost+found", journal_mod.NAME)
CONFIRM_WORD = "overwrite"
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class TargetFullError(RescueError):
    """The target file system has no room (or the quota is used up): the restore stops, the journal stays."""


def is_full(error: Optional[BaseException]) -> bool:
    """True for the errors that mean "no room on the target" (write(2): ENOSPC, EDQUOT)."""
    return isinstance(error, OSError) and error.errno in FULL_ERRNOS


def check_target(
    target: str,
    *,
    yes: bool,
    resume: bool,
    dry_run: bool,
    out: IO[str],
    confirm: Optional[Callable[[str], str]] = None,
) -> List[str]:
    """Refuse a target a restore must not write to (see the module docstring); returns notes for a dry run."""
    if not os.path.isdir(target):
        raise UsageError(
            f"{target}: target directory does not exist; mount the new filesystem there or create it"
        )
    notes = []
    if target == "/" and not yes:
        if dry_run:
            notes.append(
                f"-C /: a real run restores over the running system only with --yes or '{CONFIRM_WORD}'"
            )
        else:
            confirm_root(out, confirm)
    if resume or yes or target == "/":
        return notes
    with os.scandir(target) as it:
        others = [e.name for e in it if e.name not in IGNORED_IN_TARGET]
    if others:
        what = f"{target}: target is not empty ({len(others)} entries, e.g. {sorted(others)[0]})"
        if dry_run:
            notes.append(f"{what}; a real run needs --yes")
        else:
            raise RefusedError(
                f"{what}; restore over it with --yes, or continue an interrupted restore with --resume"
            )
    return notes


def confirm_root(out: IO[str], confirm: Optional[Callable[[str], str]]) -> None:
    prompt = f"restore over the running system in / (files there are overwritten)? type '{CONFIRM_WORD}' to go on: "
    if confirm is not None:
        answer = confirm(prompt)
    elif sys.stdin.isatty() and out.isatty():
        out.write(prompt)
        out.flush()
        answer = sys.stdin.readline()
    else:
        raise RefusedError("-C /: restoring over the running system needs --yes")
    if answer.strip() != CONFIRM_WORD:
        raise RefusedError("-C /: not confirmed; nothing restored")


def check_space(target: str, files: int, nbytes: int, yes: bool) -> List[str]:
    """Warnings when `files` members of `nbytes` data bytes may not fit in the target; RefusedError without
    `yes` when they clearly do not (the data alone is more than the free space, or the members more than the
    free inodes)."""
    try:
        st = os.statvfs(target)
    except OSError:
        return []  # nothing to compare with: the restore itself will say what fails
    root = os.geteuid() == 0
    free = (st.f_bfree if root else st.f_bavail) * st.f_frsize
    inodes = st.f_ffree if root else st.f_favail
    # Each member takes at least one block (data rounded up, a directory's block); inode counts of 0 in total
    # mean the file system does not count them (btrfs, vfat).
    need = nbytes + files * st.f_frsize
    short_inodes = st.f_files > 0 and inodes < files
    if nbytes <= free and not short_inodes:
        if need > free:
            return [
                f"{target}: {human_bytes(free)} free for {human_bytes(nbytes)} in {files} members; "
                "it may not fit (each member takes at least one block)"
            ]
        return []
    what = (
        f"{target}: {human_bytes(free)} and {inodes} inodes free, the restore needs {human_bytes(nbytes)} "
        f"in {files} members"
    )
    if not yes:
        raise RefusedError(f"{what}; free space or grow the filesystem, or go on anyway with --yes")
    return [f"{what}; going on (--yes)"]


def full_message(done: int, total: Optional[int], done_bytes: int, total_bytes: Optional[int]) -> str:
    """The one line a full target ends the restore with."""
    if total is None:
        counts = f"{done} members ({human_bytes(done_bytes)})"
    else:
        counts = f"{done} of {total} members ({human_bytes(done_bytes)} of {human_bytes(total_bytes or 0)})"
    return f"target full after {counts}; free space or grow the filesystem, then run again with --resume"


def remove_leftovers(root: str) -> None:
    """The file an interrupted run was writing sits under a temporary name (the extractor renames a file into
    place only when complete); remove such leftovers of other processes."""
    me = os.getpid()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if tempname.is_leftover(name, me):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(dirpath, name))
