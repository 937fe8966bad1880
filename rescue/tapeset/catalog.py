"""The catalog: one JSON object per archive member, in tape order, gzip-compressed (`catalog.jsonl.gz`).

Line 1 is a header: {"format": "rescue-catalog", "version": 1, "backup_id": ..., "record_size": ...}.
Every further line is `Member.to_json()`: path, type, size, mode, ids, names, mtime_ns, linkname, xattr names,
sha256 and the position of the member's first header block (record number relative to the start of the archive
tape file, byte offset inside that record).  `zcat catalog.jsonl.gz | head` reads it.

Both directions stream: memory stays flat whatever the number of members.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from typing import IO, Iterator, Optional, Tuple, Union

from rescue.archive.member import Member
from rescue.errors import RescueError

FORMAT = "rescue-catalog"
VERSION = 1
CHECK_CHUNK = 1024 * 1024


class CatalogError(RescueError):
    """The catalog is unreadable or not a rescue catalog."""


class CatalogWriter:
    """Writes the header line, then one member per `add()`; `close()` finishes the gzip stream."""

    def __init__(self, target: Union[str, IO[bytes]], header: dict):
        # mtime=0 keeps the gzip bytes a function of the content alone.
        if isinstance(target, str):
            self._gz = gzip.GzipFile(target, "wb", compresslevel=6, mtime=0)
        else:
            self._gz = gzip.GzipFile(fileobj=target, mode="wb", compresslevel=6, mtime=0)
        self._out = io.TextIOWrapper(self._gz, encoding="utf-8", errors="surrogateescape", newline="\n")
        self.count = 0
        self._write({"format": FORMAT, "version": VERSION, **header})

    def _write(self, obj: dict) -> None:
        self._out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        self._out.write("\n")

    def add(self, member: Member) -> None:
        self._write(member.to_json())
        self.count += 1

    def close(self) -> None:
        self._out.flush()
        self._out.detach()
        self._gz.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_whole(path: str, name: Optional[str] = None) -> None:
    """Read the gzip stream to its end once, so a damaged catalog (a flipped byte, a cut) shows before a job
    relies on it: gzip's CRC-32 and length trailer catch what the JSON lines might not."""
    try:
        with gzip.GzipFile(path, "rb") as gz:
            while gz.read(CHECK_CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as e:
        raise CatalogError(f"{name or path}: damaged catalog ({e or type(e).__name__})") from None


def open_catalog(source: Union[str, IO[bytes]], name: Optional[str] = None) -> Tuple[dict, Iterator[Member]]:
    """Return the header and an iterator over the members, in tape order; messages call it `name` (default:
    the path)."""
    gz = gzip.GzipFile(source, "rb") if isinstance(source, str) else gzip.GzipFile(fileobj=source, mode="rb")
    text = io.TextIOWrapper(gz, encoding="utf-8", errors="surrogateescape", newline="\n")
    if name is None:
        name = source if isinstance(source, str) else "catalog"
    try:
        header = json.loads(text.readline() or "null")
    except (OSError, EOFError, ValueError, zlib.error) as e:
        raise CatalogError(f"{name}: not a rescue catalog ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CatalogError(f"{name}: not a rescue catalog (no '{FORMAT}' header line)")
    if header.get("version", 0) > VERSION:
        raise CatalogError(
            f"{name}: catalog version {header.get('version')} is newer than this rescue; upgrade it"
        )

    def members() -> Iterator[Member]:
        lineno = 1
        try:
            for lineno, line in enumerate(text, start=2):  # noqa: B007 (used in the error message)
                if line.strip():
                    yield Member.from_json(json.loads(line))
        except (OSError, EOFError, ValueError, KeyError, zlib.error) as e:
            raise CatalogError(f"{name}: damaged catalog at line {lineno} ({e})") from None

    return header, members()
