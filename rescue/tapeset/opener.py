"""Open a backup set on a tape: read the label, choose the catalog, find the archive. One policy for every job
that reads a set: restore, verify, catalog rebuild, list and label.

`open_set(tape, catalog=None, no_catalog=False, archive_file=None, read_catalog=True)` is a context manager that
yields a TapeSet and owns the spool directory the tape's catalog is extracted into (removed on exit).

The policy:
1. Tape file 0 (rescue.tapeset.label.examine_file0). A rescue label: the set it describes. A damaged label whose
   rescue-label.json is still intact: the same set, with a warning. A damaged label otherwise, or a tape file 0
   that is not tar at all: a rescue set with archive in tape file 1 and catalog in tape file 2 when tape files 1
   and 2 look like a rescue archive and catalog (or tape file 0 still carries the label's name), with a warning.
   Anything else is a plain GNU tar tape: the archive is tape file 0 and there is no catalog on the tape.
   `archive_file` (`--archive-file N`, for what no heuristic catches) says where the archive is; the tape's
   catalog is then the one the label names for that archive, else tape file N+1.
2. A tape whose archive holds no tar header in its first record (and is not all zeros) "does not look like a
   tar archive or tape image" (UsageError, exit 2, as GNU tar says), unless it is a rescue set (a warning: the
   reader skips to the next header) or a catalog is given.
3. The catalog. `no_catalog`: none. `catalog` (a catalog.jsonl.gz or the directory holding one): that file, read
   to its end once; a damaged one is fatal, since it was asked for. Else the tape's own: extracted into the spool
   directory and read to its end once (gzip's CRC catches flipped bytes). Missing: none, and the set is
   `incomplete` (the backup did not finish). Damaged: none. Either way `no_catalog_reason` says why, naming the
   tape file, `defects` holds it, and the job does what it can without a catalog (restore streams, verify reads
   the archive through and reports the defect, list offers `--no-catalog`).
4. Label and catalog must agree: a catalog whose backup id or record size differs from the label's raises
   CatalogMismatchError (exit 2) before anything is read: "label and catalog on this tape disagree" for the
   tape's own catalog, "catalog of backup X, but the tape holds backup Y" for a given one.

`read_catalog=False` (the label command) only looks whether the catalog tape file is there (`incomplete`).
After open_set the tape position is unspecified; `space_to_archive()` rewinds and spaces to the archive. A backend
that cuts byte streams into records (directory volume, stream) is set to the set's record size, so the catalog's
record numbers name the records it returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from typing import Iterator, List, Optional

from rescue.archive.member import Member
from rescue.archive.parse import checksum_ok, is_zero_block
from rescue.archive.tarformat import BLOCKSIZE
from rescue.errors import RescueError, UsageError
from rescue.tape.base import EndOfDataError, MediumError, Tape, TapeError
from rescue.tapeset import catalog_tape
from rescue.tapeset.catalog import CatalogError, check_whole, open_catalog
from rescue.tapeset.catalog_tape import CATALOG_NAME, CatalogMissingError
from rescue.tapeset.label import DAMAGED, LABEL, LABEL_NAME, LABEL_SIGNATURE, SALVAGED, Label, examine_file0
from rescue.tapeset.smalltar import VolumeError, first_member_name

# The largest record anything writes (st's own limit is the drive's; GNU tar's -b goes to 2048 * 512 = 1 MiB).
PEEK_BUFSIZE = 16 * 1024 * 1024
CUTTING_BACKENDS = ("dir", "stream")  # rescue.tape: byte streams cut into records of `record_size`
NO_LABEL = "no rescue label and no catalog found (a plain tar tape)"


class CatalogMismatchError(RescueError):
    """The catalog does not describe the tape in the drive."""


def catalog_path(path: str) -> str:
    """`--catalog` names a catalog.jsonl.gz, or the directory holding one (what backup keeps per set)."""
    return os.path.join(path, CATALOG_NAME) if os.path.isdir(path) else path


@dataclasses.dataclass
class TapeSet:
    """A backup set as found on a tape (see the module docstring for how each field is chosen)."""

    tape: Tape
    label: Optional[Label] = None
    rescue_set: bool = False  # a label, or tape files that look like a rescue set
    archive_file: int = 0
    catalog: Optional[str] = None  # path of the catalog.jsonl.gz to use
    catalog_header: Optional[dict] = None
    catalog_name: str = ""  # how messages name the catalog: "tape file 2" or the file given
    no_catalog_reason: Optional[str] = None
    incomplete: bool = False  # the catalog tape file is missing: the backup did not finish
    record_size: Optional[int] = None  # the archive's, from the catalog or the label
    warnings: List[str] = dataclasses.field(default_factory=list)  # what the job shows as warnings
    defects: List[str] = dataclasses.field(default_factory=list)  # what is wrong with the tape (also the
    # reason there is no catalog, which the job states itself)

    @property
    def backup_id(self) -> Optional[str]:
        if self.label is not None:
            return self.label.backup_id
        return (self.catalog_header or {}).get("backup_id")

    def members(self) -> Iterator[Member]:
        """The catalog's members in tape order (a new pass each call)."""
        return open_catalog(self.catalog, self.catalog_name)[1]

    def space_to_archive(self) -> None:
        self.tape.rewind()
        if self.archive_file:
            self.tape.space_files(self.archive_file)

    def warn(self, text: str, defect: bool = True) -> None:
        self.warnings.append(text)
        if defect:
            self.defects.append(text)


