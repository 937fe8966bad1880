"""`rescue recover`: the stages layout -> restore -> bootloader -> finalize, planned in full, confirmed once.

Algorithm:
1. The layout: `--layout FILE` (a `layout capture` or a label), else the tape's label.  With `--resume` the state
   file (rescue.recover.state) holds it and the options of the interrupted run; a state with stages left and no
   `--resume` is refused (continue it, or remove the file to start over).
2. The plan, before anything is touched: the layout stage's commands per disk (rescue.layout.recreate with
   dry_run, which also says what it would refuse), the restore plan (files, bytes, record ranges, seeks, its time
   estimate; rescue.restore.job with dry_run into an empty directory, since the target does not exist yet), the
   bootloader commands (rescue.recover.bootloader, pure), what finalize checks, and a time estimate.
   `--dry-run` stops here.  Then one confirmation (typing the disk names) unless `--yes`.
3. The stages in order, each skipped when the state says it is done.  After each, the state is saved in the
   rescue system and in the target.  A stage that fails is recorded with its error, and the run stops with
   what to do next ("... then run: rescue recover --resume", exit 2).  `--resume` mounts what the layout stage
   made when it is no longer mounted (a rescue system booted again), continues the restore from its journal,
   and runs the stages left.
4. The summary: the time each stage took; the layout log and the recover log are in TARGET/var/log/rescue/.
Exit codes: 0 recovered; 1 recovered, but the restore named files it could not restore; 2 fatal or stopped.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from typing import Callable, Dict, Optional, TextIO

from rescue.errors import EXIT_OK, EXIT_PARTIAL, RefusedError, RescueError, UsageError
from rescue.layout import mounts as mountinfo
from rescue.layout import recreate, source
from rescue.layout.plan import RecreateOptions
from rescue.layout.tools import sysfs_identity
from rescue.progress import human_duration
from rescue.recover import bootloader, dbreload, finalize
from rescue.recover.chroot import Chroot, ChrootError, logged_runner, parse_blkid_export
from rescue.recover.rewrite import uuid_changes
from rescue.recover.state import DEFAULT_STATE_DIR, STAGES, STATE_NAME, State
from rescue.restore.job import RestoreOptions, run_restore
from rescue.restore.journal import read_journal
from rescue.tape import open_tape

SECONDS_PER_LAYOUT_STEP = 2.0
SECONDS_PER_GRUB_COMMAND = 30.0
SECONDS_INITRAMFS = 600.0  # update-initramfs under emulation; on hardware much less


@dataclasses.dataclass
class RecoverOptions:
    device: Optional[str] = None
    layout_file: Optional[str] = None
    maps: Dict[str, str] = dataclasses.field(default_factory=dict)
    grow: Optional[str] = None
    target: str = "/mnt/target"
    key_file: Optional[str] = None
    catalog: Optional[str] = None
    no_catalog: bool = False
    reload_db: bool = False
    reload_db_now: bool = False
    dry_run: bool = False
    yes: bool = False
    resume: bool = False
    state_dir: str = DEFAULT_STATE_DIR


class Tee:
    """Writes to the terminal (or stdout) and the recover log."""

    def __init__(self, *streams: TextIO):
        self.streams = streams

    def write(self, text: str) -> None:
        for s in self.streams:
            s.write(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


def _saved(o: RecoverOptions) -> dict:
    keys = (
        "device",
        "layout_file",
        "maps",
        "grow",
        "target",
        "key_file",
        "catalog",
        "no_catalog",
        "reload_db",
        "reload_db_now",
    )
    return {k: getattr(o, k) for k in keys}


class Recover:
    def __init__(
        self, options: RecoverOptions, out: Optional[TextIO] = None, ask: Callable[[str], str] = input
    ):
        if options.reload_db and options.reload_db_now:
            raise UsageError(
                "--reload-db (at first boot) and --reload-db-now (in the finalize stage) exclude each other"
            )
        self.o, self.ask = options, ask
        os.makedirs(options.state_dir, mode=0o700, exist_ok=True)
        self.log_path = os.path.join(options.state_dir, "recover.log")
        self.log = open(self.log_path, "a", encoding="utf-8")
        self.out = Tee(out or sys.stdout, self.log)
        self.layout_log = os.path.join(options.state_dir, "layout.log")
        self.state = State(os.path.join(options.state_dir, STATE_NAME))
        self.exit_code = EXIT_OK

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def close(self) -> None:
        self.log.close()

    # the state -----------------------------------------------------------------------------------------
    def load_state(self) -> None:
        found = State.find(self.o.state_dir, self.o.target)
        if self.o.resume:
            if found is None:
                raise RescueError(
                    f"no recover state in {self.state.path} or {self.o.target}/var/lib/rescue/recover.json: "
                    "nothing to resume; run rescue recover without --resume"
                )
            self.state = found
            for key, value in found.data.get("options", {}).items():
                setattr(self.o, key, value)
        elif found is not None and found.next_stage() and found.done("layout") and not self.o.dry_run:
            raise RefusedError(
                f"a recover stopped before its {found.next_stage()} stage ({found.path}): continue it with "
                f"rescue recover --resume, or remove {found.path} to start over"
            )
        else:
            self.state.data["options"] = _saved(self.o)

    def layout(self) -> dict:
        if self.state.layout is not None:
            return self.state.layout
        if self.o.layout_file:
            layout = source.load_layout_file(self.o.layout_file)
        else:
            layout, _ = source.from_tape(self._device(), want_usage=False)
        self.state.data["layout"] = layout
        return layout

    def _device(self) -> str:
        from rescue import config

        return config.resolve_device(self.o.device, config.load(None))

    def recreate_options(self, dry_run: bool) -> RecreateOptions:
        return RecreateOptions(
            maps=dict(self.o.maps),
            grow=self.o.grow,
            target=self.o.target,
            key_file=self.o.key_file,
            workdir=os.path.join(self.o.state_dir, "layout"),
            dry_run=dry_run,
            yes=True,
            log_path=self.layout_log,
        )

    # the plan ------------------------------------------------------------------------------------------
    def show_plan(self, layout: dict) -> None:
        estimate = 0.0
        self.say("rescue recover: layout -> restore -> bootloader -> finalize")
        if self.state.done("layout"):
            self.say("== layout: done")
            device_map, changed = self.state.device_map, self.state.changed
        else:
            self.say("== layout")
            result = recreate.recreate(layout, self.recreate_options(dry_run=True), out=self.out)
            if result.refusals and not self.o.dry_run:
                raise RefusedError(
                    "layout recreate refused, nothing was touched: " + "; ".join(result.refusals)
                )
            device_map, changed = result.device_map, result.changed
            self.disks = result.plan.disks
            estimate += SECONDS_PER_LAYOUT_STEP * len(result.plan.steps)
        if self.state.done("restore"):
            self.say("== restore: done")
        else:
            self.say("== restore")
            estimate += self.restore_plan()
        if not self.state.done("bootloader"):
            plan = self.boot_plan(layout, device_map, changed, {})
            self.say(
                "== bootloader" + ("" if plan.nothing else " (in a chroot of the target, with its own tools)")
            )
            for line in plan.lines():
                self.say(f"  {line}")
            estimate += SECONDS_PER_GRUB_COMMAND * len(plan.commands)
            estimate += SECONDS_INITRAMFS if plan.initramfs else 0
            for why in plan.initramfs:
                self.say(f"  initramfs rebuilt: {why}")
        self.say("== finalize")
        renamed = {o: n for o, n in device_map.items() if o != n}
        self.say(
            "  fstab, crypttab, mdadm.conf, resume: "
            + (", ".join(f"{o} -> {n}" for o, n in renamed.items()) if renamed else "UUIDs and names kept")
        )
        self.say(f"  logs copied to {self.o.target}/{finalize.LOG_DIR}/")
        if self.o.reload_db:
            self.say("  databases reloaded at first boot (--reload-db)")
        if self.o.reload_db_now:
            self.say(
                "  databases reloaded now, by the target's own MariaDB server in a chroot (--reload-db-now)"
            )
        self.say(f"estimated time: {human_duration(estimate)}")

    def restore_plan(self) -> float:
        """The restore's plan, by a dry run into an empty directory (the target is made by the layout stage)."""
        with tempfile.TemporaryDirectory(prefix="rescue-recover-plan-") as empty:
            opts = self.restore_options(empty, dry_run=True)
            with open_tape(self._device()) as tape:
                result = run_restore(tape, opts)
            tape_plan = result.plan
        return tape_plan.estimated_seconds if tape_plan is not None else 0.0

    def restore_options(self, target: str, dry_run: bool) -> RestoreOptions:
        return RestoreOptions(
            target=target,
            catalog=self.o.catalog,
            no_catalog=self.o.no_catalog,
            dry_run=dry_run,
            yes=True,
            resume=not dry_run and read_journal(target) is not None,
            reload_db=self.o.reload_db,
            advice=False,  # the bootloader and finalize stages follow: no advice to run them by hand
            messages=_NoSpace(self.out) if dry_run else self.out,
        )

    def boot_plan(self, layout, device_map, changed, uuids) -> bootloader.BootPlan:
        efivars = "/sys/firmware/efi/efivars"
        return bootloader.plan_bootloader(
            layout,
            device_map,
            changed,
            uuids,
            uefi_here=os.path.isdir("/sys/firmware/efi"),
            efivars_writable=os.path.isdir(efivars) and os.access(efivars, os.W_OK),
            stable_names=bootloader.stable_names(layout, device_map, _by_id_names(), _serial_here),
        )

    def confirm(self) -> None:
        disks = getattr(self, "disks", None)
        if self.o.yes or not disks:
            return
        if not sys.stdin.isatty():
            raise RefusedError("rescue recover wipes disks: confirm on a terminal or give --yes")
        want = " ".join(disks)
        got = self.ask(
            f"Everything on {want} will be destroyed. Type the disk names to recover onto them ({want}): "
        )
        if got.split() != disks:
            raise RefusedError(
                f"not confirmed (typed {got.strip()!r}, expected {want!r}); nothing was touched"
            )

    # the stages ----------------------------------------------------------------------------------------
    def run(self) -> int:
        self.load_state()
        layout = self.layout()
        self.show_plan(layout)
        if self.o.dry_run:
            self.say("dry run: nothing was touched")
            return EXIT_OK
        if not self.state.done("layout"):
            self.confirm()  # also on --resume: a layout stage that did not finish wipes the disks again
        for stage in STAGES:
            if self.state.done(stage):
                continue
            self.run_stage(stage, layout)
        self.say("rescue recover: done; time per stage:")
        for line in finalize.summary(self.state.seconds()):
            self.say(line)
        return self.exit_code

    def run_stage(self, stage: str, layout: dict) -> None:
        self.say(f"== {stage}")
        started = time.monotonic()
        try:
            getattr(self, f"stage_{stage}")(layout)
        except RescueError as e:
            self.state.mark(stage, False, time.monotonic() - started, str(e))
            self.state.save(self.o.target if self.state.done("layout") else None)
            self.say(f"rescue recover stopped in the {stage} stage: {e}")
            raise RescueError(f"{stage} stage: {_next_step(str(e))}") from None
        self.state.mark(stage, True, time.monotonic() - started)
        self.state.save(self.o.target)
        self.say(f"{stage}: done in {human_duration(time.monotonic() - started)}")

    def stage_layout(self, layout: dict) -> None:
        result = recreate.recreate(layout, self.recreate_options(dry_run=False), out=self.out)
        self.state.data.update(
            device_map=result.device_map, mounts=result.mounts, changed=result.changed, layout=layout
        )

    def ensure_mounted(self) -> None:
        """Mount what the layout stage made when it is not mounted (the rescue system was booted again)."""
        mounted = {m["mount_point"] for m in mountinfo.read_mounts()}
        for m in self.state.mounts:
            if m["target"] in mounted:
                continue
            os.makedirs(m["target"], exist_ok=True)
            argv = ["mount", "-t", m["fstype"]] + (["-o", m["options"]] if m.get("options") else [])
            code, text = logged_runner(self.log)(argv + [m["device"], m["target"]])
            if code != 0:
                raise RescueError(
                    f"{' '.join(argv)} {m['device']} {m['target']}: exit {code}: {text.strip()}"
                )
            self.say(f"mounted {m['device']} on {m['target']}")

    def stage_restore(self, layout: dict) -> None:
        self.ensure_mounted()
        with open_tape(self._device()) as tape:
            result = run_restore(tape, self.restore_options(self.o.target, dry_run=False))
        if result.truncated:
            # An incomplete system must not get a bootloader: stop, the journal lets --resume continue.
            raise RescueError(
                f"restore: {result.truncated}; with a complete copy of the tape run: rescue recover --resume"
            )
        if result.exit_code == EXIT_PARTIAL:
            self.exit_code = EXIT_PARTIAL
            self.say("restore finished with problems (listed above); going on with the bootloader")
        elif result.exit_code != EXIT_OK:
            raise RescueError("restore: " + "; ".join(result.errors or result.not_found or ["failed"]))

    def stage_bootloader(self, layout: dict) -> None:
        self.ensure_mounted()
        blkid = _blkid_export(self.log)
        uuids = uuid_changes(layout, self.state.device_map, parse_blkid_export(blkid))
        plan = self.boot_plan(layout, self.state.device_map, self.state.changed, uuids)
        done = bootloader.install(
            self.o.target, plan, logged_runner(self.log), blkid, self.log_path, self.out
        )
        for line in done:
            self.log.write(f"bootloader: {line}\n")
        if plan.nothing:
            self.say(f"bootloader: {plan.nothing}")

    def stage_finalize(self, layout: dict) -> None:
        self.ensure_mounted()
        renamed = {o: n for o, n in self.state.device_map.items() if o != n}
        uuids = uuid_changes(layout, self.state.device_map, parse_blkid_export(_blkid_export(self.log)))
        for line in finalize.apply_files(self.o.target, finalize.plan_files(self.o.target, uuids, renamed)):
            self.say(f"finalize: {line}")
        if self.o.reload_db_now:
            for line in self.reload_db_now():
                self.say(f"finalize: {line}")
        self.log.flush()
        for line in finalize.copy_logs(self.o.target, [self.layout_log, self.log_path]):
            self.say(f"finalize: {line}")

    def reload_db_now(self):
        """--reload-db-now: the dumps loaded by the target's own server, in a chroot made for it."""
        try:
            with Chroot(self.o.target, logged_runner(self.log)) as ch:
                return dbreload.reload_now(ch, self.log)
        except ChrootError as e:
            raise dbreload.DbReloadError(f"database reload: could not prepare the chroot: {e}") from None


