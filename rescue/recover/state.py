"""The recover state file: which stages are done, what the layout stage made, how long each stage took.

Contract: `State.load(path)` (None when there is none), `state.save()` writes it atomically (0600) to the rescue
system's copy (`/run/rescue/recover.json` by default) and, once the target is mounted, to
`TARGET/var/lib/rescue/recover.json`, so a rescue system booted again finds it in the target.  It holds the
layout (so later stages and `--resume` need neither the tape's label nor the file again), the device map
old -> new, the mounts made, the changes the layout stage reported, the options of the run (tape, target,
`--no-catalog`, `--reload-db`), and per stage `done`, `seconds` and the error that stopped it.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

STAGES = ("layout", "restore", "bootloader", "finalize")
STATE_NAME = "recover.json"
IN_TARGET = "var/lib/rescue/recover.json"
DEFAULT_STATE_DIR = "/run/rescue"


def _write(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


class State:
    def __init__(self, path: str, data: Optional[dict] = None):
        self.path = path
        self.data = data or {"stages": {}, "options": {}}

    @classmethod
    def load(cls, path: str) -> Optional[State]:
        try:
            with open(path, encoding="utf-8") as f:
                return cls(path, json.load(f))
        except FileNotFoundError:
            return None
        except ValueError:
            return None

    @classmethod
    def find(cls, state_dir: str, target: str) -> Optional[State]:
        """The rescue system's state, else the one in a mounted target (a rescue system booted again)."""
        mine = os.path.join(state_dir, STATE_NAME)
        found = cls.load(mine)
        if found is None:
            found = cls.load(os.path.join(target, IN_TARGET))
            if found is not None:
                found.path = mine
        return found

    # accessors -------------------------------------------------------------------------------------------
    @property
    def layout(self) -> Optional[dict]:
        return self.data.get("layout")

    @property
    def device_map(self) -> Dict[str, str]:
        return dict(self.data.get("device_map") or {})

    @property
    def mounts(self) -> List[dict]:
        return list(self.data.get("mounts") or [])

    @property
    def changed(self) -> List[str]:
        return list(self.data.get("changed") or [])

    def done(self, stage: str) -> bool:
        return bool(self.data["stages"].get(stage, {}).get("done"))

    def next_stage(self) -> Optional[str]:
        return next((s for s in STAGES if not self.done(s)), None)

    def mark(self, stage: str, done: bool, seconds: float, error: Optional[str] = None) -> None:
        entry = self.data["stages"].setdefault(stage, {"seconds": 0.0})
        entry["seconds"] = round(entry.get("seconds", 0.0) + seconds, 1)
        entry["done"], entry["error"] = done, error

    def seconds(self) -> Dict[str, float]:
        return {s: self.data["stages"][s].get("seconds", 0.0) for s in STAGES if s in self.data["stages"]}

    def save(self, target: Optional[str] = None) -> None:
        _write(self.path, self.data)
        if target and self.done("layout") and os.path.isdir(target):
            _write(os.path.join(target, IN_TARGET), self.data)