def _has_tar_header(record: bytes) -> bool:
    return any(
        checksum_ok(record[i : i + BLOCKSIZE]) for i in range(0, len(record) - BLOCKSIZE + 1, BLOCKSIZE)
    )


def _all_zero(record: bytes) -> bool:
    return bool(record) and is_zero_block(record)


def _is_label(record: bytes) -> bool:
    return record.startswith(LABEL_NAME.encode() + b"\0") or LABEL_SIGNATURE in record


def _first_record(tape: Tape, number: int) -> bytes:
    """The first record of tape file `number` (b"" when it is empty); EndOfDataError when it is not there."""
    tape.rewind()
    if number:
        tape.space_files(number)
    return tape.read_record(PEEK_BUFSIZE)


def _looks_like_catalog(record: bytes) -> bool:
    name = CATALOG_NAME.encode()
    return first_member_name(record) == CATALOG_NAME or record[: len(name) + 1] == name + b"\0"


def _rescue_layout(tape: Tape) -> bool:
    """Whether tape files 1 and 2 look like a rescue archive and catalog."""
    try:
        if not _has_tar_header(_first_record(tape, 1)):
            return False
        return _looks_like_catalog(_first_record(tape, 2))
    except TapeError:
        return False


def _read_file0(ts: TapeSet, archive_file: Optional[int]) -> bytes:
    """Step 1 of the policy; returns the first record of tape file 0."""
    tape = ts.tape
    found = examine_file0(tape)
    if found.state in (LABEL, SALVAGED):
        ts.label, ts.rescue_set = found.label, True
        ts.archive_file = found.label.archive_file
        if found.state == SALVAGED:
            ts.warn(
                f"{tape.name}: tape file 0 is a damaged label ({found.detail}), but its {LABEL_NAME} is intact: "
                "reading the tape as the rescue set it describes"
            )
    elif found.state == DAMAGED or not _has_tar_header(found.first):
        named = found.state == DAMAGED and bool(found.first)
        if archive_file is None and (named or _rescue_layout(tape)):
            ts.rescue_set, ts.archive_file = True, 1
            what = (
                f"a damaged rescue label ({found.detail})" if found.state == DAMAGED else "not a rescue label"
            )
            ts.warn(
                f"{tape.name}: tape file 0 is {what}; tape files 1 and 2 are read as the rescue archive and "
                "catalog (give --archive-file N if the archive is elsewhere)"
            )
        elif found.state == DAMAGED:
            ts.warn(f"{tape.name}: tape file 0 is a damaged rescue label ({found.detail})")
    return found.first


def _check_archive(ts: TapeSet, first0: bytes, given_catalog: bool) -> None:
    """Step 2: the archive is there and starts like tar (GNU tar: "This does not look like a tar archive")."""
    tape, number = ts.tape, ts.archive_file
    try:
        first = first0 if number == 0 and first0 else _first_record(tape, number)
    except EndOfDataError:
        raise RescueError(
            f"{tape.name}: tape file {number} (the archive) is not on the tape; "
            + ("the backup set is incomplete" if ts.rescue_set else "give --archive-file N")
        ) from None
    except MediumError as e:
        if ts.rescue_set:
            return  # the archive reader reports the damage (and where the archive ends, if it is cut)
        ts.warn(f"{tape.name}: the first record of tape file {number} is unreadable ({e})")
        try:
            first = tape.read_record(PEEK_BUFSIZE)  # what follows the damage, as the reader will see it
        except MediumError:
            return
        except EndOfDataError:
            raise RescueError(f"{tape.name}: nothing readable in tape file {number} ({e})") from None
    if not first:
        raise RescueError(f"{tape.name}: tape file {number} (the archive) is empty; nothing to read")
    if number == 0 and not ts.rescue_set and _is_label(first):
        # Only a damaged label, and nothing after it that looks like a set: no archive to read.
        raise RescueError(
            f"{tape.name}: tape file 0 is a damaged rescue label and no archive follows it (a cut or damaged "
            "copy?); 'rescue dump-file N -o FILE' copies what each tape file still holds"
        )
    if _has_tar_header(first) or _all_zero(first) or given_catalog or len(first) < BLOCKSIZE:
        return  # (shorter than one block: a cut copy, which the reader reports as truncated)
    if ts.rescue_set:
        ts.warn(f"{tape.name}: tape file {number} (the archive) does not start with a tar header")
        return
    raise UsageError(
        f"{tape.name}: does not look like a tar archive or tape image; check the name given with -f "
        "(a tape device, a .tap image, a directory volume or a tar archive)"
    )


