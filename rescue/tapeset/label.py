"""Tape file 0 of a backup set: the label (`rescue-label.json`), the machine's layout (`layout.json`) and
`RESTORE.txt`, the exact `mt`/`tar` commands that restore the set without rescue. Written as a small tar
archive in 10 KiB records (rescue.tapeset.smalltar); only the archive (tape file 1) uses the set's record
size, which the label names and RESTORE.txt turns into the exact `tar -b N` command.

Contract (the restore job codes against it):
- `write_label(tape, label, layout)` writes at the current position (BOT) `rescue-label.json`, `layout.json`
  (when a layout is given) and `RESTORE.txt`, then a filemark.
- `examine_file0(tape)` rewinds and reads tape file 0 and says what it is (File0): a rescue label (LABEL, the
  tape left at the start of tape file 1), a damaged label whose rescue-label.json could still be read from the
  raw bytes (SALVAGED), a damaged one (DAMAGED: tar cannot read it, or its first record is unreadable), or
  something else (OTHER: a plain GNU tar tape, or not tar at all; its first record is kept in `first`).  A blank
  tape raises EndOfDataError, a label newer than this rescue VolumeError.  Only the first record is read before
  deciding, so a plain tar tape is never read to its end.
- `read_label(tape)`: the Label of a LABEL or SALVAGED file 0 (tape position then unspecified: callers rewind),
  None for OTHER (tape rewound); VolumeError for a DAMAGED label.  How a job chooses its archive and catalog
  from file 0 is rescue.tapeset.opener's policy.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import tempfile
import time
from typing import Optional

from rescue.archive.tarformat import BLOCKSIZE, DEFAULT_RECORD_SIZE, check_record_size
from rescue.tape.base import EndOfDataError, MediumError, Tape
from rescue.tapeset.catalog_tape import CATALOG_NAME, FILELIST_NAME, SUMMARY_NAME
from rescue.tapeset.smalltar import VolumeError, first_member_name, read_file_into, tarinfo, write_records

LABEL_FORMAT = "rescue-label"
LABEL_VERSION = 1
LABEL_NAME = "rescue-label.json"
LAYOUT_NAME = "layout.json"
RESTORE_NAME = "RESTORE.txt"

# A label is a few KiB; a layout with many disks some more.  Anything larger in file 0 is not ours.
MAX_LABEL_BYTES = 64 * 1024 * 1024


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
                tar.addfile(tarinfo(name, len(data), now), io.BytesIO(data))
        write_records(tape, tmp)


LABEL, SALVAGED, DAMAGED, OTHER = "label", "salvaged", "damaged", "other"
# What a label's first record holds even when its tar header is damaged: the JSON's format key.
LABEL_SIGNATURE = b'"format": "' + LABEL_FORMAT.encode() + b'"'


@dataclasses.dataclass
class File0:
    """What tape file 0 is (see the module docstring); `detail` says what is wrong with a damaged label."""

    state: str
    label: Optional[Label] = None
    first: bytes = b""
    detail: str = ""


def salvage_label(data: bytes) -> Optional[Label]:
    """rescue-label.json from the raw bytes of a label whose tar headers are damaged: the JSON object starting
    at a 512-byte block boundary (where tar puts a member's data), if it is still intact."""
    decoder = json.JSONDecoder()
    for start in range(0, len(data), BLOCKSIZE):
        if data[start : start + 1] != b"{":
            continue
        try:
            obj, _ = decoder.raw_decode(data[start:].decode("utf-8", "replace"))
            label = Label.from_json(obj)
        except (ValueError, TypeError, VolumeError):
            continue
        if isinstance(label.record_size, int) and isinstance(label.archive_file, int):
            return label
    return None


def examine_file0(tape: Tape) -> File0:
    """Rewind and tell what tape file 0 is: LABEL, SALVAGED, DAMAGED or OTHER."""
    tape.rewind()
    try:
        first = tape.read_record(DEFAULT_RECORD_SIZE)
    except EndOfDataError:
        raise EndOfDataError(f"{tape.name}: the tape is blank (no label and no data)") from None
    except MediumError as e:
        return File0(DAMAGED, detail=f"its first record is unreadable: {e}")
    name = first_member_name(first)
    if name == LABEL_NAME:
        try:
            label = _read_label_file(tape, first)
        except VolumeError as e:
            detail = str(e)
        else:
            if label.version > LABEL_VERSION:
                raise VolumeError(
                    f"{tape.name}: label version {label.version} is newer than this rescue understands; "
                    "use a newer rescue"
                )
            return File0(LABEL, label, first)
    elif name is None and (first.startswith(LABEL_NAME.encode() + b"\0") or LABEL_SIGNATURE in first):
        detail = "its tar header is damaged"
    else:
        return File0(OTHER, first=first)
    label = salvage_label(first)
    if label is not None:
        return File0(SALVAGED, label, first, detail)
    return File0(DAMAGED, first=first, detail=detail)


def read_label(tape: Tape) -> Optional[Label]:
    """The label of tape file 0 (also a salvaged one), or None when file 0 is not a rescue label (rewound)."""
    found = examine_file0(tape)
    if found.state == OTHER:
        tape.rewind()
        return None
    if found.label is None:
        raise VolumeError(f"{tape.name}: damaged rescue label in tape file 0 ({found.detail})")
    return found.label


def _read_label_file(tape: Tape, first: bytes) -> Label:
    """The rest of tape file 0 after its first record, read as the label's small tar archive."""
    buf = io.BytesIO()
    try:
        read_file_into(tape, buf, max(len(first), DEFAULT_RECORD_SIZE), first, limit=MAX_LABEL_BYTES)
    except MediumError as e:
        raise VolumeError(f"{tape.name}: unreadable record in tape file 0 ({e})") from None
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
    return label
