"""The catalog directory (/var/lib/rescue/catalogs by default): one subdirectory per finished backup set,
`<host>-<date>-<id>/` (mode 0700) with `catalog.jsonl.gz`, `filelist.txt` and `summary.json` (mode 0600).

A set being written lives in `.incoming-<id>/` and is renamed when it is complete, so a reader never sees half a
catalog and the shrink guard never compares against a backup that died.  `newest_catalog` finds the reference for
the shrink guard; `prune_catalogs` keeps the newest N of a host and clears work directories of dead jobs.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import IO, List, Optional

from rescue.tapeset.catalog_tape import SUMMARY_NAME


def newest_catalog(catalog_dir: str, host: str, root: str) -> Optional[dict]:
    """summary.json (plus its directory as "_dir") of the newest finished backup of this host and root."""
    best = None
    try:
        names = os.listdir(catalog_dir)
    except FileNotFoundError:
        return None
    for name in names:
        if name.startswith("."):
            continue  # a backup in progress or one that died
        path = os.path.join(catalog_dir, name, SUMMARY_NAME)
        try:
            with open(path, encoding="utf-8") as f:
                summary = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(summary, dict) or summary.get("host") != host or summary.get("root") != root:
            continue
        if best is None or _age_key(summary) > _age_key(best):
            summary["_dir"] = os.path.join(catalog_dir, name)
            best = summary
    return best


def prune_catalogs(catalog_dir: str, host: str, keep: int, out: IO[str]) -> List[str]:
    """Remove this host's catalogs beyond the newest `keep` (0 keeps all), and work directories of backups that
    died more than a day ago.  Returns the directories removed."""
    removed = []
    try:
        names = os.listdir(catalog_dir)
    except FileNotFoundError:
        return removed
    finished = []
    for name in names:
        path = os.path.join(catalog_dir, name)
        if name.startswith(".incoming-"):
            try:
                stale = time.time() - os.stat(path).st_mtime > 86400
            except FileNotFoundError:
                continue
            if stale:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            continue
        try:
            with open(os.path.join(path, SUMMARY_NAME), encoding="utf-8") as f:
                summary = json.load(f)
        except (OSError, ValueError):
            continue  # not ours, or damaged: left alone
        if isinstance(summary, dict) and summary.get("host") == host:
            finished.append((_age_key(summary), path))
    if keep > 0:
        finished.sort(reverse=True)
        for _, path in finished[keep:]:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    for path in removed:
        print(f"rescue: removed old catalog {path}", file=out)
    return removed


def _age_key(summary: dict):
    # created has whole seconds (ISO 8601); finished_ns orders two sets written within one second.
    return (str(summary.get("created", "")), int(summary.get("finished_ns", 0)))
