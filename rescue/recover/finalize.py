"""The finalize stage: the restored system's device names agree with the disks, the logs are in the target.

Contract: `plan_files(target, uuids, devices) -> [(rel, new_text, changes)]` reads the target's fstab,
crypttab, mdadm.conf and resume settings and returns the rewrites `rescue.recover.rewrite` makes (none when the
layout stage kept every UUID and disk name: the usual case).  `apply_files(target, planned)` writes each with the
original kept beside it as FILE.rescue-orig (an older backup is never overwritten).  `copy_logs(target, logs)`
puts the layout log and the recover log into TARGET/var/log/rescue/.  `summary(seconds)` is the closing table.
The database reload at first boot is rescue.restore.finalize's (`--reload-db`), the reload now is
rescue.recover.dbreload's (`--reload-db-now`); the job calls them.
Writes go through rescue.restore.finalize's guard: a symlinked parent in the restored tree is refused.
"""

from __future__ import annotations

import os
import shutil
from typing import Dict, List, Tuple

from rescue.progress import human_duration
from rescue.recover.rewrite import FILES
from rescue.restore.finalize import _inside

LOG_DIR = "var/log/rescue"


def plan_files(
    target: str, uuids: Dict[str, str], devices: Dict[str, str]
) -> List[Tuple[str, str, List[str]]]:
    planned = []
    for rel, rewrite in FILES:
        path = os.path.join(target, rel)
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
        new, changes = rewrite(text, uuids, devices)
        if changes:
            planned.append((rel, new, changes))
    return planned


def apply_files(target: str, planned) -> List[str]:
    done = []
    for rel, text, changes in planned:
        path = _inside(target, rel)
        backup = path + ".rescue-orig"
        if not os.path.exists(backup):
            shutil.copy2(path, backup)
        tmp = path + ".rescue-new"
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
        done += [f"{c} (original kept as /{rel}.rescue-orig)" for c in changes]
    return done


def copy_logs(target: str, logs: List[str]) -> List[str]:
    dest = _inside(target, LOG_DIR + "/x")
    os.makedirs(os.path.dirname(dest), mode=0o750, exist_ok=True)
    done = []
    for log in logs:
        if log and os.path.isfile(log):
            to = os.path.join(os.path.dirname(dest), os.path.basename(log))
            shutil.copyfile(log, to)
            done.append(f"log copied to /{LOG_DIR}/{os.path.basename(log)}")
    return done


def summary(seconds: Dict[str, float]) -> List[str]:
    lines = [f"  {stage:11} {human_duration(s)}" for stage, s in seconds.items()]
    lines.append(f"  {'total':11} {human_duration(sum(seconds.values()))}")
    return lines
