"""The st backend at the ioctl boundary: exact request numbers and packed structs, errno turned into typed
errors, the ENOMEM retry.  fcntl.ioctl, os.read and os.write are replaced for the tape's descriptor only; the
descriptor itself is a real open file, so no device is touched."""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import struct

import pytest

from rescue.tape import mtio
from rescue.tape.base import (
    BeginningOfTapeError,
    DriveBusyError,
    EndOfDataError,
    EndOfMediumError,
    FilemarkError,
    MediumError,
    NoMediumError,
    UnsupportedError,
    WriteProtectedError,
)
from rescue.tape.st import FIRST_READ, StTape

LP64_GENERIC = struct.calcsize("l") == 8 and platform.machine() in ("x86_64", "aarch64", "riscv64", "s390x")


class FakeDrive:
    """What st answers: op codes are logged, errors injected per op, reads served from a list of records."""

    def __init__(self):
        self.fd = -1
        self.requests = []  # (request number, argument bytes)
        self.ops = []  # (mt_op, mt_count)
        self.op_errors = {}  # mt_op -> errno
        self.gstat_after_error = {}  # mt_op -> status bits st shows once that op failed
        self.gstat = mtio.GMT_ONLINE
        self.mtget = {"mt_type": mtio.MT_ISSCSI2, "mt_resid": 0, "mt_dsreg": 0, "mt_erreg": 0}
        self.fileno = 0
        self.blkno = 0
        self.positions = []  # successive MTIOCPOS answers
        self.records = []  # what successive reads find
        self.read_sizes = []
        self.write_result = None  # bytes accepted by write(); None = all
        self.write_errno = None
        self.written = []
        self.last_record = None

    def ioctl(self, request, arg):
        self.requests.append((request, bytes(arg)))
        if request == mtio.MTIOCTOP:
            op, count = mtio.MTOP.unpack(arg)
            self.ops.append((op, count))
            if op in self.op_errors:
                code = self.op_errors[op]
                self.gstat = self.gstat_after_error.get(op, self.gstat)
                raise OSError(code, os.strerror(code))
            if op == mtio.MTBSR and self.last_record is not None:
                self.records.insert(0, self.last_record)  # st moved past it; spacing back offers it again
                self.last_record = None
            return bytes(arg)
        if request == mtio.MTIOCGET:
            assert len(arg) == mtio.MTGET.size
            m = self.mtget
            return mtio.MTGET.pack(
                m["mt_type"], m["mt_resid"], m["mt_dsreg"], self.gstat, m["mt_erreg"], self.fileno, self.blkno
            )
        if request == mtio.MTIOCPOS:
            assert len(arg) == mtio.MTPOS.size
            return mtio.MTPOS.pack(self.positions.pop(0) if self.positions else 0)
        raise OSError(errno.ENOTTY, "not a tape")

    def read(self, n):
        self.read_sizes.append(n)
        if not self.records:
            return b""
        record = self.records.pop(0)
        self.last_record = record
        if isinstance(record, int):
            raise OSError(record, os.strerror(record))
        if len(record) > n:
            raise OSError(errno.ENOMEM, "Cannot allocate memory")  # st moved past the record
        return record

    def write(self, view):
        if self.write_errno:
            raise OSError(self.write_errno, os.strerror(self.write_errno))
        self.written.append(bytes(view))
        return len(view) if self.write_result is None else self.write_result


