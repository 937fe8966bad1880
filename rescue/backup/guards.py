"""The guards of `rescue backup`: checks that refuse (exit 2) before anything is written to the tape.

- `check_device`: a tape is loaded, online and writable (st(4) status bits; mt-st prints them as ONLINE, WR_PROT,
  DR_OPEN), and the drive is in variable-block mode.
- `check_overwrite`: the set already on the tape is not another host's and not inside its retention period,
  unless --allow-other-host / --ignore-retention says so. An incomplete set (its catalog tape file is missing:
  the backup that wrote it did not finish) never blocks by retention, and a refusal marks it "incomplete"; the
  tape is only spaced to look for the catalog when a refusal is in question.
- `check_shrink`: the planned backup (members and bytes, per top-level directory) has not dropped by more than
  the threshold against the newest catalog of this host and root; a dying file system looks like deleted files.
  --force lets it through (after printing the comparison).
Every message names the device or the catalog and the flag that overrides.
"""

from __future__ import annotations

import datetime
import sys
from typing import IO, Callable, Optional

from rescue.errors import RefusedError
from rescue.progress import human_bytes
from rescue.tape.base import NoMediumError, Tape, UnsupportedError, WriteProtectedError
from rescue.tapeset.label import Label


def check_device(tape: Tape) -> None:
    """Loaded, online, writable: a clear error naming the device and the cause for each."""
    try:
        status = tape.status()
    except NoMediumError as e:
        raise NoMediumError(f"backup aborted: {e}") from None
    except UnsupportedError:
        return  # a stream has no status; writing will tell
    if not status.online or status.door_open:
        raise NoMediumError(
            f"backup aborted: {tape.name}: no tape loaded (drive offline); load a tape and retry"
        )
    if status.write_protected:
        raise WriteProtectedError(
            f"backup aborted: {tape.name}: the tape is write protected; slide its write-protect tab or load another"
        )
    if status.block_size and tape.kind == "st":
        # st(4): in fixed-block mode (mt setblk N) every write is cut into N-byte blocks and the set's records
        # would not survive as records; the format wants variable-block mode (setblk 0).
        tape.set_block_size(0)


def check_overwrite(
    existing: Optional[Label],
    host: str,
    today: datetime.date,
    device: str,
    *,
    ignore_retention: bool = False,
    allow_other_host: bool = False,
    incomplete: Callable[[], bool] = lambda: False,
    out: Optional[IO[str]] = None,
) -> None:
    """Refuse to overwrite another host's set or one inside its retention period; `incomplete()` says whether
    the set on the tape is unfinished (asked only when a refusal is in question)."""
    if existing is None:
        return
    # Short names: "web1" and "web1.example.com" are the same machine.
    if existing.host.split(".")[0] != host.split(".")[0] and not allow_other_host:
        state = ", an incomplete set" if incomplete() else ""
        raise RefusedError(
            f"{device}: refusing to overwrite the backup of host '{existing.host}' (written {existing.created}"
            f"{state}); load this host's tape or use --allow-other-host"
        )
    if existing.retention_until and not ignore_retention:
        try:
            until = datetime.date.fromisoformat(existing.retention_until[:10])
        except ValueError:
            until = None
        if until is not None and today < until:
            if incomplete():
                print(
                    f"rescue: {device}: the backup of {existing.created} on the tape is incomplete (no catalog: it "
                    f"did not finish); its retention until {until.isoformat()} does not hold",
                    file=out if out is not None else sys.stderr,
                )
                return
            raise RefusedError(
                f"{device}: refusing to overwrite the backup of {existing.created} (host {existing.host}): it is "
                f"kept until {until.isoformat()}; load another tape or use --ignore-retention"
            )


def _drop(old: int, new: int) -> float:
    return 100.0 * (old - new) / old if old > 0 else 0.0


def check_shrink(plan, previous: Optional[dict], threshold: float, force: bool, out: IO[str]) -> None:
    """The shrink guard: refuse when members or bytes dropped by more than the threshold."""
    if previous is None or threshold <= 0:
        return
    before = previous.get("plan") or {}
    old_files, old_bytes = int(before.get("files", 0)), int(before.get("bytes", 0))
    drop_files, drop_bytes = _drop(old_files, plan.files), _drop(old_bytes, plan.bytes)
    if max(drop_files, drop_bytes) <= threshold:
        return
    old_top = before.get("per_top") or {}
    rows = []
    for top in sorted(set(old_top) | set(plan.per_top)):
        of, ob = old_top.get(top, [0, 0])
        nf, nb = plan.per_top.get(top, [0, 0])
        if nf < of or nb < ob:
            rows.append((of - nf, ob - nb, top, of, nf, ob, nb))
    rows.sort(reverse=True)
    verdict = "going on (--force)" if force else "refusing"
    print(
        f"rescue: shrink guard: against the backup of {previous.get('created')} ({previous.get('_dir')}): "
        f"members {old_files} -> {plan.files} (-{drop_files:.0f}%), "
        f"bytes {human_bytes(old_bytes)} -> {human_bytes(plan.bytes)} (-{drop_bytes:.0f}%); {verdict}",
        file=out,
    )
    for _, _, top, of, nf, ob, nb in rows[:20]:
        print(
            f"rescue:   {top}: members {of} -> {nf}, bytes {human_bytes(ob)} -> {human_bytes(nb)}", file=out
        )
    if force:
        return
    where = ", ".join(f"{r[2]} (-{r[0]} members)" for r in rows[:3]) or "everywhere"
    raise RefusedError(
        f"refusing to write: the backup shrank by {max(drop_files, drop_bytes):.0f}% against the last one "
        f"(threshold {threshold:g}%), most in {where}; a dying file system looks like deleted "
        "files: check the disks, then use --force"
    )
