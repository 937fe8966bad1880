"""`rescue backup`: write one backup set (label, archive, catalog) to a tape, guarded so it never destroys the last
good backup.

The job, in order, one named stage each (`run_backup` calls them; each refusal raises before anything is written,
exit 2; the checks are in rescue.backup.guards, the catalog directory in rescue.backup.catalogdir):
1. The device: a tape must be loaded, online and writable (st(4) status bits; mt-st prints them as ONLINE,
   WR_PROT, DR_OPEN).
2. The label already on the tape: a set still inside its retention period, or written by another host, is not
   overwritten unless --ignore-retention / --allow-other-host says so.  A blank tape or a plain tar tape is fine.
3. The shrink guard: the planned backup (members and bytes, per top-level directory, counted by a walk that reads
   no data) is compared with the newest catalog of the same host and root in the catalog directory.  A drop of more
   than the threshold (30% by default) in members or bytes refuses, because a dying file system looks like
   deleted files; --force overrides.
4. Database hooks dump into the spool; then the label (file 0), the archive (file 1: dumps, etc, boot, root, then
   the rest) and the catalog (file 2) are written; the catalog is built from the writer's per-member report
   (position and SHA-256), with `filelist.txt` in `tar -tv` style and `summary.json` (totals, warnings, the plan).
5. The catalog and file list are kept in the catalog directory (`<host>-<date>-<id>/`, 0700, files 0600); the
   tape is rewound, --verify reads the archive back and checks every SHA-256 against the catalog, --eject unloads.

Counts say which is which: `members` (every archive entry), `files` (regular files with data), `bytes` (file data
stored; a sparse file counts its data regions, not its holes).  ROOT is checked (`check_root`) before the device
is opened, so a typo leaves no empty image behind.

Per-file problems (vanished, changed, unreadable) are warnings: the set is complete without them and the job
exits 1, listing them.  A failed verify also exits 1, naming the members that differ.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import socket
import sys
import time
import uuid
from typing import IO, List, Optional

from rescue import __version__, db, layout
from rescue.archive.tarformat import check_record_size
from rescue.archive.walk import WalkSettings, plan_tree
from rescue.archive.writer import WriteResult, write_archive
from rescue.backup.catalogdir import newest_catalog, prune_catalogs
from rescue.backup.guards import check_device, check_overwrite, check_shrink
from rescue.config import BackupSettings
from rescue.errors import EXIT_OK, EXIT_PARTIAL, UsageError
from rescue.pathmatch import DEFAULT_EXCLUDES
from rescue.progress import Progress, human_bytes, human_duration
from rescue.scan.verify import VerifyOptions, run_verify
from rescue.tape.base import (
    EndOfDataError,
    Tape,
    UnsupportedError,
)
from rescue.tapeset.catalog import CatalogWriter
from rescue.tapeset.catalog_tape import CATALOG_NAME, FILELIST_NAME, SUMMARY_NAME, write_catalog
from rescue.tapeset.filelist import VerboseLister
from rescue.tapeset.label import Label, read_label, write_label
from rescue.tapeset.opener import set_is_incomplete

PRIORITY = ("etc", "boot", "root")  # first on tape after the dumps: what a restored system needs first


@dataclasses.dataclass
class BackupOptions(BackupSettings):
    """The settings of rescue.conf's [rescue] (rescue.config.SETTINGS: record_size, exclude, default_excludes,
    one_file_system, catalog_dir, spool_dir, retention_days, keep_catalogs, shrink_threshold, verify, eject,
    acls, xattrs) and the switches of one run."""

    force: bool = False  # write although the shrink guard refuses
    ignore_retention: bool = False  # overwrite a set inside its retention period
    allow_other_host: bool = False  # overwrite a set written by another host
    db_hooks: List[db.DbHook] = dataclasses.field(default_factory=list)
    host: Optional[str] = None  # default: this host's name
    layout: Optional[dict] = None  # default: layout.backup_layout(root), the full capture
    now: Optional[datetime.datetime] = None  # the clock, for tests of retention


@dataclasses.dataclass
class BackupResult:
    members: int  # every archive member: files, directories, links, devices ...
    files: int  # regular files with data (not hard links to an earlier one)
    bytes: int  # file data stored in the archive (a sparse file's data regions only; no headers, no padding)
    records: int
    warnings: List[str]
    exit_code: int
    catalog_path: str
    elapsed: float
    backup_id: str = ""
    verified: Optional[bool] = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


# -- helpers ----------------------------------------------------------------------------------------------------


def machine_id() -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path, encoding="ascii") as f:
                return f.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
    return ""


def relative_under(path: str, root: str) -> Optional[str]:
    """`path` as an archive name when it lies strictly below root, else None."""
    path, root = os.path.abspath(path), os.path.abspath(root)
    if root == "/":
        return path.lstrip("/") or None
    if path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1 :]
    return None


def check_root(root: str) -> str:
    """ROOT as an absolute path, or a usage error (before the device is opened, so no empty image is left)."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise UsageError(f"{root}: not a directory; name the root of the tree to back up")
    return root


