"""Recreate: run a plan on this machine's disks, safely.  The I/O half of `plan` (which is pure).

Contract: `recreate(layout, options, out=stdout, ask=input) -> RecreateResult`.
1. The disks here (`disks_here()`: lsblk -J -b -O and /dev/disk/by-id) and the plan (`plan.plan_recreate`),
   printed in full: every destructive command in order, per disk.
2. Refusals, for every disk the plan would wipe (and its partitions): mounted; held by an md array or a dm
   device (an active PV's LV, an open LUKS mapping); used as swap; not openable with O_EXCL.  With `dry_run`
   the plan and the refusals are the result and nothing runs.  A refusal raises RefusedError (exit 2).
3. A typed confirmation naming the disks (or `yes`); the LUKS passphrase from the terminal (twice) unless
   `key_file`.
4. Each step: its command and output appended to the log (never the passphrase); `udevadm settle` between
   stages when udevadm exists; its check (the table by `sfdisk --json` and lsblk, the identity by `blkid -p`,
   the md UUID, the LV UUIDs, the mount) against the layout, stopping with RecreateError naming the step and the
   log on any difference.  A step naming a whole disk the plan does not wipe is refused before it runs.
5. The mount table under the target, printed.  The result names the mounts made, the device map old -> new,
   what differs from the layout (sizes, UUIDs btrfs cannot keep) and the log, for `rescue recover` to copy into
   the target after the restore.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import getpass
import os
import subprocess
import sys
from typing import Callable, Dict, List, Optional, TextIO

from rescue.errors import RefusedError, RescueError
from rescue.layout import mounts as mountinfo
from rescue.layout import parse_disks
from rescue.layout.checks import check_step
from rescue.layout.plan import Plan, RecreateOptions, Step, plan_recreate
from rescue.layout.tools import fill_identity, have, probe, tool_env


class RecreateError(RescueError):
    """A step failed or its result differs from the layout; the message names the step and the log."""


@dataclasses.dataclass
class RecreateResult:
    plan: Plan
    done: bool
    refusals: List[str]
    mounts: List[dict]
    device_map: Dict[str, str]
    changed: List[str]
    log_path: Optional[str]


def disks_here() -> List[dict]:
    text = probe(["lsblk", "-J", "-b", "-O"]).text
    if text is None:
        raise RecreateError("lsblk -J failed: cannot see the disks here")
    devices = parse_disks.parse_lsblk(text)
    links: Dict[str, List[str]] = {}
    by_id = "/dev/disk/by-id"
    for name in os.listdir(by_id) if os.path.isdir(by_id) else []:
        links.setdefault(os.path.realpath(os.path.join(by_id, name)), []).append(name)
    tops = [
        d
        for d in devices
        if not d.get("pkname") and d.get("type") in ("disk", "loop") and int(d.get("size") or 0)
    ]
    records = [parse_disks.disk_record(d, links.get(d["path"], []), []) for d in tops]
    for rec in records:
        fill_identity(rec)
    return records


def _stack_of(disk: str, devices: List[dict]) -> List[dict]:
    by_path = {d["path"]: d for d in devices}
    return [by_path[disk], *parse_disks.descendants(devices, disk)] if disk in by_path else []


def refusals(disks: List[str]) -> List[str]:
    """Why each of `disks` must not be wiped now (empty: all free)."""
    text = probe(["lsblk", "-J", "-b", "-O"]).text
    devices = parse_disks.parse_lsblk(text) if text else []
    swaps = {line.split()[0] for line in open("/proc/swaps").read().splitlines()[1:] if line.split()}
    mounted = {
        os.path.realpath(m["source"]) for m in mountinfo.read_mounts() if m["source"].startswith("/dev/")
    }
    found = []
    for disk in disks:
        kname = os.path.basename(os.path.realpath(disk))
        sysdir = f"/sys/class/block/{kname}"
        names = (
            [kname] + sorted(n for n in os.listdir(sysdir) if n.startswith(kname))
            if os.path.isdir(sysdir)
            else [kname]
        )
        for name in names:
            path = f"/dev/{name}"
            if path in mounted or any(d["mountpoints"] for d in _stack_of(path, devices)[:1]):
                found.append(f"{path} is mounted (umount it first)")
            holders = (
                os.listdir(f"/sys/class/block/{name}/holders")
                if os.path.isdir(f"/sys/class/block/{name}/holders")
                else []
            )
            if holders:
                found.append(
                    f"{path} is in use by {', '.join(holders)} (an md array or a dm device: LVM, LUKS); stop it first"
                )
            if path in swaps:
                found.append(f"{path} is active swap (swapoff {path})")
        try:
            os.close(os.open(disk, os.O_RDONLY | os.O_EXCL))
        except OSError as e:
            if e.errno == errno.EBUSY:
                found.append(f"{disk} cannot be opened exclusively (O_EXCL): something holds it")
            else:
                found.append(f"{disk}: {e.strerror}")
    return sorted(set(found), key=found.index)


def print_plan(plan: Plan, out: TextIO) -> None:
    out.write(f"layout recreate: will wipe {' '.join(plan.disks)}\n")
    for line in plan.changes:
        out.write(f"  note: {line}\n")
    for i, step in enumerate(plan.steps, 1):
        out.write(f"  {i:3} [{step.stage}] {step.shown()}\n")


def _confirm(plan: Plan, options: RecreateOptions, ask: Callable[[str], str]) -> None:
    if options.yes:
        return
    if not sys.stdin.isatty():
        raise RefusedError("layout recreate wipes disks: confirm on a terminal or give --yes")
    want = " ".join(plan.disks)
    got = ask(f"Everything on {want} will be destroyed. Type the disk names to go on ({want}): ")
    if got.split() != plan.disks:
        raise RefusedError(f"not confirmed (typed {got.strip()!r}, expected {want!r}); nothing was touched")


def _passphrase(plan: Plan) -> Optional[str]:
    if not any(s.secret_stdin for s in plan.steps):
        return None
    if not sys.stdin.isatty():
        raise RefusedError("LUKS needs a passphrase: give --key-file FILE or run on a terminal")
    first = getpass.getpass("LUKS passphrase for the new devices: ")
    if getpass.getpass("again: ") != first or not first:
        raise RefusedError("the passphrases differ (or are empty); nothing was touched")
    return first


class Runner:
    """Runs steps, logs them, checks them."""

    def __init__(
        self,
        plan: Plan,
        options: RecreateOptions,
        log: TextIO,
        passphrase: Optional[str],
        whole_disks: List[str],
    ):
        self.plan, self.options, self.log, self.passphrase = plan, options, log, passphrase
        self.forbidden = set(whole_disks) - set(plan.disks)

    def run(
        self, argv: List[str], stdin: Optional[str] = None, secret: bool = False
    ) -> subprocess.CompletedProcess:
        self.log.write(f"$ {' '.join(argv)}\n")
        if stdin and not secret:
            self.log.write(stdin)
        data = (self.passphrase if secret else stdin) or ""
        proc = subprocess.run(argv, input=data.encode(), capture_output=True, env=tool_env(), check=False)
        out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        self.log.write(out + f"[exit {proc.returncode}]\n")
        self.log.flush()
        return proc

    def step(self, n: int, step: Step) -> None:
        bad = [d for d in step.devices if os.path.realpath(d) in self.forbidden]
        if bad:
            raise RefusedError(f"step {n} would write to {', '.join(bad)}, a disk not in the plan; stopped")
        for path, text in step.writes.items():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(text)
        proc = self.run(step.argv, step.stdin, step.secret_stdin)
        if proc.returncode != 0:
            why = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()
            raise RecreateError(
                f"step {n} [{step.stage}] {' '.join(step.argv)}: exit {proc.returncode}: "
                f"{why[-1] if why else 'no message'} (log: {self.options.log_path})"
            )
        if step.check:
            problem = check_step(step.check, self.run)
            if problem:
                raise RecreateError(
                    f"step {n} [{step.stage}] {' '.join(step.argv)}: {problem} (log: {self.options.log_path})"
                )

    def settle(self) -> None:
        if have("udevadm"):
            self.run(["udevadm", "settle", "--timeout=30"])


def recreate(
    layout: dict, options: RecreateOptions, out: TextIO = sys.stdout, ask: Callable[[str], str] = input
) -> RecreateResult:
    here = disks_here()
    plan = plan_recreate(layout, here, options)
    print_plan(plan, out)
    refused = refusals(plan.disks)
    result = RecreateResult(plan, False, refused, [], plan.device_map, plan.changes, options.log_path)
    if options.dry_run:
        for r in refused:
            out.write(f"  refused: {r}\n")
        return result
    if refused:
        raise RefusedError("layout recreate refused, nothing was touched: " + "; ".join(refused))
    _confirm(plan, options, ask)
    passphrase = _passphrase(plan)
    options.log_path = options.log_path or os.path.join(options.workdir, "recreate.log")
    os.makedirs(os.path.dirname(os.path.abspath(options.log_path)), exist_ok=True)
    result.log_path = options.log_path
    with open(options.log_path, "a", encoding="utf-8") as log:
        log.write(f"# rescue layout recreate {datetime.datetime.now(datetime.timezone.utc).isoformat()}\n")
        runner = Runner(plan, options, log, passphrase, [d["path"] for d in here])
        stage = None
        for n, step in enumerate(plan.steps, 1):
            if stage is not None and step.stage != stage:
                runner.settle()
            stage = step.stage
            out.write(f"[{n}/{len(plan.steps)}] {step.stage}: {' '.join(step.argv)}\n")
            out.flush()
            runner.step(n, step)
    result.done, result.mounts = True, plan.mounts
    out.write("mounted:\n")
    for m in plan.mounts:
        out.write(
            f"  {m['device']:28} {m['target']:36} {m['fstype']}{' ' + m['options'] if m['options'] else ''}\n"
        )
    return result
