"""`catalog rebuild`: scan a tape written by anything once and write a catalog, so later restores can seek.

The tape may be a rescue set (its label names the archive's tape file and the backup id) or a plain GNU tar tape
(the archive is tape file 0), in any format and record size GNU tar writes; rescue.tapeset.opener decides which
(a damaged label included), `--archive-file N` overrides. Every member's first-header position
comes from the reader (rescue.archive.reader), every regular file's SHA-256 from its data as read; the catalog's
record size is the size of the records the tape returned (GNU tar's blocking factor times 512). The header adds
`archive_file`, so `restore --catalog FILE` on a tape without a label knows where the archive is.

Members whose data sits in an unreadable record are left out of the catalog and reported (exit 1): a later
restore cannot seek to data that is not there. An archive that ends early (a cut image) gets the catalog of the
members before the cut, and the message names the last complete one (exit 1; exit 2 when there is none). The
scan goes to an unnamed temporary file (nothing is left behind however the process ends), then the catalog to
a temporary file beside the output, renamed into place when complete (the record size is known only after the
first record), streaming twice: memory stays flat whatever the number of members.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import tempfile
from typing import IO, List, Optional

from rescue.archive.member import FILE, Member
from rescue.archive.reader import ArchiveReader, DamagedMemberError, TruncatedArchiveError
from rescue.archive.record_reader import BadRecordError
from rescue.errors import EXIT_OK, EXIT_PARTIAL, RescueError
from rescue.tape.base import Tape
from rescue.tapeset.catalog import CatalogWriter, open_catalog
from rescue.tapeset.opener import open_set


class RecordSizes:
    """Passes a tape through and remembers the largest record it returned (the archive's record size)."""

    def __init__(self, tape: Tape):
        self._tape = tape
        self.largest = 0

    def read_record(self, bufsize: int = 256 * 1024) -> bytes:
        data = self._tape.read_record(bufsize)
        if len(data) > self.largest:
            self.largest = len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._tape, name)


def hash_entry(entry) -> str:
    """SHA-256 of a regular file's data as stored: for a sparse member its data regions in map order, the
    digest the writer puts in the catalog and extraction checks (rescue.archive.writer, .extract).

    Data is taken with `entry.chunks()` (views into the records, no copy), which also keeps the reader's count
    of the bytes left exact when a record turns out unreadable halfway, so it resynchronises at the right place.
    """
    h = hashlib.sha256()
    for chunk in entry.chunks():
        h.update(chunk)
    return h.hexdigest()


@dataclasses.dataclass
class RebuildResult:
    output: str = ""
    members: int = 0
    bytes: int = 0
    record_size: int = 0
    archive_file: int = 0
    records_read: int = 0
    lost: List[str] = dataclasses.field(default_factory=list)
    warnings: List[str] = dataclasses.field(default_factory=list)
    truncated: Optional[str] = None  # why the archive ended early (a cut image), when it did
    exit_code: int = EXIT_OK

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _scan(reader: ArchiveReader, scan: CatalogWriter, result: RebuildResult, warn) -> None:
    for entry in reader:
        member: Member = entry.member
        try:
            if member.type == FILE:
                member.sha256 = hash_entry(entry)
        except (DamagedMemberError, BadRecordError) as e:
            result.lost.append(member.path)
            warn(member.path, f"left out of the catalog ({e})")
            continue
        scan.add(member)
        result.members += 1
        result.bytes += member.size if member.type == FILE else 0


def rebuild_catalog(
    tape: Tape, output: str, messages: Optional[IO[str]] = None, archive_file: Optional[int] = None
) -> RebuildResult:
    """Scan the archive on `tape` once and write its catalog to `output` (the archive is where
    rescue.tapeset.opener finds it, or tape file `archive_file`)."""
    out = messages if messages is not None else sys.stderr
    result = RebuildResult(output=output)

    def warn(where: str, message: str) -> None:
        text = message if message.startswith(f"{where}: ") else f"{where}: {message}"
        result.warnings.append(text)
        print(f"rescue: warning: {text}", file=out, flush=True)

    with open_set(tape, no_catalog=True, archive_file=archive_file) as ts:
        label, archive_file = ts.label, ts.archive_file
        if label is not None:
            print(
                f"{tape.name}: rescue backup of {label.host}, {label.created} (backup id {label.backup_id})",
                file=out,
            )
        elif not ts.rescue_set:
            print(
                f"{tape.name}: no rescue label; reading tape file {archive_file} as a tar archive", file=out
            )
        for text in ts.warnings:
            warn(tape.name, text)
        ts.space_to_archive()
    result.archive_file = archive_file
    sizes = RecordSizes(tape)
    reader = ArchiveReader(sizes, on_warning=warn)
    directory = os.path.dirname(os.path.abspath(output))
    truncated = None
    with tempfile.TemporaryFile(prefix=".catalog-scan-", dir=directory) as scratch:
        with CatalogWriter(scratch, {"record_size": 0}) as scan:
            try:
                _scan(reader, scan, result, warn)
            except TruncatedArchiveError as e:
                truncated = e
        result.record_size = sizes.largest
        result.records_read = reader.records_read
        if result.members == 0:
            if truncated is not None:
                raise truncated
            raise RescueError(
                f"{tape.name}: tape file {archive_file} holds no tar members; nothing to catalog"
            )
        if truncated is not None:
            result.truncated = str(truncated)
            warn(result.truncated, "the catalog holds the members before it")
        scratch.seek(0)
        header = {
            "backup_id": label.backup_id if label is not None else None,
            "record_size": result.record_size,
            "archive_file": archive_file,
            "host": label.host if label is not None else None,
            "rebuilt": True,
        }
        fd, final = tempfile.mkstemp(prefix=".catalog-", suffix=".gz", dir=directory)
        os.close(fd)
        try:
            _, members = open_catalog(scratch)
            with CatalogWriter(final, header) as writer:
                for member in members:
                    writer.add(member)
            os.chmod(final, 0o644)
            os.replace(final, output)
        except BaseException:
            os.unlink(final)
            raise
    if reader.lost_ranges or result.lost or result.truncated:
        result.exit_code = EXIT_PARTIAL
    print(
        f"catalog {output}: {result.members} members, {result.bytes} bytes, record size {result.record_size}, "
        f"tape file {archive_file}; {result.records_read} records read"
        + (f"; {len(result.lost)} member(s) left out" if result.lost else ""),
        file=out,
    )
    return result
