"""The tape files of a backup set around the archive: the label (tape file 0) and the catalog (tape file 2).

Both are small POSIX pax tar archives written with the standard library's tarfile into a temporary file, then cut
into records of GNU tar's default size, 10240 bytes (the last one zero-padded), and ended by one filemark, so plain
GNU tar reads them with no option: `tar -xf /dev/nst0` for the label, `mt fsf 2; tar -xf /dev/nst0` for the
catalog. Only the archive (tape file 1) uses the set's record size, which the label names and RESTORE.txt (below)
turns into the exact `tar -b N` command.

Contract (the restore job codes against it):
- `write_label(tape, label, layout)` writes at the current position (BOT) `rescue-label.json`, `layout.json`
  (when a layout is given) and `RESTORE.txt`, then a filemark.
- `read_label(tape)` rewinds and reads tape file 0.  It returns the Label and leaves the tape at the start of
  tape file 1; it returns None and leaves the tape rewound when file 0 is not a rescue label (a plain GNU tar
  tape); it raises EndOfDataError on a blank tape.  Only the first record is read before deciding, so a plain
  tar tape is never read to its end.
- `write_catalog(...)` writes `catalog.jsonl.gz`, `filelist.txt`, `summary.json` at the current position (after
  the archive's filemark), then a filemark.
- `read_catalog(tape, label, spool_dir)` rewinds, spaces to the label's catalog file and extracts the three
  members into spool_dir (streaming: a catalog of millions of members never sits in memory).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from typing import IO, Optional

from rescue.archive.tarformat import BLOCKSIZE, DEFAULT_RECORD_SIZE
from rescue.errors import RescueError
from rescue.tape.base import EndOfDataError, Tape

LABEL_FORMAT = "rescue-label"
LABEL_VERSION = 1
LABEL_NAME = "rescue-label.json"
LAYOUT_NAME = "layout.json"
RESTORE_NAME = "RESTORE.txt"
CATALOG_NAME = "catalog.jsonl.gz"
FILELIST_NAME = "filelist.txt"
SUMMARY_NAME = "summary.json"

# A label is a few KiB; a layout with many disks some more.  Anything larger in file 0 is not ours.
MAX_LABEL_BYTES = 64 * 1024 * 1024
COPY_CHUNK = 1024 * 1024


class VolumeError(RescueError):
    """A label or catalog tape file is damaged or not what the label promises."""


def check_record_size(record_size: int) -> int:
    """A record is whole 512-byte tar blocks (GNU tar's -b counts them)."""
    if not isinstance(record_size, int) or record_size <= 0 or record_size % BLOCKSIZE:
        raise RescueError(f"record size {record_size!r}: must be a positive multiple of {BLOCKSIZE} bytes")
    return record_size


@dataclasses.dataclass
class Label:
    """What tape file 0 says about the set. `to_json()` is the content of rescue-label.json; the layout travels
    beside it as layout.json and is filled in by read_label."""

    format: str = LABEL_FORMAT
    version: int = LABEL_VERSION
    backup_id: str = ""
    host: str = ""
    machine_id: str = ""
    created: str = ""  # ISO 8601, UTC
    tool_version: str = ""
    record_size: int = DEFAULT_RECORD_SIZE
    archive_file: int = 1
    catalog_file: int = 2
    retention_until: Optional[str] = None  # ISO date from which the tape may be overwritten; None: any time
    dumps: list = dataclasses.field(default_factory=list)  # archive paths of database dumps
    excludes: list = dataclasses.field(default_factory=list)
    layout: Optional[dict] = None

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("layout")
        d["layout_file"] = LAYOUT_NAME if self.layout is not None else None
        return d

    @classmethod
    def from_json(cls, data) -> Label:
        """From a dict or JSON text; unknown keys (a newer minor writer) are ignored."""
        d = json.loads(data) if isinstance(data, (str, bytes)) else dict(data)
        if not isinstance(d, dict) or d.get("format") != LABEL_FORMAT:
            raise VolumeError(
                f"not a rescue label (format {d.get('format') if isinstance(d, dict) else None!r})"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def blocking_factor(self) -> int:
        """GNU tar's -b for this set."""
        return self.record_size // BLOCKSIZE


@dataclasses.dataclass
class CatalogFiles:
    catalog: str  # path of catalog.jsonl.gz
    filelist: str  # path of filelist.txt
    summary: dict  # content of summary.json


def restore_text(label: Label) -> str:
    """RESTORE.txt: how to get the set back with nothing but mt-st and GNU tar."""
    b = label.blocking_factor
    dev = "/dev/nst0"
    lines = [
        f"This tape was written by rescue {label.tool_version} on host {label.host} at {label.created}",
        f"(backup id {label.backup_id}).",
        "",
        "It is a GNU tar tape: three tape files, each ended by a filemark. The archive is written in records",
        f"of {label.record_size} bytes, that is GNU tar's blocking factor -b {b}:",
        f"  tape file 0  this label: {LABEL_NAME}, {LAYOUT_NAME}, {RESTORE_NAME}",
        f"  tape file {label.archive_file}  the backup: a POSIX (pax) tar archive, member names relative (etc/passwd)",
        f"  tape file {label.catalog_file}  the catalog: {CATALOG_NAME}, {FILELIST_NAME}, {SUMMARY_NAME}",
        "",
        "Restore everything without rescue (as root, the new filesystems mounted under /mnt/target):",
        f"  mt -f {dev} setblk 0",
        f"  mt -f {dev} rewind",
        f"  mt -f {dev} fsf {label.archive_file}",
        f"  tar -xpf {dev} -b {b} --xattrs --xattrs-include='*' --acls --numeric-owner -C /mnt/target",
        "",
        "Restore some paths only (names as in the archive, without a leading /):",
        f"  mt -f {dev} rewind; mt -f {dev} fsf {label.archive_file}",
        f"  tar -xpf {dev} -b {b} --xattrs --xattrs-include='*' --acls --numeric-owner -C /mnt/target etc var/www",
        "",
        "List the archive, or read the catalog and the plain file list:",
        f"  mt -f {dev} rewind; mt -f {dev} fsf {label.archive_file}; tar -tvf {dev} -b {b}",
        f"  mt -f {dev} rewind; mt -f {dev} fsf {label.catalog_file}; tar -xf {dev}",
        "",
        "Read this label again (label and catalog are written in tar's default records, no -b needed):",
        f"  mt -f {dev} rewind; tar -xf {dev}",
    ]
    if label.dumps:
        lines += [
            "",
            "Database dumps, first in the archive, to reload into the running servers after a restore:",
        ]
        for path in label.dumps:
            lines.append(f"  /mnt/target/{path}")
        lines += [
            "  MariaDB/MySQL:  mariadb < mariadb.sql",
            "  PostgreSQL:     runuser -u postgres -- psql -X -f postgresql.sql postgres",
            "  or, with rescue in the restored system:  rescue db reload",
        ]
    if label.excludes:
        lines += [
            "",
            "Left out of the backup (proc, sys, dev, run, tmp and mounted pseudo file systems as empty directories):",
            "  " + " ".join(label.excludes),
        ]
    return "\n".join(lines) + "\n"


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


# Label and catalog are small archives written in GNU tar's default record size (-b 20), so that plain
# `tar -xf /dev/nst0` reads them with no option: the record size of the archive is written inside the label,
# and whoever reads the label does not know it yet. st(4) fails a read into a buffer smaller than the record.
SMALL_RECORD_SIZE = 20 * BLOCKSIZE


def _write_records(tape: Tape, src: IO[bytes], record_size: int = SMALL_RECORD_SIZE) -> int:
    """Cut a file into whole records (the last one zero-padded), then a filemark; return the records written."""
    src.seek(0)
    count = 0
    while True:
        chunk = src.read(record_size)
        if not chunk:
            break
        if len(chunk) < record_size:
            chunk += bytes(record_size - len(chunk))
        tape.write_record(chunk)
        count += 1
    tape.write_filemarks(1)
    return count


def write_label(tape: Tape, label: Label, layout: Optional[dict]) -> None:
    """Tape file 0 at the current position (BOT): the label, the layout and RESTORE.txt, then a filemark."""
    check_record_size(label.record_size)
    if layout is None:
        layout = label.layout
    label.layout = layout
    now = time.time()
    with tempfile.TemporaryFile() as tmp:
        # format=PAX: plain ustar headers for these short names, pax records only if ever needed.
        with tarfile.open(fileobj=tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
            parts = [(LABEL_NAME, json.dumps(label.to_json(), indent=2, sort_keys=True) + "\n")]
            if layout is not None:
                parts.append((LAYOUT_NAME, json.dumps(layout, indent=2, sort_keys=True) + "\n"))
            parts.append((RESTORE_NAME, restore_text(label)))
            for name, text in parts:
                data = text.encode("utf-8")
                tar.addfile(_tarinfo(name, len(data), now), io.BytesIO(data))
        _write_records(tape, tmp)


def _first_member_name(record: bytes) -> Optional[str]:
    """Name of the first member of a tar stream that starts with this record, or None if it is not tar."""
    try:
        with tarfile.open(fileobj=io.BytesIO(record), mode="r|") as tar:
            info = tar.next()
            return info.name if info is not None else None
    except (tarfile.TarError, EOFError, OSError, ValueError):
        return None


def _read_file_into(
    tape: Tape, out: IO[bytes], bufsize: int, first: bytes = b"", limit: Optional[int] = None
) -> int:
    """Copy the rest of the current tape file (up to its filemark) to out; return the bytes copied."""
    total = len(first)
    out.write(first)
    while True:
        try:
            record = tape.read_record(bufsize)
        except EndOfDataError:
            # A set cut short (the job died before its filemark): what is there is all there is.
            break
        if not record:
            break
        total += len(record)
        if limit is not None and total > limit:
            raise VolumeError(f"{tape.name}: tape file 0 is larger than a rescue label can be")
        out.write(record)
    return total


def read_label(tape: Tape) -> Optional[Label]:
    """Read tape file 0: a Label (tape left at the start of file 1), or None (not a rescue tape; rewound)."""
    tape.rewind()
    try:
        first = tape.read_record(DEFAULT_RECORD_SIZE)
    except EndOfDataError:
        raise EndOfDataError(f"{tape.name}: the tape is blank (no label and no data)") from None
    if _first_member_name(first) != LABEL_NAME:
        tape.rewind()
        return None
    buf = io.BytesIO()
    _read_file_into(tape, buf, max(len(first), DEFAULT_RECORD_SIZE), first, limit=MAX_LABEL_BYTES)
    buf.seek(0)
    files = {}
    try:
        with tarfile.open(fileobj=buf, mode="r:") as tar:
            for info in tar:
                if info.isfile() and info.name in (LABEL_NAME, LAYOUT_NAME):
                    files[info.name] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError) as e:
        raise VolumeError(f"{tape.name}: damaged rescue label in tape file 0 ({e})") from None
    try:
        label = Label.from_json(files[LABEL_NAME])
        if LAYOUT_NAME in files:
            label.layout = json.loads(files[LAYOUT_NAME])
    except (KeyError, ValueError, TypeError) as e:
        raise VolumeError(f"{tape.name}: damaged rescue label in tape file 0 ({e})") from None
    if label.version > LABEL_VERSION:
        raise VolumeError(
            f"{tape.name}: label version {label.version} is newer than this rescue understands; use a newer rescue"
        )
    return label


def write_catalog(tape: Tape, catalog_path: str, filelist_path: str, summary: dict) -> None:
    """Tape file 2 at the current position: catalog, file list and summary, then a filemark."""
    now = time.time()
    spool_dir = os.path.dirname(os.path.abspath(catalog_path))
    with tempfile.TemporaryFile(dir=spool_dir) as tmp:
        with tarfile.open(fileobj=tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, path in ((CATALOG_NAME, catalog_path), (FILELIST_NAME, filelist_path)):
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    tar.addfile(_tarinfo(name, size, now), f)
            data = (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8")
            tar.addfile(_tarinfo(SUMMARY_NAME, len(data), now), io.BytesIO(data))
        _write_records(tape, tmp)


def read_catalog(tape: Tape, label: Label, spool_dir: str) -> CatalogFiles:
    """Space to the catalog tape file (rewind + fsf) and extract it into spool_dir."""
    missing_msg = (
        f"{tape.name}: tape file {label.catalog_file} (the catalog) is missing; the backup did not finish. "
        "Use 'rescue catalog rebuild' or restore without a catalog"
    )
    tape.rewind()
    try:
        tape.space_files(label.catalog_file)
    except EndOfDataError:
        raise VolumeError(missing_msg) from None
    os.makedirs(spool_dir, mode=0o700, exist_ok=True)
    wanted = (CATALOG_NAME, FILELIST_NAME, SUMMARY_NAME)
    found = {}
    with tempfile.TemporaryFile(dir=spool_dir) as tmp:
        try:
            size = _read_file_into(tape, tmp, max(label.record_size, DEFAULT_RECORD_SIZE))
        except EndOfDataError:
            size = 0
        if size == 0:
            raise VolumeError(missing_msg)
        tmp.seek(0)
        try:
            # Stream mode: members are taken in order, nothing is kept.
            with tarfile.open(fileobj=tmp, mode="r|") as tar:
                for info in tar:
                    if info.isfile() and info.name in wanted and info.name not in found:
                        dest = os.path.join(spool_dir, info.name)
                        src = tar.extractfile(info)
                        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                        with os.fdopen(fd, "wb") as out:
                            shutil.copyfileobj(src, out, COPY_CHUNK)
                        found[info.name] = dest
        except (tarfile.TarError, EOFError) as e:
            raise VolumeError(
                f"{tape.name}: damaged catalog in tape file {label.catalog_file} ({e})"
            ) from None
    missing = [n for n in wanted if n not in found]
    if missing:
        raise VolumeError(f"{tape.name}: the catalog tape file lacks {', '.join(missing)}")
    try:
        with open(found[SUMMARY_NAME], encoding="utf-8") as f:
            summary = json.load(f)
    except ValueError as e:
        raise VolumeError(f"{tape.name}: damaged {SUMMARY_NAME} in the catalog tape file ({e})") from None
    return CatalogFiles(catalog=found[CATALOG_NAME], filelist=found[FILELIST_NAME], summary=summary)