def walk_settings(root: str, options: BackupOptions, tape: Optional[Tape] = None) -> WalkSettings:
    """What the walk leaves out and takes first.  Excludes: the user's; what this job itself writes while it
    walks (the spool, the catalog being built, an image or directory that is the tape, as GNU tar skips "file is
    the archive"); and the dump directory (the fresh dumps are added first instead, as `extra`).  Default
    excludes (archived as empty directories, so the mount points come back): proc, sys, dev ... and every pseudo
    file system mounted below root."""
    excludes = list(options.exclude)
    own = [
        options.spool_dir,
        os.path.join(root, db.DUMP_ARCDIR),
        os.path.join(options.catalog_dir, ".incoming-*"),
    ]
    if tape is not None and tape.kind in ("simh", "dir", "stream") and tape.name != "-":
        own.append(tape.name)
    for path in own:
        rel = relative_under(path, root)
        if rel and rel not in excludes:
            excludes.append(rel)
    default_excludes: List[str] = []
    if options.default_excludes:
        default_excludes = list(DEFAULT_EXCLUDES)
        for rel in layout.pseudo_mounts(layout.read_mounts(), root):
            if rel not in default_excludes and rel.split("/")[0] not in DEFAULT_EXCLUDES:
                default_excludes.append(rel)
    return WalkSettings(
        excludes=tuple(excludes),
        default_excludes=tuple(default_excludes),
        priority=PRIORITY,
        one_file_system=options.one_file_system,
    )


def _private_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def _private_file(path: str):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape")


def _write_json(path: str, doc: dict) -> None:
    with _private_file(path) as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")


# -- the job ----------------------------------------------------------------------------------------------------


def run_backup(
    tape: Tape, root: str, options: BackupOptions, *, out: Optional[IO[str]] = None
) -> BackupResult:
    """The stages in order: device, guards, database dumps, label, archive, catalog, keep, verify, eject."""
    job = BackupJob(tape, check_root(root), options, out if out is not None else sys.stderr)
    check_record_size(options.record_size)
    check_device(tape)
    job.guards()
    _private_dir(options.catalog_dir)  # a permission problem stops us before the databases are dumped
    job.dump_databases()
    try:
        job.write_set()
    except BaseException:
        shutil.rmtree(job.work, ignore_errors=True)
        raise
    finally:
        db.remove_dumps(job.dumps)
    job.keep_catalog()
    job.verify_and_eject()
    return job.result()


