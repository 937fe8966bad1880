"""Streaming reader of tar archives from a tape: `ArchiveReader` yields one `Entry` per member, in tape order.

Contract:
- Reads any archive GNU tar writes (v7, ustar, oldgnu, gnu, pax, sparse 0.0/0.1/1.0; see rescue.archive.parse)
  and bsdtar's pax, from records of any size.  Memory stays constant: only the current member is held, never a
  list of members (unlike tarfile.TarFile.members).
- `Entry.member` is a Member whose `record`/`offset` give where its first header block (the pax, 'L' or 'K' header
  when there is one) starts, relative to the archive start; `sha256` stays None (extraction computes it).
- An entry's data is read with `readinto`/`read`, or as views into the tape records without a copy with
  `chunks(limit)`/`take_all()`, or dropped with `skip`; whatever the caller leaves is skipped when iteration goes
  on.  `Entry.acls` holds GNU tar's SCHILY.acl.access/default texts.  Data of a sparse member is presented as stored: the data regions one after the
  other, in the order of `member.sparse` ((offset, length) pairs); `member.size` is the file's apparent size.
  Extraction writes each region at its offset and leaves the rest as holes.
- A damaged header (bad checksum) or an unreadable record does not end the read: the reader skips to the next
  valid header, as GNU tar does ("Skipping to next header"), and reports the member whose data was hit and the
  span of lost members (`warnings`, `lost_ranges`).  Data that an unreadable record took away raises
  `DamagedMemberError` from the entry's read calls.
- An archive that ends before its end-of-archive blocks raises `TruncatedArchiveError`, naming the last complete
  member.
- `seek_record(record, offset)` makes the next iteration start at the header at that position (the restore
  planner jumps between runs of selected members this way).
- The tape is at archive record `start_record` when the reader is created (normally 0, the start of the archive's
  tape file).  `bufsize` is what read_record asks for (the device may return more or less).
- Reading stops at the end-of-archive blocks (or a filemark, or end of data); the tape is then left where the
  last record read ended, which may be before the tape file's filemark.
- Unknown pax keywords and typeflags are reported once each; a leading "/" is removed (reported once).
"""

from __future__ import annotations

from typing import Callable, Iterator, List, Optional, Tuple

from rescue.archive import assemble, parse
from rescue.archive import tarformat as tf
from rescue.archive.entry import Entry
from rescue.archive.record_reader import BadRecordError, RecordReader
from rescue.errors import RescueError

# Largest extended header ('x', 'g', 'L', 'K') accepted; a bigger claim is hostile or garbage.
MAX_EXTENDED_HEADER = 16 * 1024 * 1024
MAX_SPARSE_MAP = 64 * 1024 * 1024  # a GNU sparse 1.0 map (about 3 million regions)
_EXTENDED = (tf.XHDTYPE, tf.SOLARIS_XHDTYPE, tf.XGLTYPE, tf.GNUTYPE_LONGNAME, tf.GNUTYPE_LONGLINK)
# Typeflags a resync accepts as the next header (a random data block with a valid checksum is rarer still).
_RESYNC_TYPES = set(tf.TYPEFLAG_TO_TYPE) | set(_EXTENDED) | {tf.GNUTYPE_MULTIVOL, tf.GNUTYPE_VOLHDR}

Warning = Tuple[str, str]


class TruncatedArchiveError(RescueError):
    """The archive ends in the middle of a member or before its end-of-archive blocks."""


class DamagedMemberError(RescueError):
    """A member's data was lost in an unreadable record; the reader resyncs at the next header."""


class _Gathered:
    """The headers read so far for the next member: its pax records, GNU long names, and where it starts."""

    __slots__ = ("local", "longname", "longlink", "start")

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.local: List[Tuple[str, bytes]] = []
        self.longname: Optional[bytes] = None
        self.longlink: Optional[bytes] = None
        self.start: Optional[Tuple[int, int]] = None


