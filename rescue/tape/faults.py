"""A fault-injecting wrapper around any Tape, for tests of what the jobs do when the tape misbehaves.

- `bad_blocks`: reading a record at one of these logical blocks raises MediumError and moves past it (as a drive
  reports an unreadable block; the reader may go on after it).
- `eom_after`: a write that would bring the bytes written through this wrapper past this count raises
  EndOfMediumError and writes nothing (the tape is full).
- `offline_after`: every operation after this many raises NoMediumError, as a drive that went offline
  (unplugged, powered off, tape ejected by hand).

Everything else is passed through to the wrapped tape.
"""

from __future__ import annotations

from typing import Iterable, Optional

from rescue.tape.base import EndOfMediumError, MediumError, NoMediumError, Tape, TapeStatus


class FaultyTape(Tape):
    def __init__(
        self,
        tape: Tape,
        *,
        bad_blocks: Iterable[int] = (),
        eom_after: Optional[int] = None,
        offline_after: Optional[int] = None,
    ):
        self.tape = tape
        self.name = tape.name
        self.kind = tape.kind
        self.can_seek = tape.can_seek
        self.bad_blocks = set(bad_blocks)
        self.eom_after = eom_after
        self.offline_after = offline_after
        self.operations = 0
        self.bytes_written = 0

    @property
    def records_read(self) -> int:  # type: ignore[override]
        return self.tape.records_read

    @property
    def seeks(self) -> int:  # type: ignore[override]
        return self.tape.seeks

    def _op(self) -> None:
        self.operations += 1
        if self.offline_after is not None and self.operations > self.offline_after:
            raise NoMediumError(f"{self.name}: drive offline (no medium); check the drive and its cable")

    def read_record(self, bufsize: int = 256 * 1024) -> bytes:
        self._op()
        if self.bad_blocks and self.tape.tell() in self.bad_blocks:
            block = self.tape.tell()
            self.tape.space_records(1)
            raise MediumError(f"{self.name}: medium error reading block {block}; the tape may be damaged")
        return self.tape.read_record(bufsize)

    def write_record(self, data) -> None:
        self._op()
        n = memoryview(data).nbytes
        if self.eom_after is not None and self.bytes_written + n > self.eom_after:
            raise EndOfMediumError(f"{self.name}: end of medium: the tape is full; continue on another tape")
        self.tape.write_record(data)
        self.bytes_written += n

    def write_filemarks(self, count: int = 1) -> None:
        self._op()
        self.tape.write_filemarks(count)

    def space_files(self, count: int) -> None:
        self._op()
        self.tape.space_files(count)

    def space_records(self, count: int) -> None:
        self._op()
        self.tape.space_records(count)

    def seek(self, block: int) -> None:
        self._op()
        self.tape.seek(block)

    def tell(self) -> int:
        self._op()
        return self.tape.tell()

    def rewind(self) -> None:
        self._op()
        self.tape.rewind()

    def seek_eod(self) -> None:
        self._op()
        self.tape.seek_eod()

    def status(self) -> TapeStatus:
        self._op()
        return self.tape.status()

    def offline(self) -> None:
        self._op()
        self.tape.offline()

    def load(self) -> None:
        self._op()
        self.tape.load()

    def erase(self) -> None:
        self._op()
        self.tape.erase()

    def set_block_size(self, size: int) -> None:
        self._op()
        self.tape.set_block_size(size)

    def set_compression(self, on: bool) -> None:
        self._op()
        self.tape.set_compression(on)

    def close(self) -> None:
        self.tape.close()
