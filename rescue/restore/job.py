"""The restore job: everything asked for, in one forward pass over the tape, checked and resumable.

Algorithm:
1. Check the target before the tape moves (rescue.restore.target): it must exist; a non-empty one needs `--yes`
   (or `--resume`, whose journal must be of the same selection), `/` needs `--yes` or a typed confirmation.
2-3. Open the set (rescue.tapeset.opener, the policy verify, list and rebuild share): the label (tape file 0),
   the archive's tape file, and a catalog (`--catalog FILE`, else the tape's own) that agrees with the label.
   A damaged or missing catalog on the tape is no catalog (the reason is said); one of another backup, or of
   another record size, is refused before anything is written.
4. Plan (rescue.restore.plan): the selected members in tape order, in runs with a seek between runs whose gap
   exceeds the threshold, and the members and bytes per PATH; a PATH that matches nothing is named. Print the
   plan, compare it with the target's free space and inodes; `--dry-run` stops here, having written nothing.
5. Rewind once, space to the archive file, and follow the plan (rescue.restore.catalog_pass): seek where it
   says, read through the rest, check that each member is the one the catalog places there and each file's
   SHA-256; a member in an unreadable record is named as lost, the pass seeks on to the next one.
6. Without a catalog: one streaming pass over the archive extracting what the selection matches.
7. Both passes hand each wanted member to `take`: extract, journal when complete (rescue.restore.journal),
   sort a failure into lost or error. `--resume` continues after the last journaled member (seeking there when
   the tape can seek) and ends with the same tree. A full target (ENOSPC, EDQUOT) ends the restore at once.
8. After the files: the boot steps hook and the database reload (rescue.restore.finalize); the journal is removed.

Exit codes: 0 all restored and verified; 1 finished with per-file problems (listed); 2 fatal (RescueError), or
a PATH not found on tape (the rest restored).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from typing import List, Optional

from rescue.archive.member import DIR, FILE, Member
from rescue.archive.parallel_extract import open_extractor
from rescue.archive.reader import ArchiveReader, DamagedMemberError, TruncatedArchiveError
from rescue.archive.record_reader import BadRecordError
from rescue.errors import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, RefusedError, RescueError, UsageError
from rescue.pathmatch import DEFAULT_EXCLUDES, PathMatcher
from rescue.progress import Progress, human_bytes
from rescue.restore import finalize, target
from rescue.restore import journal as journal_mod
from rescue.restore.catalog_pass import CatalogPass
from rescue.restore.options import DEFAULT_TARGET, RestoreOptions, RestoreResult
from rescue.restore.plan import (
    DISK_READ_RATE,
    DISK_SEEK_SECONDS,
    TAPE_READ_RATE,
    TAPE_SEEK_SECONDS,
    PathTally,
    Plan,
    plan_restore,
)
from rescue.tape.base import Tape
from rescue.tapeset.label import Label
from rescue.tapeset.opener import TapeSet, catalog_path, open_set

__all__ = ["DEFAULT_TARGET", "RestoreOptions", "RestoreResult", "catalog_path", "run_restore"]


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
        self.tapeset: Optional[TapeSet] = None
        self.progress: Optional[Progress] = None
        self.problems = 0  # per-file problems the extractor reported
        self.state: Optional[journal_mod.JournalState] = None  # what the interrupted run did (--resume)

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
        """A file that could not be restored as archived: a per-file problem (exit 1); a full target ends the
        restore. The extractor reports from inside its except clause, so the error (and its errno) is at hand."""
        self.problems += 1
        self.warn(f"{where}: {message}")
        if target.is_full(sys.exc_info()[1]):
            self.target_full()

    def target_full(self) -> None:
        r, plan = self.result, self.result.plan
        done = r.files + (self.state.count if self.state is not None else 0)
        total = (plan.files, plan.bytes) if plan else (None, None)
        raise target.TargetFullError(target.full_message(done, total[0], r.bytes, total[1]))

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
        """Before any tape motion: the target and, for --resume, the journal's selection."""
        o = self.o
        notes = target.check_target(
            self.target, yes=o.yes, resume=o.resume, dry_run=o.dry_run, out=self.out, confirm=o.confirm
        )
        for note in notes:
            self.say(f"dry run: {note}")
        if not o.resume:
            return
        self.state = journal_mod.read_journal(self.target)
        if self.state is None:
            raise UsageError(
                f"{self.target}: no restore journal ({journal_mod.NAME}) to resume from; run without --resume"
            )
        journal_mod.check_selection(self.target, self.state.header, self.selection())

    def selection(self) -> dict:
        return journal_mod.selection(self.matcher.includes, self.o.excludes, self.o.default_excludes)

    def check_space(self, plan: Plan) -> None:
        if self.o.resume:
            return  # part of it is on the target already; the plan's totals would overstate what is needed
        try:
            for line in target.check_space(self.target, plan.files, plan.bytes, self.o.yes):
                self.warn(line)
        except RefusedError as e:
            if not self.o.dry_run:
                raise
            self.say(f"dry run: {e}")

    def open_journal(self, backup_id: Optional[str], archive_file: int) -> journal_mod.Journal:
        state = self.state
        if state is not None:
            if state.header.get("backup_id") != backup_id:
                raise RefusedError(
                    f"{self.target}: the journal is from backup {state.header.get('backup_id')}, the tape is "
                    f"{backup_id}; remove {journal_mod.NAME} or use the right tape"
                )
            self.say(f"resuming after {state.count} completed members")
            return journal_mod.Journal(self.target, state.header, append=True)
        header = {
            "backup_id": backup_id,
            "archive_file": archive_file,
            "device": self.tape.name,
            "catalog": os.path.abspath(self.o.catalog) if self.o.catalog else None,
            "selection": self.selection(),
        }
        return journal_mod.Journal(self.target, header)

    def start_pass(self, backup_id: Optional[str], archive_file: int) -> ArchiveReader:
        """Journal, then one rewind and a space to the archive file; counters start here."""
        self.journal = self.open_journal(backup_id, archive_file)
        if self.state is not None:
            # Before extracting anything: removing a file later would change its directory's mtime.
            target.remove_leftovers(os.path.realpath(self.target))
        self.tape.rewind()
        if archive_file:
            self.tape.space_files(archive_file)
        self._counters = (self.tape.records_read, self.tape.seeks)
        self.extractor = open_extractor(
            self.target,
            jobs=self.o.jobs,
            numeric_owner=self.o.numeric_owner,
            overwrite=True,
            on_warning=self.on_extract_warning,
            on_done=self.completed,
        )
        self.reader = ArchiveReader(self.tape, on_warning=self.on_reader_warning)
        self._finished = False
        return self.reader

    def end_pass(self) -> None:
        try:
            if not self._finished:
                # Stopped by a fatal error (drive offline, truncated archive, catalog mismatch, full target): still
                # complete what the extractor holds and set the directories' modes; the journal stays (--resume).
                with contextlib.suppress(OSError, RescueError):
                    self.extractor.finish()
            self.extractor.close()  # its fd of the target root would keep the filesystem busy (umount)
        finally:
            try:
                self.journal.close()  # after the extractor's last completions
            except journal_mod.JournalError as e:
                self.warn(str(e))  # the members since the last write are restored again by --resume
        records, seeks = self._counters
        # What the device itself counted (the SIMH backend and st keep these), else the reader's count.
        self.result.records_read = self.tape.records_read - records or self.reader.records_read
        self.result.seeks = self.tape.seeks - seeks
        if self.progress is not None:
            self.progress.done()

    # extraction: the one block both passes use ------------------------------------------------------------
    def take(self, entry, expected: Optional[Member]) -> bool:
        """Extract a wanted entry (checked against the catalog's `expected` member), journal it when complete,
        and sort a failure into lost (its data was unreadable: True, the caller may seek on) or an error."""
        member = entry.member
        reader = self.reader
        heard = len(reader.warnings)
        sha = expected.sha256 if expected is not None and member.type == FILE else None
        try:
            ok = self.extractor.extract(entry, expected_sha256=sha)
        except (DamagedMemberError, BadRecordError) as e:
            ok = False  # the reader resynchronises at the next header
            self.warn(f"{member.path}: {e}")
        if self.progress is not None:
            self.progress.update(member.size if member.type == FILE else 0, 1)
        if ok:
            return False  # journaled by completed(), called by the extractor once it is complete
        if any(where == member.path for where, _ in reader.warnings[heard:]):
            self.result.lost.append(member.path)  # the reader named the unreadable record
            return True
        self.result.errors.append(member.path)
        return False

    def completed(self, member: Member, ok: bool = True) -> None:
        """The extractor's report that a member it accepted is complete (with worker processes: after extract()
        returned, written and verified; ok False after its warning): count it and journal it (the only place)."""
        if not ok:
            self.result.errors.append(member.path)
            return
        self.result.files += 1
        self.result.bytes += member.size if member.type == FILE else 0
        try:
            self.journal.add(member)
        except journal_mod.JournalError as e:
            if e.full:
                self.target_full()
            raise

    def finish_tree(self) -> None:
        self.extractor.finish()
        self._finished = True
        if self.state is not None:
            self.state.settle_dirs(os.path.realpath(self.target))

    def archive_ended(self, e: TruncatedArchiveError) -> None:
        """The archive ends early (a cut image, an incomplete backup): what was restored stays, the message
        names the last complete member; with nothing restored it is fatal."""
        if self.result.files == 0:
            raise e
        self.result.truncated = str(e)
        self.result.errors.append(str(e))
        self.warn(str(e))

    def end_journal(self) -> None:
        if self.result.truncated is None:
            self.journal.remove()
            return
        self.say(
            f"{self.target}: restore journal kept: 'rescue restore --resume' from a complete copy of this tape "
            "continues after the last complete member"
        )

    def lose(self, m: Member, why: str) -> None:
        self.result.lost.append(m.path)
        self.warn(f"{m.path}: not restored ({why})")

    def not_found(self, paths: List[str]) -> None:
        """PATHs that matched nothing: named, the rest restored, exit 2 at the end (as GNU tar)."""
        for path in paths:
            self.warn(f"{path}: not found on tape")
        self.result.not_found = list(paths)

    def post_steps(self) -> None:
        advice = finalize.boot_steps(self.target, self.label) if self.o.advice else []
        if self.o.reload_db:
            advice += finalize.install_reload_unit(self.target, self.label)
        elif self.o.advice:
            advice += finalize.reload_db_advice(self.label)
        for line in advice:
            self.say(line)

    # with a catalog ----------------------------------------------------------------------------------------
    def run_catalog(self, archive_file: int) -> None:
        # rescue.tapeset.opener has checked the catalog against the label.
        record_size = self.tapeset.record_size or 0
        members = self.tapeset.members

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
            asked = " ".join(plan.not_found or self.matcher.includes) or "everything"
            raise UsageError(
                f"{self.tape.name}: nothing in the catalog matches {asked} (after excludes): not found on "
                "tape; check the names with 'rescue list'"
            )
        self.not_found(plan.not_found)
        self.check_space(plan)
        if self.o.dry_run:
            return
        self.start_pass(self.tapeset.backup_id, archive_file)
        self.progress = Progress("restore", total_bytes=plan.bytes, total_files=plan.files, stream=self.out)
        try:
            try:
                CatalogPass(self, self.reader, self.tape.name).run(members(), selection, plan)
            except TruncatedArchiveError as e:
                self.archive_ended(e)
            self.finish_tree()
        finally:
            self.end_pass()
        self.post_steps()
        self.end_journal()

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
        reader = self.start_pass(self.tapeset.backup_id, archive_file)
        self.progress = Progress("restore", stream=self.out)
        tally = PathTally(self.matcher)
        try:
            if self.state is not None and self.state.last is not None and self.tape.can_seek:
                reader.seek_record(*self.state.last)
            try:
                self.stream(reader, tally)
            except TruncatedArchiveError as e:
                self.archive_ended(e)
            self.finish_tree()
        finally:
            self.end_pass()
        if reader.lost_ranges:
            self.result.errors.append(f"{len(reader.lost_ranges)} damaged stretch(es) of the archive skipped")
        if self.result.truncated is None:
            self.not_found(tally.not_found())  # after a cut, what was asked may lie beyond it
        self.post_steps()
        self.end_journal()

    def stream(self, reader: ArchiveReader, tally: PathTally) -> None:
        """Every member in tape order: extract what the selection wants, read through the rest."""
        matcher, state = self.matcher, self.state
        for entry in reader:
            m = entry.member
            selected = matcher.selected(m.path)
            if selected and tally.files:
                tally.add(m)  # found on tape, also when the interrupted run restored it
            if state is not None and state.done(m.record, m.offset):
                entry.skip()
            elif selected or (m.type == DIR and matcher.is_ancestor_of_include(m.path)):
                self.take(entry, None)
            else:
                entry.skip()

    # entry -------------------------------------------------------------------------------------------------
    def run(self) -> RestoreResult:
        self.check_target()  # before the tape moves: a wrong or unmounted target is said in a second
        o = self.o
        with open_set(
            self.tape, catalog=o.catalog, no_catalog=o.no_catalog, archive_file=o.archive_file
        ) as ts:
            self.tapeset, self.label = ts, ts.label
            if self.label is not None:
                self.show_label()
            for text in ts.warnings:
                self.warn(text)
            if ts.catalog is not None:
                self.run_catalog(ts.archive_file)
            else:
                self.run_stream(ts.archive_file, ts.no_catalog_reason)
        r = self.result
        if not r.dry_run:
            self.say(
                f"restored {r.files} members, {human_bytes(r.bytes)}; {r.records_read} records read, "
                f"{r.seeks} seek(s)" + (f"; {len(r.warnings)} warning(s)" if r.warnings else "")
            )
        if r.not_found:
            r.exit_code = EXIT_FATAL  # as GNU tar: the rest is restored, but what was asked is not all there
        else:
            r.exit_code = EXIT_PARTIAL if (self.problems or r.errors or r.lost) else EXIT_OK
        return r


def run_restore(tape: Tape, options: RestoreOptions) -> RestoreResult:
    """Restore from `tape` as `options` say; fatal problems raise RescueError (exit 2)."""
    return _Job(tape, options).run()