class ArchiveReader:
    def __init__(
        self,
        tape,
        *,
        start_record: int = 0,
        on_warning: Optional[Callable[[str, str], None]] = None,
        bufsize: int = tf.DEFAULT_RECORD_SIZE,
    ):
        self.tape = tape
        self.name = getattr(tape, "name", "archive")
        self._rr = RecordReader(tape, start_record=start_record, bufsize=bufsize)
        self._on_warning = on_warning
        self.warnings: List[Warning] = []
        self.lost_ranges: List[Tuple[Tuple[int, int], Tuple[int, int]]] = []  # [(from, to)) positions skipped
        self._global: List[Tuple[str, bytes]] = []  # pax 'g' records, in force for every later member
        self._current: Optional[Entry] = None
        self._last_good = ""  # path of the last member read completely
        self._resync_from: Optional[Tuple[int, int]] = None
        self._skip_hint = 0  # bytes of a damaged member's data presumed left after the unreadable record
        self._ended = False
        self._warned_keys: set = set()
        self._warned_absolute = False
        self._map_bytes = 0
        self._sought = False
        self._scan_start: Optional[Tuple[int, int]] = None  # first header of the member being read
        self._scan_name: Optional[str] = None  # its name, once an extended header gave it

    @property
    def records_read(self) -> int:
        return self._rr.records_read

    # -- reporting

    def _warn(self, where: str, message: str) -> None:
        self.warnings.append((where, message))
        if self._on_warning is not None:
            self._on_warning(where, message)

    def _at(self, pos: Tuple[int, int]) -> str:
        return f"record {pos[0]} offset {pos[1]}"

    def _truncated(self, entry: Optional[Entry]) -> TruncatedArchiveError:
        pos = self._rr.end_position()
        where = f" in the data of '{entry.member.path}'" if entry is not None else ""
        last = f"'{self._last_good}'" if self._last_good else "none"
        self._ended = True
        why = (
            "the recorded data ends inside that record: the image or file was cut short"
            if self._rr.cut
            else "the tape file ends early: wrong record position, or a damaged or incomplete backup"
        )
        return TruncatedArchiveError(
            f"{self.name}: archive truncated at {self._at(pos)}{where}; last complete member: {last} ({why})"
        )

    def _data_lost(self, entry: Entry, err: BadRecordError) -> DamagedMemberError:
        path = entry.member.path
        rr = self._rr
        self._begin_resync((err.record, 0))
        left = entry._data_end - rr.consumed
        pad = entry._pad
        entry._closed = True
        entry._remaining = entry._pad = 0
        if left <= 0:
            # Only the padding after the data was in the record: the member itself is whole.
            self._skip_hint = 0
            self._last_good = path
            return DamagedMemberError(f"{self.name}: unreadable record {err.record} after '{path}'")
        self._warn(path, f"data lost in unreadable record {err.record}; not restored")
        # Presume the lost record had the size of the last good one: the member's data then goes on past it.
        lost = rr.bufsize if rr.last_size is None else rr.last_size
        rest = left + pad - lost
        self._skip_hint = rest if rest > 0 else 0
        return DamagedMemberError(f"{self.name}: {path}: data lost in unreadable record {err.record}")

    def _begin_resync(self, pos: Tuple[int, int]) -> None:
        if self._resync_from is None:
            self._resync_from = pos

    def _end_resync(self, pos: Tuple[int, int], next_name: Optional[str], bare: bool = False) -> None:
        start = self._resync_from
        self._resync_from = None
        if start is None:
            return
        self.lost_ranges.append((start, pos))
        after = f"after '{self._last_good}'" if self._last_good else "at the start"
        upto = f"up to '{next_name}'" if next_name is not None else "up to the end of the archive"
        self._warn(
            self._at(start),
            f"skipped damaged archive from {self._at(start)} to {self._at(pos)}: "
            f"members {after} {upto} lost (a catalog names them)",
        )
        if bare and next_name is not None:
            self._warn(
                next_name, "restored from its plain header: its extended (pax) header may have been lost"
            )

    # -- iteration

    def __iter__(self) -> Iterator[Entry]:
        while True:
            if self._current is not None:
                self._finish(self._current)
                self._current = None
            entry = self._next_entry()
            if entry is None:
                return
            self._current = entry
            yield entry

    def seek_record(self, record: int, offset: int = 0) -> None:
        """Make the next iteration start at the header at (record, offset)."""
        if self._current is not None:
            self._current._closed = True
            self._current = None
        self._resync_from = None
        self._skip_hint = 0
        self._ended = False
        self._sought = True  # from now on, nothing where a header should be is a truncation
        self._rr.seek_record(record, offset)

    def _finish(self, entry: Entry) -> None:
        """Skip what is left of an entry's data and padding."""
        if entry._closed:
            return
        entry._closed = True
        want = entry._remaining + entry._pad
        try:
            got = self._rr.skip(want)
        except BadRecordError as e:
            self._data_lost(entry, e)
            return
        if got < want:
            raise self._truncated(entry)
        entry._remaining = entry._pad = 0
        self._last_good = entry.member.path

    def _read_exact(self, n: int, what: str) -> bytes:
        data = self._rr.read(n)
        if len(data) < n:
            raise self._truncated(None)
        return data

    def _next_entry(self) -> Optional[Entry]:
        """The next member; an unreadable record met inside extended headers, sparse maps or labels makes the
        reader resync after it, naming the member when its name was already read."""
        while True:
            self._scan_start = None
            self._scan_name = None
            try:
                return self._next_entry_once()
            except BadRecordError as e:
                if self._resync_from is None:  # one warning per damaged stretch, however many records it has
                    where = self._scan_name if self._scan_name else self._at((e.record, 0))
                    self._warn(where, f"unreadable record {e.record}; skipping to next header")
                self._begin_resync(self._scan_start or (e.record, 0))

    def _next_entry_once(self) -> Optional[Entry]:
        if self._ended:
            return None
        self._skip_after_damage()
        g = _Gathered()
        while True:
            got = self._next_block(g)
            if got is None:
                return None
            pos, block = got
            try:
                hdr = parse.parse_header(block)
            except parse.HeaderError:
                if self._resync_from is None:
                    self._warn(self._at(pos), "damaged header; skipping to next header")
                    self._begin_resync(pos if g.start is None else g.start)
                    g.reset()
                continue
            t = hdr.typeflag
            if self._resync_from is not None and t not in _RESYNC_TYPES:
                continue
            if g.start is None:
                g.start = self._scan_start = pos
            if t in _EXTENDED:
                self._extended(hdr, pos, g)
                continue
            if t == tf.GNUTYPE_VOLHDR:
                # A volume label (GNU tar -V): not a member.
                self._rr.skip(tf.padded(max(hdr.size, 0)))
                g.reset()
                continue
            entry = self._make_entry(hdr, g.local, g.longname, g.longlink, g.start)
            if entry is not None:
                return entry
            g.reset()

    def _skip_after_damage(self) -> None:
        """Skip what a damaged member's data presumably still holds after its unreadable record."""
        if self._skip_hint:
            hint, self._skip_hint = self._skip_hint, 0
            try:
                self._rr.skip(hint)
            except BadRecordError:
                pass

    def _next_block(self, g: _Gathered) -> Optional[Tuple[Tuple[int, int], bytes]]:
        """(position, block) of the next block that may be a header; None at the end of the archive.  An
        unreadable record starts a resync (one warning per stretch); two zero blocks end the archive, a lone one
        is skipped with a warning."""
        rr = self._rr
        while True:
            pos = rr.position()
            try:
                block = rr.read(tf.BLOCKSIZE)
            except BadRecordError as e:
                if self._resync_from is None:
                    self._warn(self._at((e.record, 0)), "unreadable record; skipping to next header")
                self._begin_resync(pos if g.start is None else g.start)
                g.reset()
                continue
            if len(block) < tf.BLOCKSIZE:
                return self._short_block(pos, block, g)
            if not parse.is_zero_block(block):
                return pos, block
            if self._resync_from is not None:
                continue
            if g.start is not None:
                self._warn(self._at(g.start), "extended header not followed by a member; ignored")
                g.reset()
            nxt_pos = rr.position()
            try:
                nxt = rr.read(tf.BLOCKSIZE)
            except BadRecordError:
                nxt = b""
            if len(nxt) < tf.BLOCKSIZE or parse.is_zero_block(nxt):
                if len(nxt) < tf.BLOCKSIZE:
                    self._warn(self._at(pos), "A lone zero block ends the archive")
                self._ended = True
                return None
            self._warn(self._at(pos), "A lone zero block; going on")
            return nxt_pos, nxt

    def _short_block(self, pos: Tuple[int, int], block: bytes, g: _Gathered) -> None:
        """The tape file ended where a header should be: the end of a damaged stretch, an empty tape file, or a
        truncated archive."""
        rr = self._rr
        self._ended = True
        if self._resync_from is not None:
            self._end_resync(pos, None)
            return None
        if g.start is None and not block and rr.consumed == 0 and not self._sought and not rr.cut:
            return None  # an empty tape file holds no members
        raise self._truncated(None)

    def _extended(self, hdr, pos: Tuple[int, int], g: _Gathered) -> None:
        """Read an extended header ('x', 'g', 'X', 'L', 'K') into `g` (a 'g' into the global records)."""
        t = hdr.typeflag
        if hdr.size > MAX_EXTENDED_HEADER or hdr.size < 0:
            self._warn(self._at(pos), f"extended header of {hdr.size} bytes refused as damaged")
            self._begin_resync(g.start)
            g.reset()
            return
        data = self._read_exact(tf.padded(hdr.size), "extended header")[: hdr.size]
        if t == tf.GNUTYPE_LONGNAME:
            g.longname = data.split(b"\0", 1)[0]
            self._scan_name = g.longname.decode("utf-8", "surrogateescape")
            return
        if t == tf.GNUTYPE_LONGLINK:
            g.longlink = data.split(b"\0", 1)[0]
            return
        try:
            records = parse.parse_pax(data)
        except parse.HeaderError as e:
            self._warn(self._at(pos), f"{e}; extended header ignored")
            records = []
        if t == tf.XGLTYPE:
            self._apply_global(records)
            g.start = None
            return
        g.local.extend(records)
        for key, value in records:
            if key in ("path", "GNU.sparse.name"):
                self._scan_name = value.decode("utf-8", "surrogateescape")

    def _apply_global(self, records: List[Tuple[str, bytes]]) -> None:
        # A 'g' record with an empty value removes the keyword (pax spec).
        for key, value in records:
            self._global = [(k, v) for k, v in self._global if k != key]
            if value:
                self._global.append((key, value))

    def _make_entry(self, hdr, local, longname, longlink, start) -> Optional[Entry]:
        oldgnu_map = None
        realsize = 0
        try:
            if hdr.typeflag == tf.GNUTYPE_SPARSE:
                oldgnu_map, extended, realsize = parse.parse_oldgnu_sparse(hdr.block)
                while extended:
                    block = self._read_exact(tf.BLOCKSIZE, "sparse header")
                    more, extended = parse.parse_sparse_extension(block)
                    oldgnu_map.extend(more)
            records = self._global + local if self._global else local
            parsed = assemble.build_member(hdr, records, longname, longlink, oldgnu_map, realsize)
        except parse.HeaderError as e:
            name = (longname or hdr.name).decode("utf-8", "surrogateescape")
            self._warn(name or self._at(start), f"{e}; member skipped")
            self._begin_resync(start)
            return None
        member = parsed.member
        if self._resync_from is not None:
            self._end_resync(start, member.path, bare=not local and longname is None)
        for key in parsed.unknown_keys:
            if key not in self._warned_keys:
                self._warned_keys.add(key)
                self._warn(member.path, f"unknown extended header keyword or type '{key}' ignored")
        if parsed.absolute and not self._warned_absolute:
            self._warned_absolute = True
            self._warn(member.path, "Removing leading '/' from member names")
        member.record, member.offset = start
        data_size = parsed.data_size
        if data_size < 0:
            self._warn(member.path, "negative size; member skipped")
            return None
        pad = tf.padded(data_size) - data_size
        if parsed.skip_reason is not None:
            self._warn(member.path, parsed.skip_reason)
            entry = Entry(self, member, parsed.acls, data_size, pad)
            self._finish(entry)
            return None
        if parsed.sparse_format == "1.0":
            self._scan_name = member.path
            self._map_bytes = 0
            try:
                sparse, used = self._read_sparse10_map(data_size)
                parse.check_sparse_map(sparse, member.size, data_size - used)
            except parse.HeaderError as e:
                self._warn(member.path, f"{e}; member skipped")
                self._finish(Entry(self, member, parsed.acls, data_size - self._map_bytes, pad))
                return None
            data_size -= used
            member.sparse = sparse
        return Entry(self, member, parsed.acls, data_size, pad)

    def _read_sparse10_map(self, data_size: int) -> Tuple[list, int]:
        """Read the GNU sparse 1.0 map at the start of the data (whole blocks) and return (map, bytes used)."""
        buf = bytearray()
        lines = 0
        need = None
        limit = min(data_size, MAX_SPARSE_MAP)
        while True:
            if len(buf) + tf.BLOCKSIZE > limit:
                raise parse.HeaderError("GNU sparse 1.0 map longer than the member or the limit")
            block = self._read_exact(tf.BLOCKSIZE, "sparse map")
            buf += block
            self._map_bytes = len(buf)
            lines += block.count(b"\n")
            if need is None and lines:
                try:
                    need = 1 + 2 * int(buf[: buf.index(b"\n")])
                except ValueError:
                    raise parse.HeaderError("malformed GNU sparse 1.0 map") from None
            if need is not None and lines >= need:
                found = parse.parse_sparse10_map(bytes(buf))
                if found is None:
                    raise parse.HeaderError("malformed GNU sparse 1.0 map")
                return found