class BackupJob:
    """The state one backup passes from stage to stage.  A stream (stdout, a pipe, a .tar file) holds one tape
    file: the archive alone, with no label to protect and no room for one (`archive_only`)."""

    def __init__(self, tape: Tape, root: str, options: BackupOptions, out: IO[str]):
        self.tape, self.root, self.options, self.out = tape, root, options, out
        self.started = time.monotonic()
        self.host = options.host or socket.gethostname()
        self.now = options.now or datetime.datetime.now(datetime.timezone.utc)
        self.archive_only = tape.kind == "stream"
        self.backup_id = str(uuid.uuid4())
        self.work = os.path.join(options.catalog_dir, f".incoming-{self.backup_id}")
        self.walk = walk_settings(root, options, tape)
        self.dumps: List[db.Dump] = []
        self.warnings: List[str] = []
        self.verified: Optional[bool] = None

    def guards(self) -> None:
        """The set on the tape (retention, host), then the plan against the last catalog (shrink)."""
        if not self.archive_only:
            try:
                existing = read_label(self.tape)
            except EndOfDataError:
                existing = None  # a blank tape
            check_overwrite(
                existing,
                self.host,
                self.now.date(),
                self.tape.name,
                ignore_retention=self.options.ignore_retention,
                allow_other_host=self.options.allow_other_host,
                incomplete=lambda: set_is_incomplete(self.tape, existing),
                out=self.out,
            )
            if existing is not None:
                print(
                    f"rescue: {self.tape.name}: overwriting backup {existing.backup_id} of {existing.created}, "
                    f"host {existing.host}",
                    file=self.out,
                )
        self.plan = plan_tree(self.root, self.walk)
        previous = newest_catalog(self.options.catalog_dir, self.host, self.root)
        check_shrink(self.plan, previous, self.options.shrink_threshold, self.options.force, self.out)

    def dump_databases(self) -> None:
        self.dumps, self.warnings = db.run_dumps(self.options.db_hooks, self.options.spool_dir, self.out)
        self.walk = dataclasses.replace(self.walk, extra=tuple((d.path, d.arcname) for d in self.dumps))

    def label(self) -> Label:
        options, now = self.options, self.now
        retention_until = None
        if options.retention_days:
            retention_until = (now + datetime.timedelta(days=options.retention_days)).date().isoformat()
        return Label(
            backup_id=self.backup_id,
            host=self.host,
            machine_id=machine_id(),
            created=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            tool_version=__version__,
            record_size=options.record_size,
            retention_until=retention_until,
            dumps=[d.arcname for d in self.dumps],
            excludes=list(self.walk.default_excludes) + list(options.exclude),
        )

    def write_set(self) -> None:
        """Label (file 0), archive (file 1) and catalog (file 2) onto the tape, the catalog files into `work`."""
        _private_dir(self.work)
        label = self.label()
        if not self.archive_only:
            self.tape.rewind()
            layout_doc = (
                self.options.layout if self.options.layout is not None else layout.backup_layout(self.root)
            )
            write_label(self.tape, label, layout_doc)
        self.written = self.write_archive(label)
        self.summary = self.summarize(label)
        if not self.archive_only:
            write_catalog(self.tape, self.catalog_file(self.work), self.filelist_file(), self.summary)
        _write_json(os.path.join(self.work, SUMMARY_NAME), self.summary)

    def catalog_file(self, directory: str) -> str:
        return os.path.join(directory, CATALOG_NAME)

    def filelist_file(self) -> str:
        return os.path.join(self.work, FILELIST_NAME)

    def write_archive(self, label: Label) -> WriteResult:
        """The archive and, member by member, the catalog and the file list built from the writer's report."""
        lister = VerboseLister()
        plan = self.plan
        progress = Progress(
            "backup", total_bytes=plan.bytes, total_files=plan.files, stream=self.out, unit="members"
        )
        header = {"backup_id": label.backup_id, "record_size": label.record_size, "host": label.host}
        header["created"] = label.created
        catalog_path = self.catalog_file(self.work)
        with CatalogWriter(catalog_path, header) as catalog, _private_file(self.filelist_file()) as filelist:

            def on_member(member) -> None:
                catalog.add(member)
                filelist.write(lister.line(member) + "\n")

            result = write_archive(
                self.tape,
                self.root,
                record_size=label.record_size,
                walk=self.walk,
                on_member=on_member,
                progress=progress,
                acls=self.options.acls,
                xattrs=self.options.xattrs,
            )
        # The writer ends the archive with a whole record; the tape file ends with a filemark.
        self.tape.write_filemarks(1)
        os.chmod(catalog_path, 0o600)
        progress.done()
        # The plan's walk warnings are not repeated: the writer meets the same paths again and reports them.
        self.warnings += [f"{path}: {message}" for path, message in result.warnings]
        return result

    def summarize(self, label: Label) -> dict:
        result, plan = self.written, self.plan
        return {
            "format": "rescue-summary",
            "version": 1,
            "backup_id": label.backup_id,
            "host": label.host,
            "root": self.root,
            "created": label.created,
            "record_size": label.record_size,
            "members": result.members,
            "files": result.files,
            "bytes": result.bytes,
            "records": result.records,
            "dumps": label.dumps,
            "warnings": self.warnings,
            "exit_code": max(result.exit_code, EXIT_PARTIAL if self.warnings else EXIT_OK),
            "plan": {"files": plan.files, "bytes": plan.bytes, "per_top": plan.per_top},
            "finished_ns": time.time_ns(),
        }

    def keep_catalog(self) -> None:
        """The work directory becomes `<host>-<date>-<id>/` in the catalog directory; old ones are pruned."""
        stamp = self.now.strftime("%Y%m%dT%H%M%SZ")
        self.final = os.path.join(self.options.catalog_dir, f"{self.host}-{stamp}-{self.backup_id[:8]}")
        os.rename(self.work, self.final)
        prune_catalogs(self.options.catalog_dir, self.host, self.options.keep_catalogs, self.out)

    def verify_and_eject(self) -> None:
        verify, eject = self.options.verify, self.options.eject
        if self.archive_only:
            if verify or eject:
                print(
                    f"rescue: {self.tape.name}: a stream cannot be read back or ejected; --verify/--eject ignored",
                    file=self.out,
                )
            return
        self.tape.rewind()
        if verify:
            self.verify()
        if eject:
            try:
                self.tape.offline()
            except UnsupportedError:
                print(f"rescue: {self.tape.name}: cannot eject this device; left rewound", file=self.out)

    def verify(self) -> None:
        """The same check as `rescue verify --catalog`: every member by position, size and SHA-256."""
        catalog = self.catalog_file(self.final)
        checked = run_verify(self.tape, VerifyOptions(catalog=catalog, messages=self.out, results=self.out))
        problems = checked.differences
        self.verified = not problems
        self.warnings += problems
        self.tape.rewind()
        # The kept summary says whether the set was read back (monitoring reads it; the tape's copy cannot).
        self.summary["verify"] = {"ok": self.verified, "problems": problems}
        self.summary["exit_code"] = self.exit_code()
        _write_json(os.path.join(self.final, SUMMARY_NAME), self.summary)

    def exit_code(self) -> int:
        return max(self.summary["exit_code"], EXIT_PARTIAL if self.verified is False else EXIT_OK)

    def result(self) -> BackupResult:
        written = self.written
        return BackupResult(
            members=written.members,
            files=written.files,
            bytes=written.bytes,
            records=written.records,
            warnings=self.warnings,
            exit_code=self.exit_code(),
            catalog_path=self.catalog_file(self.final),
            elapsed=time.monotonic() - self.started,
            backup_id=self.backup_id,
            verified=self.verified,
        )


def summary_text(result: BackupResult) -> str:
    rate = result.bytes / result.elapsed if result.elapsed > 0 else 0
    lines = [
        f"backup {result.backup_id}: {result.members} members ({result.files} regular files), "
        f"{human_bytes(result.bytes)} of file data stored, {result.records} records "
        f"in {human_duration(result.elapsed)} ({human_bytes(rate)}/s)",
        f"catalog: {result.catalog_path}",
    ]
    if result.verified is not None:
        lines.append("verify: every checksum matches the catalog" if result.verified else "verify: FAILED")
    if result.warnings:
        lines.append(f"{len(result.warnings)} warnings:")
        lines += [f"  {w}" for w in result.warnings]
    return "\n".join(lines)
