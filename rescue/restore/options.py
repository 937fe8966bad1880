"""What a restore is asked (`RestoreOptions`, the flags of `rescue restore`) and what it reports
(`RestoreResult`, also the `--json` summary). Exit codes: 0 all restored and verified; 1 finished with per-file
problems (`errors`, `lost`); 2 a PATH matched nothing (`not_found`; the rest is restored, as GNU tar does) or a
fatal error (raised as RescueError, not returned)."""

from __future__ import annotations

import dataclasses
from typing import IO, Callable, List, Optional

from rescue.errors import EXIT_OK
from rescue.restore.plan import Plan

DEFAULT_TARGET = "/mnt/target"


@dataclasses.dataclass
class RestoreOptions:
    paths: List[str] = dataclasses.field(default_factory=list)
    target: str = DEFAULT_TARGET
    excludes: List[str] = dataclasses.field(default_factory=list)
    default_excludes: bool = True
    catalog: Optional[str] = None  # a catalog.jsonl.gz to use instead of the tape's
    archive_file: Optional[int] = None  # the archive's tape file, where the label cannot say (--archive-file)
    no_catalog: bool = False  # one streaming pass, no seeking
    dry_run: bool = False
    resume: bool = False
    seek_threshold: Optional[int] = None  # records; None: rescue.restore.plan's default
    yes: bool = False
    reload_db: bool = False
    advice: bool = True  # name the bootloader and database steps left (recover runs them itself: False)
    numeric_owner: bool = True
    jobs: Optional[int] = None  # processes writing files; None: the CPUs this process may use
    messages: Optional[IO[str]] = None  # stderr by default
    confirm: Optional[Callable[[str], str]] = None  # reads a typed answer; None: input() on a terminal


@dataclasses.dataclass
class RestoreResult:
    files: int = 0
    bytes: int = 0
    records_read: int = 0
    seeks: int = 0
    warnings: List[str] = dataclasses.field(default_factory=list)
    errors: List[str] = dataclasses.field(default_factory=list)
    lost: List[str] = dataclasses.field(default_factory=list)
    not_found: List[str] = dataclasses.field(default_factory=list)  # PATHs that matched no member (exit 2)
    mode: str = "catalog"  # "catalog" (planned, seeking) or "stream"
    dry_run: bool = False
    plan: Optional[Plan] = None
    truncated: Optional[str] = None  # why the archive ended early (a cut image), when it did
    exit_code: int = EXIT_OK

    def to_json(self) -> dict:
        d = {
            "files": self.files,
            "bytes": self.bytes,
            "records_read": self.records_read,
            "seeks": self.seeks,
            "warnings": self.warnings,
            "errors": self.errors,
            "lost": self.lost,
            "not_found": self.not_found,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "truncated": self.truncated,
            "exit_code": self.exit_code,
        }
        if self.plan is not None:
            d["plan"] = self.plan.to_json()
        return d