def _next_step(error: str) -> str:
    return error if "--resume" in error else f"{error}; fix it, then run: rescue recover --resume"


def _blkid_export(log: TextIO) -> str:
    code, text = logged_runner(log)(["blkid", "-o", "export"])
    return text if code in (0, 2) else ""  # 2: no devices with a signature


def _by_id_names() -> Dict[str, str]:
    """Disk path -> its /dev/disk/by-id name (the stable name debconf should hold), when udev made them."""
    top, found = "/dev/disk/by-id", {}
    for name in sorted(os.listdir(top)) if os.path.isdir(top) else []:
        if "-part" not in name and not name.startswith("wwn-"):
            found.setdefault(os.path.realpath(os.path.join(top, name)), os.path.join(top, name))
    return found


def _serial_here(disk: str) -> Optional[str]:
    return sysfs_identity(os.path.basename(os.path.realpath(disk))).get("serial")


class _NoSpace:
    """The restore plan's messages without the free-space lines of the stand-in empty directory."""

    def __init__(self, out):
        self.out, self.buf = out, ""

    def write(self, text: str) -> None:
        self.buf += text
        *lines, self.buf = self.buf.split("\n")
        for line in lines:
            if " free" not in line and "rescue-recover-plan-" not in line:
                self.out.write(line + "\n")

    def flush(self) -> None:
        self.out.flush()


