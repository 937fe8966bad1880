"""Copy one tape file to a plain file, as `mt fsf N; dd if=/dev/nst0 of=FILE bs=1M` does on a drive: the way out
to GNU tar for a tape rescue cannot read as a set (`rescue dump-file N -o FILE`, then `tar -tvf FILE`).

Contract: `dump_tape_file(tape, number, out)` rewinds, spaces to tape file `number` (None: stays where the tape
is, e.g. after `rescue mt fsf`), and writes every record up to the next filemark or the end of the data to `out`,
the records' bytes concatenated (a tar archive's records are whole tar blocks). An unreadable record is left
out, counted and named by its record number (`dd conv=noerror` does the same): GNU tar then finds the next
header itself. Returns a DumpResult; a tape file that is not there raises EndOfDataError.
"""

from __future__ import annotations

import dataclasses
from typing import IO, Callable, List, Optional

from rescue.tape.base import EndOfDataError, MediumError, Tape

# Larger than any record a drive or GNU tar writes (st returns a whole record when the buffer holds it).
BUFSIZE = 16 * 1024 * 1024
# A run of unreadable records this long ends the copy: a drive does not read on past a worn-out stretch forever.
MAX_BAD_IN_A_ROW = 64


@dataclasses.dataclass
class DumpResult:
    tape_file: Optional[int]
    records: int = 0
    bytes: int = 0
    bad_records: List[int] = dataclasses.field(default_factory=list)
    ended_by: str = "filemark"  # "filemark", "end of data" or "unreadable"


def dump_tape_file(
    tape: Tape, number: Optional[int], out: IO[bytes], on_bad: Optional[Callable[[int, str], None]] = None
) -> DumpResult:
    """Copy tape file `number` (None: the current one) to `out`; see the module docstring."""
    if number is not None:
        tape.rewind()
        if number:
            tape.space_files(number)
    result = DumpResult(tape_file=number)
    index, bad_run = 0, 0
    while True:
        try:
            record = tape.read_record(BUFSIZE)
        except EndOfDataError:
            if index == 0 and number is not None and number > 0:
                raise
            result.ended_by = "end of data"
            break
        except MediumError as e:
            result.bad_records.append(index)
            if on_bad is not None:
                on_bad(index, str(e))
            index += 1
            bad_run += 1
            if bad_run >= MAX_BAD_IN_A_ROW:
                result.ended_by = "unreadable"
                break
            continue
        if not record:
            break
        bad_run = 0
        out.write(record)
        result.records += 1
        result.bytes += len(record)
        index += 1
    return result