@pytest.fixture
def drive(mocker, tmp_path):
    """A FakeDrive answering for the descriptor of an StTape opened on a plain file."""
    fake = FakeDrive()
    path = tmp_path / "nst0"
    path.write_bytes(b"")
    fake.path = str(path)
    real_ioctl, real_read, real_write, real_open = fcntl.ioctl, os.read, os.write, os.open
    fake.open_errno = None

    def fake_open(p, flags, *args):
        if p == fake.path:
            fake.open_flags = flags
            if fake.open_errno:
                raise OSError(fake.open_errno, os.strerror(fake.open_errno), p)
            fake.fd = real_open(p, flags, *args)
            return fake.fd
        return real_open(p, flags, *args)

    mocker.patch("os.open", side_effect=fake_open)
    mocker.patch(
        "fcntl.ioctl",
        side_effect=lambda fd, req, arg, *r: (
            fake.ioctl(req, arg) if fd == fake.fd else real_ioctl(fd, req, arg, *r)
        ),
    )
    mocker.patch("os.read", side_effect=lambda fd, n: fake.read(n) if fd == fake.fd else real_read(fd, n))
    mocker.patch("os.write", side_effect=lambda fd, b: fake.write(b) if fd == fake.fd else real_write(fd, b))
    return fake


def test_request_numbers_and_packed_structs_are_those_of_the_header(drive):
    tape = StTape(drive.path, write=True)
    tape.tell()
    tape.status()
    requests = [r for r, _ in drive.requests]
    assert requests[0] == mtio.MTIOCTOP
    assert drive.requests[0][1] == struct.pack("@hi", mtio.MTSETBLK, 0)  # variable block mode at open
    assert mtio.MTIOCPOS in requests and mtio.MTIOCGET in requests
    if LP64_GENERIC:
        assert (mtio.MTIOCTOP, mtio.MTIOCGET, mtio.MTIOCPOS) == (0x40086D01, 0x80306D02, 0x80086D03)
        assert drive.requests[0][1] == b"\x14\x00\x00\x00\x00\x00\x00\x00"
    tape.close()


def test_open_is_non_blocking_then_blocking(drive):
    tape = StTape(drive.path)
    assert drive.open_flags & os.O_NONBLOCK
    assert not fcntl.fcntl(drive.fd, fcntl.F_GETFL) & os.O_NONBLOCK
    assert drive.ops == []  # reading does not change the block mode
    tape.close()


@pytest.mark.parametrize(
    "call, expected",
    [
        (lambda t: t.rewind(), (mtio.MTREW, 1)),
        (lambda t: t.offline(), (mtio.MTOFFL, 1)),
        (lambda t: t.load(), (mtio.MTLOAD, 1)),
        (lambda t: t.erase(), (mtio.MTERASE, 1)),
        (lambda t: t.space_files(3), (mtio.MTFSF, 3)),
        (lambda t: t.space_files(-2), (mtio.MTBSF, 2)),
        (lambda t: t.space_records(4), (mtio.MTFSR, 4)),
        (lambda t: t.space_records(-5), (mtio.MTBSR, 5)),
        (lambda t: t.seek(77), (mtio.MTSEEK, 77)),
        (lambda t: t.seek_eod(), (mtio.MTEOM, 1)),
        (lambda t: t.write_filemarks(2), (mtio.MTWEOF, 2)),
        (lambda t: t.set_block_size(512), (mtio.MTSETBLK, 512)),
        (lambda t: t.set_density(0x58), (mtio.MTSETDENSITY, 0x58)),
        (lambda t: t.set_compression(False), (mtio.MTCOMPRESSION, 0)),
        (lambda t: t.retension(), (mtio.MTRETEN, 1)),
        (lambda t: t.lock(), (mtio.MTLOCK, 1)),
        (lambda t: t.unlock(), (mtio.MTUNLOCK, 1)),
        (lambda t: t.mtop(mtio.MTFSFM, 3), (mtio.MTFSFM, 3)),
        (lambda t: t.mtop(mtio.MTWSM, 1), (mtio.MTWSM, 1)),
    ],
)
def test_each_operation_sends_its_mt_op(drive, call, expected):
    tape = StTape(drive.path)
    call(tape)
    assert drive.ops == [expected]
    tape.close()