def run_recover(
    options: RecoverOptions, out: Optional[TextIO] = None, ask: Callable[[str], str] = input
) -> int:
    job = Recover(options, out, ask)
    try:
        return job.run()
    finally:
        job.close()


def run_one(stage: str, options: RecoverOptions, out: Optional[TextIO] = None) -> int:
    """`rescue bootloader install` / `rescue finalize`: one stage, on the state of a recover or a layout file."""
    job = Recover(options, out)
    try:
        found = State.find(options.state_dir, options.target)
        if found is not None:
            job.state = found
        elif options.layout_file:
            layout = source.load_layout_file(options.layout_file)
            names = {d["path"]: d["path"] for d in layout.get("disks", [])}
            job.state.data.update(layout=layout, device_map={**names, **options.maps}, mounts=[], changed=[])
        else:
            raise RescueError(
                f"no recover state in {job.state.path} or {options.target}/var/lib/rescue/recover.json: give "
                "--from LAYOUT.json (and --map OLD=NEW for disks with other names)"
            )
        job.run_stage(stage, job.state.layout)
        if stage == "finalize" and options.reload_db:
            from rescue.restore.finalize import install_reload_unit

            for line in install_reload_unit(options.target):
                job.say(line)
        return EXIT_OK
    finally:
        job.close()
