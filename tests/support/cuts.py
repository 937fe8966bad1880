"""Cut copies of a rescue set on every backend, for the damaged-tape tests of restore, verify and catalog rebuild.

A copy that stopped early (an interrupted `cp`, download or `dd`) ends at some byte: `cut_simh` cuts a .tap image
inside an archive record (in its data, in its leading length word, or in its trailing one), `cut_directory` cuts
the archive file of a directory volume, `cut_stream` the archive as a plain file.  Each returns the tape to read
and the number of archive bytes that are still there; `complete_before` says which members (from a catalog
computed independently of rescue's reader) lie wholly before that point.
"""

from __future__ import annotations

import os
import shutil
import struct
from typing import List, Tuple

from rescue.archive.member import Member
from tests.support.tapes import catalog_members, gnu_tar, make_tree, split_tape, write_tap

CUT_KINDS = ("data", "length", "trailer")
RS = 10240  # GNU tar's default record (-b 20): the test set's archive spans about 95 records
CUT_RECORD = 20  # inside data/d0x: members before it and after it


def cut_world(base) -> dict:
    """A tree, a rescue set of its GNU tar archive on a .tap (the catalog also kept as a file), its members."""
    tree = make_tree(str(base / "tree"))
    tar = gnu_tar(tree, str(base / "a.tar"), blocking=RS // 512, fmt="posix")
    tap = write_tap(str(base / "set.tap"), tar, RS)
    return {
        "tree": tree,
        "tap": tap,
        "catalog": tap + ".spool/catalog.jsonl.gz",
        "members": catalog_members(tar, RS),
    }


def cut_copy(world: dict, where: str, backend: str, record: int = CUT_RECORD, kind: str = "data"):
    """The set cut inside archive record `record` on `backend` ("simh", "dir", "stream"), as (device, kept)."""
    if backend == "simh":
        return cut_simh(world["tap"], os.path.join(where, "cut.tap"), record, kind)
    keep = record * RS + RS // 2
    if backend == "dir":
        return cut_directory(world["tap"], os.path.join(where, "vol"), keep)
    return cut_stream(world["tap"], os.path.join(where, "cut.tar"), keep)


def simh_records(tap: str) -> List[Tuple[int, int, int, int]]:
    """(tape file, record number in it, byte offset of its leading length word, data length) of every record."""
    with open(tap, "rb") as f:
        data = f.read()
    out, pos, file_no, rec = [], 0, 0, 0
    while pos + 4 <= len(data):
        (word,) = struct.unpack_from("<I", data, pos)
        if word == 0:
            file_no, rec, pos = file_no + 1, 0, pos + 4
            continue
        n = word & 0x0FFFFFFF
        out.append((file_no, rec, pos, n))
        rec += 1
        pos += 8 + n + (n & 1)
    return out


def cut_simh(tap: str, out: str, record: int, kind: str = "data", archive_file: int = 1) -> Tuple[str, int]:
    """A copy of `tap` cut inside archive record `record`; returns (image, archive bytes before the cut)."""
    (_, _, pos, n), *_ = [r for r in simh_records(tap) if r[0] == archive_file and r[1] == record]
    start = record * n  # the archive's records all have the set's record size
    if kind == "data":
        at, kept = pos + 4 + n // 2, start + n // 2
    elif kind == "length":
        at, kept = pos + 2, start
    else:  # "trailer": all the data, half the trailing length word
        at, kept = pos + 4 + n + 2, start + n
    with open(tap, "rb") as src, open(out, "wb") as dst:
        dst.write(src.read(at))
    return out, kept


def cut_directory(tap: str, outdir: str, keep: int, with_catalog: bool = False) -> Tuple[str, int]:
    """A directory volume of `tap` whose archive file holds only its first `keep` bytes; the catalog file is
    there only `with_catalog` (a copy that stopped in the archive file has none)."""
    scratch = outdir + ".pieces"
    os.makedirs(scratch, exist_ok=True)
    label, archive, catalog = split_tape(tap, scratch)
    os.makedirs(outdir)
    shutil.copy(label, os.path.join(outdir, "0-label.tar"))
    with open(archive, "rb") as src, open(os.path.join(outdir, "1-archive.tar"), "wb") as dst:
        dst.write(src.read(keep))
    if with_catalog:
        shutil.copy(catalog, os.path.join(outdir, "2-catalog.tar"))
    return outdir, keep


def cut_stream(tap: str, out: str, keep: int) -> Tuple[str, int]:
    """The archive of `tap` as a plain file holding only its first `keep` bytes."""
    scratch = out + ".pieces"
    os.makedirs(scratch, exist_ok=True)
    archive = split_tape(tap, scratch)[1]
    with open(archive, "rb") as src, open(out, "wb") as dst:
        dst.write(src.read(keep))
    return out, keep


def complete_before(members: List[Member], kept: int, record_size: int) -> List[Member]:
    """The members whose headers and data lie wholly in the first `kept` bytes of the archive (a member ends
    where the next one's first header starts)."""
    starts = [m.record * record_size + m.offset for m in members]
    return [m for m, nxt in zip(members, starts[1:]) if nxt <= kept]