def test_status_unpacks_mtget_and_mtiocpos(drive):
    drive.gstat = mtio.GMT_EOF | mtio.GMT_ONLINE | mtio.GMT_WR_PROT
    drive.mtget.update(mt_dsreg=(0x58 << 24) | 0, mt_erreg=3, mt_resid=1)
    drive.fileno, drive.blkno = 2, 0
    drive.positions = [1234]
    tape = StTape(drive.path)
    s = tape.status()
    assert (s.file_number, s.block_number, s.block_size, s.density, s.position) == (2, 0, 0, 0x58, 1234)
    assert (s.eof, s.bot, s.write_protected, s.online, s.eod) == (True, False, True, True, False)
    assert (s.soft_errors, s.partition, s.drive_type) == (3, 1, "SCSI 2 tape drive")
    assert s.gstat == drive.gstat
    tape.close()


def test_filemark_reads_empty_and_blank_tape_raises_end_of_data(drive):
    drive.records = [b"rec", b""]
    tape = StTape(drive.path)
    assert tape.read_record(1024) == b"rec"
    drive.gstat = mtio.GMT_ONLINE | mtio.GMT_EOF
    assert tape.read_record(1024) == b""
    drive.gstat = mtio.GMT_ONLINE | mtio.GMT_EOD
    with pytest.raises(EndOfDataError, match="nst0: end of data"):
        tape.read_record(1024)
    assert tape.records_read == 1
    tape.close()


def test_record_larger_than_the_buffer_is_read_again_with_a_larger_one(drive):
    big = bytes(range(256)) * 12  # 3072 bytes
    drive.records = [big, b"next"]
    tape = StTape(drive.path)
    assert tape.read_record(1024) == big
    assert drive.read_sizes == [1024, 2048, 4096]
    assert drive.ops == [(mtio.MTBSR, 1), (mtio.MTBSR, 1)]  # back over the record st skipped, twice
    assert tape.read_record(1024) == b"next"
    tape.close()


def test_a_large_request_starts_at_a_size_st_accepts_and_grows_only_as_needed(drive):
    # Found by the drill: a guest's st refused a 16 MiB read() with EINVAL.
    big = b"x" * (FIRST_READ + 1)
    drive.records = [b"label", big]
    tape = StTape(drive.path)
    assert tape.read_record(16 * 1024 * 1024) == b"label"
    assert tape.read_record(16 * 1024 * 1024) == big
    assert drive.read_sizes == [FIRST_READ, FIRST_READ, 2 * FIRST_READ]
    tape.close()


def test_record_beyond_the_largest_buffer_is_a_medium_error(drive):
    drive.records = [b"x" * 5000]
    tape = StTape(drive.path, max_record=4096)
    with pytest.raises(MediumError, match="larger than 4096 bytes"):
        tape.read_record(1024)
    tape.close()


def test_space_records_over_a_filemark_reports_the_residual(drive):
    drive.op_errors[mtio.MTFSR] = errno.EIO
    drive.gstat = mtio.GMT_ONLINE | mtio.GMT_EOF
    drive.positions = [10, 13]  # 2 records and the filemark went by
    tape = StTape(drive.path)
    with pytest.raises(FilemarkError) as caught:
        tape.space_records(5)
    assert caught.value.residual == 3
    tape.close()


