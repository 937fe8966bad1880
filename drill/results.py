"""What a drill step leaves behind and how the drill reads it: a step's result, the files a guest wrote to its
share (times, exit codes, JSON summaries, stderr), and the report.

Readers never raise: a missing or garbled file reads as a zero time, None, {} or a word saying so, since a
failed guest leaves any of them out and the step then reports why.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Dict, List, Optional

from drill.guestrun import GuestResult


@dataclasses.dataclass
class StepResult:
    name: str
    ok: bool
    seconds: float
    summary: str
    details: Dict = dataclasses.field(default_factory=dict)
    guests: List[Dict] = dataclasses.field(default_factory=list)

    def add_guest(self, g: GuestResult) -> None:
        self.guests.append(
            {
                "name": g.name,
                "status": g.status,
                "seconds": round(g.seconds, 1),
                "boot_seconds": round(g.boot_seconds, 1),
            }
        )


def read_times(share: Path, name: str = "times") -> tuple:
    try:
        a, b = (share / name).read_text().split()[:2]
        return float(a), float(b)
    except (OSError, ValueError):
        return 0.0, 0.0


def read_int(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def rescue_said(path: Path) -> str:
    """What rescue said on stderr: its one-line errors (`rescue: ...`), else its last line (a traceback's)."""
    try:
        lines = path.read_text(errors="replace").replace("\r", "\n").splitlines()
    except OSError:
        return "no stderr"
    errors = [line.strip() for line in lines if line.startswith("rescue: ")]
    if errors:
        return "; ".join(errors[-3:])
    tail = [line.strip() for line in lines if line.strip()]
    return tail[-1] if tail else "nothing"


def compare_summary(c: dict) -> str:
    if not c:
        return "no comparison"
    return f"{c.get('entries')} entries, {c.get('link_groups')} hard-link groups, {len(c.get('differences', []))} differences"


def mib(rate: float) -> float:
    return round(rate / (1024 * 1024), 1)


def report(results: List[StepResult], rates: Dict[str, float], total: float, accel: str = "?") -> str:
    lines = ["", f"drill report (QEMU {accel})", "-" * 100]
    for r in results:
        boots = ", ".join(f"{g['name']} boot {g['boot_seconds']}s" for g in r.guests)
        lines.append(f"{'PASS' if r.ok else 'FAIL'}  {r.name:<9} {r.seconds:7.1f}s  {r.summary}")
        if boots:
            lines.append(f"      {'':<9} {'':>8}  ({boots})")
        for f in (r.details.get("failures") or [])[:10]:
            lines.append(f"      {'':<9} {'':>8}  {f}")
    if rates:
        lines.append("-" * 100)
        for k in ("backup_write", "backup_job_write", "dd_write", "restore_read", "dd_read"):
            if k in rates:
                lines.append(f"throughput {k:<16} {mib(rates[k]):8.1f} MiB/s")
        if "backup_write" in rates and "dd_write" in rates:
            lines.append(
                f"backup / dd write: {rates['backup_write'] / rates['dd_write']:.2f} (command wall time)"
            )
        if "backup_job_write" in rates and "dd_write" in rates:
            lines.append(
                f"backup / dd write: {rates['backup_job_write'] / rates['dd_write']:.2f} (job's own time)"
            )
        if "restore_read" in rates and "dd_read" in rates:
            lines.append(f"restore / dd read: {rates['restore_read'] / rates['dd_read']:.2f}")
        if accel == "tcg":
            lines.append(
                "(TCG: the guest CPU is emulated; rescue's rates are bound by emulated Python, dd's are not)"
            )
    passed = sum(r.ok for r in results)
    lines.append("-" * 100)
    lines.append(f"drill: {passed} passed, {len(results) - passed} failed in {total:.0f}s")
    return "\n".join(lines)
