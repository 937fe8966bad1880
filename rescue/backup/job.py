"""`rescue backup`: write one backup set (label, archive, catalog) to a tape, guarded so it never destroys the last
good backup.

The job, in order (each refusal raises before anything is written, exit 2; the checks are in rescue.backup.guards, the
catalog directory in rescue.backup.catalogdir):
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
from typing import IO, List, Optional, Tuple

from rescue import __version__, db, layout
from rescue.archive.tarformat import check_record_size
from rescue.archive.walk import plan_tree
from rescue.archive.writer import write_archive
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
    layout: Optional[dict] = None  # default: a minimal layout (mounts, lsblk)
    now: Optional[datetime.datetime] = None  # the clock, for tests of retention


@dataclasses.dataclass
class BackupResult:
    files: int
    bytes: int
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


def walk_excludes(
    root: str, options: BackupOptions, tape: Optional[Tape] = None
) -> Tuple[List[str], List[str]]:
    """(excludes, default_excludes) for the walk.  Excludes: the user's; what this job itself writes while it
    walks (the spool, the catalog being built, an image or directory that is the tape, as GNU tar skips "file is
    the archive"); and the dump directory (the fresh dumps are added first instead).  Default excludes (archived
    as empty directories, so the mount points come back): proc, sys, dev ... and every pseudo file system
    mounted below root."""
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
    return excludes, default_excludes


def _private_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def _private_file(path: str):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape")


# -- the job ----------------------------------------------------------------------------------------------------


def run_backup(
    tape: Tape, root: str, options: BackupOptions, *, out: Optional[IO[str]] = None
) -> BackupResult:
    out = out if out is not None else sys.stderr
    started = time.monotonic()
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise UsageError(f"{root}: not a directory; name the root of the tree to back up")
    check_record_size(options.record_size)
    host = options.host or socket.gethostname()
    now = options.now or datetime.datetime.now(datetime.timezone.utc)

    # 1-2: the device and what is on it.  A stream (stdout, a pipe, a .tar file) holds one tape file: the
    # archive alone, with no label to protect and no room for one.
    archive_only = tape.kind == "stream"
    check_device(tape)
    if not archive_only:
        try:
            existing = read_label(tape)
        except EndOfDataError:
            existing = None  # a blank tape
        check_overwrite(
            existing,
            host,
            now.date(),
            tape.name,
            ignore_retention=options.ignore_retention,
            allow_other_host=options.allow_other_host,
        )

    # 3: the plan and the shrink guard
    excludes, default_excludes = walk_excludes(root, options, tape)
    plan = plan_tree(
        root,
        excludes=excludes,
        default_excludes=default_excludes,
        priority=PRIORITY,
        one_file_system=options.one_file_system,
    )
    previous = newest_catalog(options.catalog_dir, host, root)
    check_shrink(plan, previous, options.shrink_threshold, options.force, out)

    # 4: dumps, label, archive, catalog (the catalog directory first: a permission problem stops us before the
    # databases are dumped)
    _private_dir(options.catalog_dir)
    dumps, warnings = db.run_dumps(options.db_hooks, options.spool_dir, out)
    backup_id = str(uuid.uuid4())
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    retention_until = (
        (now + datetime.timedelta(days=options.retention_days)).date().isoformat()
        if options.retention_days
        else None
    )
    label = Label(
        backup_id=backup_id,
        host=host,
        machine_id=machine_id(),
        created=created,
        tool_version=__version__,
        record_size=options.record_size,
        retention_until=retention_until,
        dumps=[d.arcname for d in dumps],
        excludes=default_excludes + list(options.exclude),
    )
    work = os.path.join(options.catalog_dir, f".incoming-{backup_id}")
    _private_dir(work)
    try:
        walk = (excludes, default_excludes)
        result, summary = _write_set(
            tape, root, label, plan, walk, dumps, warnings, work, options, out, archive_only
        )
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        db.remove_dumps(dumps)

    # 5: keep the catalog, rewind, verify, eject
    final = os.path.join(options.catalog_dir, f"{host}-{now.strftime('%Y%m%dT%H%M%SZ')}-{backup_id[:8]}")
    os.rename(work, final)
    catalog_path = os.path.join(final, CATALOG_NAME)
    prune_catalogs(options.catalog_dir, host, options.keep_catalogs, out)
    exit_code = summary["exit_code"]
    verified = None
    if archive_only:
        if options.verify or options.eject:
            print(
                f"rescue: {tape.name}: a stream cannot be read back or ejected; --verify/--eject ignored",
                file=out,
            )
        options = dataclasses.replace(options, verify=False, eject=False)
    else:
        tape.rewind()
    if options.verify:
        # The same check as `rescue verify --catalog`: every member by position, size and SHA-256.
        checked = run_verify(tape, VerifyOptions(catalog=catalog_path, messages=out, results=out))
        problems = checked.differences
        verified = not problems
        if problems:
            warnings += problems
            exit_code = max(exit_code, EXIT_PARTIAL)
        tape.rewind()
        # The kept summary says whether the set was read back (monitoring reads it; the tape's copy cannot).
        summary["verify"] = {"ok": verified, "problems": problems}
        summary["exit_code"] = exit_code
        with _private_file(os.path.join(final, SUMMARY_NAME)) as f:
            json.dump(summary, f, indent=2, sort_keys=True)
            f.write("\n")
    if options.eject:
        try:
            tape.offline()
        except UnsupportedError:
            print(f"rescue: {tape.name}: cannot eject this device; left rewound", file=out)
    return BackupResult(
        files=result.files,
        bytes=result.bytes,
        records=result.records,
        warnings=warnings,
        exit_code=exit_code,
        catalog_path=catalog_path,
        elapsed=time.monotonic() - started,
        backup_id=backup_id,
        verified=verified,
    )


def _write_set(
    tape: Tape,
    root: str,
    label: Label,
    plan,
    walk: Tuple[List[str], List[str]],
    dumps: List[db.Dump],
    warnings: List[str],
    work: str,
    options: BackupOptions,
    out: IO[str],
    archive_only: bool,
):
    """Label, archive and catalog onto the tape, the catalog files into `work`; returns (WriteResult, summary)."""
    excludes, default_excludes = walk
    catalog_path = os.path.join(work, CATALOG_NAME)
    filelist_path = os.path.join(work, FILELIST_NAME)
    if not archive_only:
        tape.rewind()
        write_label(tape, label, options.layout if options.layout is not None else layout.minimal_layout())
    lister = VerboseLister()
    progress = Progress("backup", total_bytes=plan.bytes, total_files=plan.files, stream=out)
    header = {"backup_id": label.backup_id, "record_size": label.record_size, "host": label.host}
    header["created"] = label.created
    with CatalogWriter(catalog_path, header) as catalog, _private_file(filelist_path) as filelist:

        def on_member(member) -> None:
            catalog.add(member)
            filelist.write(lister.line(member) + "\n")

        result = write_archive(
            tape,
            root,
            record_size=label.record_size,
            excludes=excludes,
            default_excludes=default_excludes,
            priority=PRIORITY,
            extra=[(d.path, d.arcname) for d in dumps],
            one_file_system=options.one_file_system,
            on_member=on_member,
            progress=progress,
            acls=options.acls,
            xattrs=options.xattrs,
        )
    # The writer ends the archive with a whole record; the tape file ends with a filemark.
    tape.write_filemarks(1)
    os.chmod(catalog_path, 0o600)
    progress.done()
    # The plan's walk warnings are not repeated: the writer meets the same paths again and reports them.
    warnings += [f"{path}: {message}" for path, message in result.warnings]
    summary = {
        "format": "rescue-summary",
        "version": 1,
        "backup_id": label.backup_id,
        "host": label.host,
        "root": root,
        "created": label.created,
        "record_size": label.record_size,
        "members": result.members,
        "files": result.files,
        "bytes": result.bytes,
        "records": result.records,
        "dumps": label.dumps,
        "warnings": warnings,
        "exit_code": max(result.exit_code, EXIT_PARTIAL if warnings else EXIT_OK),
        "plan": {"files": plan.files, "bytes": plan.bytes, "per_top": plan.per_top},
        "finished_ns": time.time_ns(),
    }
    if not archive_only:
        write_catalog(tape, catalog_path, filelist_path, summary)
    with _private_file(os.path.join(work, SUMMARY_NAME)) as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    return result, summary


def summary_text(result: BackupResult) -> str:
    rate = result.bytes / result.elapsed if result.elapsed > 0 else 0
    lines = [
        f"backup {result.backup_id}: {result.files} files, {human_bytes(result.bytes)}, {result.records} records "
        f"in {human_duration(result.elapsed)} ({human_bytes(rate)}/s)",
        f"catalog: {result.catalog_path}",
    ]
    if result.verified is not None:
        lines.append("verify: every checksum matches the catalog" if result.verified else "verify: FAILED")
    if result.warnings:
        lines.append(f"{len(result.warnings)} warnings:")
        lines += [f"  {w}" for w in result.warnings]
    return "\n".join(lines)
