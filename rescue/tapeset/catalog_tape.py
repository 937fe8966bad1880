"""Tape file 2 of a backup set: `catalog.jsonl.gz` (rescue.tapeset.catalog), `filelist.txt`
(rescue.tapeset.filelist) and `summary.json`, as a small tar archive (rescue.tapeset.smalltar).

Contract:
- `write_catalog(...)` writes the three members at the current position (after the archive's filemark), then a
  filemark.
- `read_catalog(tape, catalog_file, spool_dir)` rewinds, spaces to tape file `catalog_file` and extracts the three
  members into spool_dir (streaming: a catalog of millions of members never sits in memory). A tape file that is
  not there or empty raises CatalogMissingError (the backup did not finish); one that tar cannot read, or that
  lacks a member, raises VolumeError.  Messages name "tape file N", never the spool path.
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

from rescue.archive.tarformat import DEFAULT_RECORD_SIZE
from rescue.tape.base import EndOfDataError, MediumError, Tape
from rescue.tapeset.smalltar import COPY_CHUNK, VolumeError, read_file_into, tarinfo, write_records

CATALOG_NAME = "catalog.jsonl.gz"
FILELIST_NAME = "filelist.txt"
SUMMARY_NAME = "summary.json"


class CatalogMissingError(VolumeError):
    """The catalog tape file is not on the tape (or empty): the backup set is incomplete."""


@dataclasses.dataclass
class CatalogFiles:
    catalog: str  # path of catalog.jsonl.gz
    filelist: str  # path of filelist.txt
    summary: dict  # content of summary.json


def write_catalog(tape: Tape, catalog_path: str, filelist_path: str, summary: dict) -> None:
    """Tape file 2 at the current position: catalog, file list and summary, then a filemark."""
    now = time.time()
    spool_dir = os.path.dirname(os.path.abspath(catalog_path))
    with tempfile.TemporaryFile(dir=spool_dir) as tmp:
        with tarfile.open(fileobj=tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, path in ((CATALOG_NAME, catalog_path), (FILELIST_NAME, filelist_path)):
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    tar.addfile(tarinfo(name, size, now), f)
            data = (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8")
            tar.addfile(tarinfo(SUMMARY_NAME, len(data), now), io.BytesIO(data))
        write_records(tape, tmp)


def read_catalog(
    tape: Tape, catalog_file: int, spool_dir: str, bufsize: int = DEFAULT_RECORD_SIZE
) -> CatalogFiles:
    """Space to tape file `catalog_file` (rewind + fsf) and extract it into spool_dir."""
    where = f"{tape.name}: tape file {catalog_file} (the catalog)"
    missing_msg = f"{where} is missing: the backup set is incomplete (the backup did not finish)"
    tape.rewind()
    try:
        tape.space_files(catalog_file)
    except EndOfDataError:
        raise CatalogMissingError(missing_msg) from None
    os.makedirs(spool_dir, mode=0o700, exist_ok=True)
    wanted = (CATALOG_NAME, FILELIST_NAME, SUMMARY_NAME)
    found = {}
    with tempfile.TemporaryFile(dir=spool_dir) as tmp:
        try:
            size = read_file_into(tape, tmp, max(bufsize, DEFAULT_RECORD_SIZE))
        except EndOfDataError:
            size = 0
        except MediumError as e:
            raise VolumeError(f"{where} is damaged ({e})") from None
        if size == 0:
            raise CatalogMissingError(missing_msg)
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
        except (tarfile.TarError, EOFError, OSError) as e:
            raise VolumeError(f"{where} is damaged ({e})") from None
    missing = [n for n in wanted if n not in found]
    if missing:
        raise VolumeError(f"{where} is damaged: it lacks {', '.join(missing)}")
    try:
        with open(found[SUMMARY_NAME], encoding="utf-8") as f:
            summary = json.load(f)
    except ValueError as e:
        raise VolumeError(f"{where} is damaged: unreadable {SUMMARY_NAME} ({e})") from None
    return CatalogFiles(catalog=found[CATALOG_NAME], filelist=found[FILELIST_NAME], summary=summary)