@pytest.mark.parametrize(
    "op, call, code, gstat, error, words",
    [
        (
            mtio.MTFSF,
            lambda t: t.space_files(9),
            errno.EIO,
            mtio.GMT_ONLINE | mtio.GMT_EOD,
            EndOfDataError,
            "end of data",
        ),
        (
            mtio.MTBSF,
            lambda t: t.space_files(-9),
            errno.EIO,
            mtio.GMT_ONLINE | mtio.GMT_BOT,
            BeginningOfTapeError,
            "beginning",
        ),
        (
            mtio.MTBSR,
            lambda t: t.space_records(-9),
            errno.EIO,
            mtio.GMT_ONLINE | mtio.GMT_BOT,
            BeginningOfTapeError,
            "beginning",
        ),
        (mtio.MTREW, lambda t: t.rewind(), errno.ENOMEDIUM, 0, NoMediumError, "no tape in the drive"),
        (mtio.MTREW, lambda t: t.rewind(), errno.EIO, 0, NoMediumError, "offline or no tape"),
        (mtio.MTSEEK, lambda t: t.seek(5), errno.EIO, mtio.GMT_ONLINE, MediumError, "dmesg"),
        (
            mtio.MTWEOF,
            lambda t: t.write_filemarks(1),
            errno.ENOSPC,
            mtio.GMT_ONLINE,
            EndOfMediumError,
            "full",
        ),
        (
            mtio.MTWEOF,
            lambda t: t.write_filemarks(1),
            errno.EIO,
            mtio.GMT_ONLINE | mtio.GMT_EOT,
            EndOfMediumError,
            "full",
        ),
        (
            mtio.MTCOMPRESSION,
            lambda t: t.set_compression(True),
            errno.EINVAL,
            mtio.GMT_ONLINE,
            UnsupportedError,
            "refused",
        ),
    ],
)
def test_errno_becomes_a_typed_error_naming_the_device(drive, op, call, code, gstat, error, words):
    drive.op_errors[op] = code
    drive.gstat = gstat
    tape = StTape(drive.path)
    with pytest.raises(error, match=words) as caught:
        call(tape)
    assert str(caught.value).startswith(drive.path + ": ")
    tape.close()


@pytest.mark.parametrize(
    "code, write, error, words",
    [
        (errno.ENOENT, False, NoMediumError, "no such device"),
        (errno.EBUSY, False, DriveBusyError, "busy"),
        (errno.ENOMEDIUM, False, NoMediumError, "no tape"),
        (errno.EROFS, True, WriteProtectedError, "write protected"),
        (errno.EACCES, False, Exception, "permission denied"),
    ],
)
def test_open_errors_are_typed(drive, code, write, error, words):
    drive.open_errno = code
    with pytest.raises(error, match=words):
        StTape(drive.path, write=write)


def test_writes_are_one_record_each_and_errors_are_typed(drive):
    tape = StTape(drive.path, write=True)
    tape.write_record(b"a" * 100)
    tape.write_record(memoryview(b"b" * 50))
    assert drive.written == [b"a" * 100, b"b" * 50]
    drive.write_result = 10
    with pytest.raises(EndOfMediumError, match="10 of 100 bytes"):
        tape.write_record(b"c" * 100)
    drive.write_result = None
    drive.write_errno = errno.EACCES
    with pytest.raises(WriteProtectedError):
        tape.write_record(b"d")
    drive.write_errno = errno.ENOSPC
    with pytest.raises(EndOfMediumError):
        tape.write_record(b"e")
    tape.close()


def test_blank_check_without_the_eod_bit_is_end_of_data_and_the_tape_returns(drive):
    """Reading blank tape gives a bare EIO on some targets; spacing a file forward then fails with EOD."""
    drive.records = [errno.EIO]
    drive.op_errors[mtio.MTFSF] = errno.EIO
    drive.gstat_after_error[mtio.MTFSF] = mtio.GMT_ONLINE | mtio.GMT_EOD
    drive.positions = [7]
    tape = StTape(drive.path)
    with pytest.raises(EndOfDataError, match="blank tape"):
        tape.read_record()
    assert drive.ops[-2:] == [(mtio.MTFSF, 1), (mtio.MTSEEK, 7)]
    tape.close()


def test_an_io_error_before_more_data_stays_a_medium_error_and_the_tape_returns(drive):
    drive.records = [errno.EIO]
    drive.positions = [12]
    tape = StTape(drive.path)
    with pytest.raises(MediumError, match="dmesg"):
        tape.read_record()
    assert drive.ops[-2:] == [(mtio.MTFSF, 1), (mtio.MTSEEK, 12)]
    tape.close()


def test_seek_past_end_of_data_is_end_of_data(drive):
    drive.op_errors[mtio.MTSEEK] = errno.EIO
    drive.op_errors[mtio.MTFSF] = errno.EIO
    drive.gstat_after_error[mtio.MTFSF] = mtio.GMT_ONLINE | mtio.GMT_EOD
    tape = StTape(drive.path)
    with pytest.raises(EndOfDataError):
        tape.seek(50)
    tape.close()
