"""The restore job: everything asked for, in one forward pass over the tape, checked and resumable.

Algorithm:
1. Read the label (tape file 0). A rescue tape names its host, date, record size and the tape files of archive
   and catalog; a plain GNU tar tape has no label and its archive is tape file 0.
2. Find a catalog: `--catalog FILE`, else tape file 2 of a rescue tape. A catalog that belongs to another
   backup (its backup id or record size differ from the label's) is refused before anything is written.
3. Plan (rescue.restore.plan): the selected members in tape order, grouped into runs with a seek between runs whose gap
   exceeds the threshold. Print the plan; `--dry-run` stops here, having written nothing anywhere.
4. Check the target: it must exist; a non-empty one needs `--yes` (or `--resume`), `/` needs `--yes` or a typed
   confirmation on a terminal.
5. Rewind once, space to the archive file, and follow the plan: at the start of a run that the plan reaches by
   seeking, `ArchiveReader.seek_record()` positions the tape at the member's first header (MTSEEK on a drive);
   inside a run unwanted members are read through. The member found at a planned position must be the one the
   catalog names there, else the catalog does not describe this tape: the restore stops and offers the
   streaming pass (`--no-catalog`). Each regular file's SHA-256 is checked against the catalog as it is
   written; a mismatch is a per-file warning.
6. A read error loses the members in the bad record: they are named, and the tape seeks on to the next wanted
   member the catalog places beyond it.
7. Without a catalog: one streaming pass over the archive extracting what the selection matches; nothing is
   sought over.
8. Every completed member goes to the journal (rescue.restore.journal) in the target; `--resume` continues after the
   last completed member (seeking there when the tape can seek) and ends with the same tree.
9. After the files: the boot steps hook and the database reload (rescue.restore.finalize); the journal is removed.

Exit codes: 0 all restored and verified; 1 finished with per-file problems (listed); 2 fatal (RescueError).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sys
import tempfile
import time
from typing import IO, Callable, Iterator, List, Optional

from rescue.archive.extract import Extractor
from rescue.archive.member import DIR, FILE, Member
from rescue.archive.reader import ArchiveReader, DamagedMemberError
from rescue.archive.record_reader import BadRecordError
from rescue.errors import EXIT_OK, EXIT_PARTIAL, RefusedError, RescueError, UsageError
from rescue.pathmatch import DEFAULT_EXCLUDES, PathMatcher
from rescue.progress import Progress, human_bytes
from rescue.restore import finalize
from rescue.restore import journal as journal_mod
from rescue.restore.plan import (
    DISK_READ_RATE,
    DISK_SEEK_SECONDS,
    TAPE_READ_RATE,
    TAPE_SEEK_SECONDS,
    Plan,
    Selection,
    plan_restore,
)
from rescue.tape.base import EndOfDataError, MediumError, Tape
from rescue.tapeset.catalog import open_catalog
from rescue.tapeset.catalog_tape import CATALOG_NAME, read_catalog
from rescue.tapeset.label import Label, read_label
from rescue.tapeset.smalltar import VolumeError

DEFAULT_TARGET = "/mnt/target"
# Entries a freshly made filesystem already has; they do not make a target "not empty".
IGNORED_IN_TARGET = ("lost+found", journal_mod.NAME)
CONFIRM_WORD = "overwrite"
TMP_PREFIX = ".rescue-tmp."  # rescue.archive.extract writes a file as .rescue-tmp.PID.N, then renames it


def catalog_path(path: str) -> str:
    """`--catalog` names a catalog.jsonl.gz, or the directory holding one (what backup keeps per set)."""
    return os.path.join(path, CATALOG_NAME) if os.path.isdir(path) else path


class CatalogMismatchError(RescueError):
    """The catalog does not describe the tape in the drive."""


@dataclasses.dataclass
class RestoreOptions:
    paths: List[str] = dataclasses.field(default_factory=list)
    target: str = DEFAULT_TARGET
    excludes: List[str] = dataclasses.field(default_factory=list)
    default_excludes: bool = True
    catalog: Optional[str] = None  # a catalog.jsonl.gz to use instead of the tape's
    no_catalog: bool = False  # one streaming pass, no seeking
    dry_run: bool = False
    resume: bool = False
    seek_threshold: Optional[int] = None  # records; None: rescue.restore.plan's default
    yes: bool = False
    reload_db: bool = False
    numeric_owner: bool = True
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
    mode: str = "catalog"  # "catalog" (planned, seeking) or "stream"
    dry_run: bool = False
    plan: Optional[Plan] = None
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
            "mode": self.mode,
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
        }
        if self.plan is not None:
            d["plan"] = self.plan.to_json()
        return d


class _Job:
    """State of one restore run; `run_restore` is the public entry."""

    def __init__(self, tape: Tape, options: RestoreOptions):
        self.tape = tape
        self.o = options
        self.out = options.messages if options.messages is not None else sys.stderr
        self.result = RestoreResult(dry_run=options.dry_run)
        self.matcher = PathMatcher(
            options.paths,
            excludes=options.excludes,
            default_excludes=DEFAULT_EXCLUDES if options.default_excludes else (),
        )
        self.target = os.path.abspath(options.target)
        self.label: Optional[Label] = None
        self.progress: Optional[Progress] = None
        self.problems = 0  # per-file problems the extractor reported

    # messages ----------------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        self.result.warnings.append(text)
        self.say(f"rescue: warning: {text}")

    def on_reader_warning(self, where: str, message: str) -> None:
        """The reader's notes (unknown keywords, damaged stretches); lost members are counted where found."""
        self.warn(f"{where}: {message}")

    def on_extract_warning(self, where: str, message: str) -> None:
        """A file that could not be restored as archived: a per-file problem (exit 1)."""
        self.problems += 1
        self.warn(f"{where}: {message}")

    # set-up ------------------------------------------------------------------------------------------------
    def show_label(self) -> None:
        label = self.label
        self.say(f"tape {self.tape.name}: rescue backup of host {label.host}, written {label.created}")
        self.say(
            f"  backup id {label.backup_id}, record size {label.record_size} bytes, "
            f"archive in tape file {label.archive_file}, catalog in tape file {label.catalog_file}"
        )
        if label.excludes:
            self.say("  excluded at backup time: " + " ".join(label.excludes))
        here = socket.gethostname()
        if label.host and here and label.host.split(".")[0] != here.split(".")[0]:
            self.warn(
                f"{self.tape.name}: this tape is from host {label.host}, not {here}; check it is the right one"
            )

    def check_target(self) -> None:
        target = self.target
        if not os.path.isdir(target):
            raise UsageError(
                f"{target}: target directory does not exist; mount the new filesystem there or create it"
            )
        if target == "/" and not self.o.yes:
            self.confirm_root()
        if self.o.resume:
            return
        with os.scandir(target) as it:
            others = [e.name for e in it if e.name not in IGNORED_IN_TARGET]
        if others and not self.o.yes and target != "/":
            raise RefusedError(
                f"{target}: target is not empty ({len(others)} entries, e.g. {sorted(others)[0]}); "
                "restore over it with --yes, or continue an interrupted restore with --resume"
            )

    def confirm_root(self) -> None:
        prompt = f"restore over the running system in / (files there are overwritten)? type '{CONFIRM_WORD}' to go on: "
        if self.o.confirm is not None:
            answer = self.o.confirm(prompt)
        elif sys.stdin.isatty() and self.out.isatty():
            self.out.write(prompt)
            self.out.flush()
            answer = sys.stdin.readline()
        else:
            raise RefusedError("-C /: restoring over the running system needs --yes")
        if answer.strip() != CONFIRM_WORD:
            raise RefusedError("-C /: not confirmed; nothing restored")

    def open_journal(self, header: dict):
        state = journal_mod.read_journal(self.target)
        if self.o.resume:
            if state is None:
                raise UsageError(
                    f"{self.target}: no restore journal ({journal_mod.NAME}) to resume from; run without --resume"
                )
            if state.header.get("backup_id") != header.get("backup_id"):
                raise RefusedError(
                    f"{self.target}: the journal is from backup {state.header.get('backup_id')}, the tape is "
                    f"{header.get('backup_id')}; remove {journal_mod.NAME} or use the right tape"
                )
            self.say(f"resuming after {state.count} completed members")
            return state, journal_mod.Journal(self.target, header, append=True)
        return None, journal_mod.Journal(self.target, header)

    def start_pass(self, backup_id: Optional[str], archive_file: int):
        """Journal, then one rewind and a space to the archive file; counters start here."""
        state, journal = self.open_journal({"backup_id": backup_id, "archive_file": archive_file})
        if state is not None:
            # Before extracting anything: removing a file later would change its directory's mtime.
            self.remove_stale_temporaries(os.path.realpath(self.target))
        self.tape.rewind()
        if archive_file:
            self.tape.space_files(archive_file)
        self._counters = (self.tape.records_read, self.tape.seeks)
        extractor = Extractor(
            self.target,
            numeric_owner=self.o.numeric_owner,
            overwrite=True,
            on_warning=self.on_extract_warning,
        )
        reader = ArchiveReader(self.tape, on_warning=self.on_reader_warning)
        self._reader, self._extractor = reader, extractor
        self._finished = False
        return state, journal, extractor, reader

    def end_pass(self, journal) -> None:
        journal.close()
        if not self._finished:
            # Stopped by a fatal error (drive offline, truncated archive, catalog mismatch): still give the
            # directories restored so far their modes and mtimes; the journal stays for --resume.
            with contextlib.suppress(OSError, RescueError):
                self._extractor.finish()
        self._extractor.close()  # its fd of the target root would keep the filesystem busy (umount)
        records, seeks = self._counters
        # What the device itself counted (the SIMH backend and st keep these), else the reader's count.
        self.result.records_read = self.tape.records_read - records or self._reader.records_read
        self.result.seeks = self.tape.seeks - seeks
        if self.progress is not None:
            self.progress.done()

    # extraction --------------------------------------------------------------------------------------------
    def extract(self, extractor: Extractor, entry, expected: Optional[Member]) -> bool:
        member = entry.member
        sha = expected.sha256 if expected is not None and member.type == FILE else None
        ok = extractor.extract(entry, expected_sha256=sha)
        size = member.size if member.type == FILE else 0
        if ok:
            self.result.files += 1
            self.result.bytes += size
        if self.progress is not None:
            self.progress.update(size, 1)
        return ok

    def finish_tree(self, extractor: Extractor, state) -> None:
        extractor.finish()
        self._finished = True
        if state is None:
            return
        real_root = os.path.realpath(self.target)
        now = time.time_ns()
        # Directories completed by the interrupted run: it died before setting their mode and mtime (a
        # directory's xattrs, e.g. a default ACL, were set then too and are not in the journal: GNU tar's
        # delayed_set_stat has the same window).
        for path, mode, mtime_ns in state.dirs:
            full = os.path.join(real_root, path)
            with contextlib.suppress(OSError):
                if os.path.realpath(full) == full and os.path.isdir(full):
                    os.chmod(full, mode)
                    os.utime(full, ns=(now, mtime_ns), follow_symlinks=False)

    def remove_stale_temporaries(self, root: str) -> None:
        """The file an interrupted run was writing sits under a temporary name (the extractor renames a file
        into place only when complete); remove such leftovers of other processes."""
        mine = f"{TMP_PREFIX}{os.getpid()}."
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if name.startswith(TMP_PREFIX) and not name.startswith(mine):
                    rest = name[len(TMP_PREFIX) :].split(".")
                    if len(rest) == 2 and all(p.isdigit() for p in rest):
                        with contextlib.suppress(OSError):
                            os.unlink(os.path.join(dirpath, name))

    def post_steps(self) -> None:
        for line in finalize.boot_steps(self.target, self.label):
            self.say(line)
        if self.o.reload_db:
            for line in finalize.install_reload_unit(self.target, self.label):
                self.say(line)
        else:
            for line in finalize.reload_db_advice(self.label):
                self.say(line)

    # with a catalog ----------------------------------------------------------------------------------------
    def run_catalog(self, catalog_path: str, archive_file: int) -> None:
        header, _ = open_catalog(catalog_path)
        record_size = header.get("record_size") or (self.label.record_size if self.label else 0)
        if self.label is not None:
            if header.get("backup_id") and header.get("backup_id") != self.label.backup_id:
                raise CatalogMismatchError(
                    f"{catalog_path}: catalog of backup {header.get('backup_id')}, but the tape holds backup "
                    f"{self.label.backup_id}; use the tape's own catalog or restore with --no-catalog"
                )
            if record_size != self.label.record_size:
                raise CatalogMismatchError(
                    f"{catalog_path}: catalog record size {record_size} differs from the tape's "
                    f"{self.label.record_size}; restore with --no-catalog"
                )

        def members() -> Iterator[Member]:
            return open_catalog(catalog_path)[1]

        disk = self.tape.kind != "st"
        selection, plan = plan_restore(
            members,
            self.matcher,
            record_size,
            self.o.seek_threshold,
            read_rate=DISK_READ_RATE if disk else TAPE_READ_RATE,
            seek_seconds=DISK_SEEK_SECONDS if disk else TAPE_SEEK_SECONDS,
        )
        self.result.plan = plan
        for line in plan.describe(archive_file):
            self.say(line)
        if plan.files == 0:
            asked = " ".join(self.matcher.includes) or "everything"
            raise UsageError(
                f"{self.tape.name}: nothing in the catalog matches {asked} (after excludes); "
                "check the names with 'rescue list'"
            )
        if self.o.dry_run:
            return
        self.check_target()
        state, journal, extractor, reader = self.start_pass(header.get("backup_id"), archive_file)
        self.progress = Progress("restore", total_bytes=plan.bytes, total_files=plan.files, stream=self.out)
        try:
            self.follow_plan(reader, extractor, journal, members(), selection, plan, state)
            self.finish_tree(extractor, state)
        finally:
            self.end_pass(journal)
        self.post_steps()
        journal.remove()

    def follow_plan(
        self, reader, extractor, journal, members, selection: Selection, plan: Plan, state
    ) -> None:
        """Walk the wanted catalog members in tape order, seeking where the plan says (see the module docstring)."""
        seek_at = {(r.first_record, r.first_offset) for r in plan.runs if r.seek}
        self._entries: Optional[Iterator] = None
        self._pending = None  # an entry read past a lost member, still to be matched
        must_seek = state is not None and state.last is not None  # resume: straight to the next member
        for m in members:
            if not selection.wants(m):
                continue
            pos = (m.record, m.offset)
            if state is not None and state.done(*pos):
                continue
            if must_seek or pos in seek_at:
                self._pending = None
                try:
                    reader.seek_record(m.record, m.offset)
                except BadRecordError as e:
                    self.lose(m, str(e))
                    must_seek = True
                    continue
                self._entries = iter(reader)
                must_seek = False
            elif self._entries is None:
                self._entries = iter(reader)
            entry = self.find(reader, m)
            if entry is None:
                continue  # lost in a damaged stretch; the reader has resynchronised after it
            heard = len(reader.warnings)
            try:
                ok = self.extract(extractor, entry, m)
            except (DamagedMemberError, BadRecordError) as e:
                ok = False
                self.warn(f"{m.path}: {e}")
            if ok:
                journal.add(m)
            elif any(where == m.path for where, _ in reader.warnings[heard:]):
                # Its data was in an unreadable record (the reader said so): the catalog knows where the next
                # wanted member starts, so go there rather than guess past the damage.
                self.result.lost.append(m.path)
                must_seek = True
            else:
                self.result.errors.append(m.path)

    def find(self, reader, m: Member):
        """Read on to the catalog member `m`, skipping what lies before it; None if it was lost."""
        want = (m.record, m.offset)
        while True:
            if self._pending is not None:
                entry, self._pending = self._pending, None
            else:
                entry = next(self._entries, None)
            if entry is None:
                self.lose(m, "the archive ended before it")
                return None
            em = entry.member
            here = (em.record, em.offset)
            if here < want:
                entry.skip()
                continue
            if here == want and em.path == m.path:
                return entry
            if here > want and any(a <= want < b for a, b in reader.lost_ranges):
                # The reader skipped a damaged stretch that held m; `entry` may be the next one wanted.
                self._pending = entry
                self.lose(m, "in a damaged stretch of the tape")
                return None
            raise CatalogMismatchError(
                f"{self.tape.name}: the catalog does not match this tape: it places {m.path!r} at record "
                f"{m.record} offset {m.offset}, the tape has {em.path!r} at record {em.record} offset "
                f"{em.offset}; restore with --no-catalog (one streaming pass) or write a catalog with "
                "'rescue catalog rebuild'"
            )

    def lose(self, m: Member, why: str) -> None:
        self.result.lost.append(m.path)
        self.warn(f"{m.path}: not restored ({why})")

    # without a catalog -------------------------------------------------------------------------------------
    def run_stream(self, archive_file: int, why: str) -> None:
        self.result.mode = "stream"
        self.say(f"{why}: one streaming pass over tape file {archive_file}, seeking is off")
        asked = " ".join(self.matcher.includes) or "everything"
        self.say(
            f"selected: {asked}" + (f", excluding {' '.join(self.o.excludes)}" if self.o.excludes else "")
        )
        if self.o.dry_run:
            return
        self.check_target()
        backup_id = self.label.backup_id if self.label else None
        state, journal, extractor, reader = self.start_pass(backup_id, archive_file)
        self.progress = Progress("restore", stream=self.out)
        try:
            if state is not None and state.last is not None and self.tape.can_seek:
                reader.seek_record(*state.last)
            for entry in reader:
                m = entry.member
                if state is not None and state.done(m.record, m.offset):
                    entry.skip()
                    continue
                wanted = self.matcher.selected(m.path) or (
                    m.type == DIR and self.matcher.is_ancestor_of_include(m.path)
                )
                if not wanted:
                    entry.skip()
                    continue
                heard = len(reader.warnings)
                try:
                    ok = self.extract(extractor, entry, None)
                except (DamagedMemberError, BadRecordError) as e:
                    ok = False  # the reader resynchronises at the next header
                    self.warn(f"{m.path}: {e}")
                if ok:
                    journal.add(m)
                elif any(where == m.path for where, _ in reader.warnings[heard:]):
                    self.result.lost.append(m.path)
                else:
                    self.result.errors.append(m.path)
            self.finish_tree(extractor, state)
        finally:
            self.end_pass(journal)
        if reader.lost_ranges:
            self.result.errors.append(f"{len(reader.lost_ranges)} damaged stretch(es) of the archive skipped")
        if self.result.files == 0 and self.matcher.includes:
            self.result.errors.append("nothing on the tape matched " + " ".join(self.matcher.includes))
            self.warn(self.result.errors[-1])
        self.post_steps()
        journal.remove()

    # entry -------------------------------------------------------------------------------------------------
    def run(self) -> RestoreResult:
        self.label = read_label(self.tape)
        if self.label is not None:
            self.show_label()
            archive_file = self.label.archive_file
        else:
            archive_file = 0
        if self.o.no_catalog:
            self.run_stream(archive_file, "--no-catalog")
        elif self.o.catalog:
            path = catalog_path(self.o.catalog)
            header, _ = open_catalog(path)
            if self.label is None:
                archive_file = int(header.get("archive_file", 0))
            self.run_catalog(path, archive_file)
        elif self.label is not None:
            with tempfile.TemporaryDirectory(prefix="rescue-catalog-") as spool:
                try:
                    files = read_catalog(self.tape, self.label, spool)
                except (VolumeError, EndOfDataError, MediumError) as e:
                    # A backup that died before its catalog, or a damaged catalog: the archive is still there.
                    self.say(f"rescue: {e}")
                    self.run_stream(archive_file, f"{self.tape.name}: no usable catalog on the tape")
                else:
                    self.run_catalog(files.catalog, archive_file)
        else:
            self.run_stream(
                archive_file, f"{self.tape.name}: no rescue label and no catalog found (a plain tar tape)"
            )
        r = self.result
        if not r.dry_run:
            self.say(
                f"restored {r.files} members, {human_bytes(r.bytes)}; {r.records_read} records read, "
                f"{r.seeks} seek(s)" + (f"; {len(r.warnings)} warning(s)" if r.warnings else "")
            )
        r.exit_code = EXIT_PARTIAL if (self.problems or r.errors or r.lost) else EXIT_OK
        return r


def run_restore(tape: Tape, options: RestoreOptions) -> RestoreResult:
    """Restore from `tape` as `options` say; fatal problems raise RescueError (exit 2)."""
    return _Job(tape, options).run()