def _given_catalog(ts: TapeSet, path: str, archive_file: Optional[int]) -> None:
    path = catalog_path(path)
    header, _ = open_catalog(path)
    check_whole(path)
    ts.catalog, ts.catalog_header, ts.catalog_name = path, header, path
    label = ts.label
    if label is None and archive_file is None and not ts.rescue_set:
        ts.archive_file = int(header.get("archive_file") or 0)
    if label is None:
        return
    if header.get("backup_id") and header.get("backup_id") != label.backup_id:
        raise CatalogMismatchError(
            f"{path}: catalog of backup {header.get('backup_id')}, but the tape holds backup {label.backup_id}; "
            "use the tape's own catalog or restore with --no-catalog"
        )
    if header.get("record_size") and header.get("record_size") != label.record_size:
        raise CatalogMismatchError(
            f"{path}: catalog record size {header.get('record_size')} differs from the tape's "
            f"{label.record_size}; use the tape's own catalog or --no-catalog"
        )


def _tape_catalog(ts: TapeSet, number: int, spool: str) -> None:
    tape = ts.tape
    where = f"tape file {number} (the catalog)"
    try:
        files = catalog_tape.read_catalog(tape, number, spool, ts.label.record_size if ts.label else 0)
        name = f"{tape.name}: tape file {number}"
        header, _ = open_catalog(files.catalog, name)
        check_whole(files.catalog, name)
    except CatalogMissingError as e:
        ts.incomplete = True
        ts.no_catalog_reason = str(e)
        ts.defects.append(ts.no_catalog_reason)
        return
    except (VolumeError, CatalogError, MediumError, EndOfDataError) as e:
        text = str(e)
        if where not in text:
            # "TAPE: tape file 2: damaged catalog (why)" -> "TAPE: tape file 2 (the catalog) is damaged (why)"
            why = text.split(": ", 2)[-1]
            why = why[len("damaged catalog ") :] if why.startswith("damaged catalog (") else f"({why})"
            text = f"{tape.name}: {where} is damaged {why}"
        ts.no_catalog_reason = text
        ts.defects.append(ts.no_catalog_reason)
        return
    label = ts.label
    if label is not None:
        for key, ours in (("backup_id", label.backup_id), ("record_size", label.record_size)):
            theirs = header.get(key)
            if theirs and theirs != ours:
                raise CatalogMismatchError(
                    f"{tape.name}: label and catalog on this tape disagree ({key.replace('_', ' ')} {ours} in "
                    f"the label, {theirs} in {where}); restore with --no-catalog, or give the right catalog "
                    "with --catalog FILE"
                )
    ts.catalog, ts.catalog_header, ts.catalog_name = files.catalog, header, name


def catalog_file_of(ts: TapeSet, archive_file: Optional[int]) -> Optional[int]:
    """Which tape file holds the set's catalog (None: no catalog on this tape)."""
    if ts.label is not None and (archive_file is None or archive_file == ts.label.archive_file):
        return ts.label.catalog_file
    if archive_file is not None:
        return archive_file + 1
    return 2 if ts.rescue_set else None


def set_is_incomplete(tape: Tape, label: Label) -> bool:
    """Whether the set's catalog tape file is missing or empty: the backup that wrote it did not finish."""
    try:
        return not _first_record(tape, label.catalog_file)
    except EndOfDataError:
        return True
    except TapeError:
        return False  # there, but damaged: the set was complete


@contextlib.contextmanager
def open_set(
    tape: Tape,
    *,
    catalog: Optional[str] = None,
    no_catalog: bool = False,
    archive_file: Optional[int] = None,
    read_catalog: bool = True,
) -> Iterator[TapeSet]:
    """The backup set on `tape` (the module docstring is the policy); the spool directory lives until exit."""
    if archive_file is not None and archive_file < 0:
        raise UsageError(f"--archive-file {archive_file}: tape files are numbered from 0")
    ts = TapeSet(tape)
    first0 = _read_file0(ts, archive_file)
    if archive_file is not None:
        ts.archive_file = archive_file
    if catalog and not no_catalog:
        _given_catalog(ts, catalog, archive_file)
    _check_archive(ts, first0, ts.catalog is not None)
    number = catalog_file_of(ts, archive_file)
    with contextlib.ExitStack() as stack:
        if no_catalog:
            ts.no_catalog_reason = "--no-catalog"
        elif ts.catalog is not None:
            pass
        elif number is None:
            ts.no_catalog_reason = f"{tape.name}: {NO_LABEL}"
        elif not read_catalog:
            ts.incomplete = ts.label is not None and set_is_incomplete(tape, ts.label)
        else:
            spool = stack.enter_context(tempfile.TemporaryDirectory(prefix="rescue-catalog-"))
            _tape_catalog(ts, number, spool)
        header = ts.catalog_header or {}
        ts.record_size = header.get("record_size") or (ts.label.record_size if ts.label else None)
        if ts.record_size and tape.kind in CUTTING_BACKENDS:
            # A directory volume or a stream cuts its files into records of one size (256 KiB unless told):
            # the catalog's record numbers count the set's records, so they must be the records read.
            tape.set_block_size(ts.record_size)
        yield ts


__all__ = ["CatalogMismatchError", "TapeSet", "catalog_path", "open_set", "set_is_incomplete"]
