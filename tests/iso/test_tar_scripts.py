"""iso/medium/backup-tar.sh and restore-tar.sh, the classic mt/tar workflow without python3: run with real GNU tar
against a file (or a directory of tape files) standing in for the tape, so no mt is needed."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support import need_tool
from tests.support.images import MEDIUM, ROOT

BACKUP = MEDIUM / "backup-tar.sh"
RESTORE = MEDIUM / "restore-tar.sh"


def sh(script: Path, *args: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    need_tool("bash", "tar")
    environ = {k: v for k, v in os.environ.items() if k != "TAPE"}
    environ.update(env or {})
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=environ, cwd=cwd)


@pytest.fixture
def system(tmp_path) -> Path:
    """A small root filesystem to back up."""
    root = tmp_path / "root"
    for d in ("etc", "var/www", "home/ann", "proc/1", "tmp", "boot", "lost+found"):
        (root / d).mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc" / "secret").write_text("s3cret\n")
    (root / "etc" / "secret").chmod(0o600)
    (root / "var" / "www" / "index.html").write_text("<h1>up</h1>\n")
    (root / "home" / "ann" / "notes with spaces.txt").write_text("hello\n")
    (root / "boot" / "vmlinuz").write_bytes(os.urandom(70000))
    (root / "proc" / "1" / "status").write_text("not to be saved\n")
    (root / "tmp" / "scratch").write_text("not to be saved\n")
    return root


def tar_members(archive: Path, blocks: int) -> list:
    out = subprocess.run(
        ["tar", "-t", "-f", str(archive), "-b", str(blocks)], capture_output=True, text=True, check=True
    ).stdout
    return out.splitlines()


def test_backup_writes_a_gnu_tar_tape_in_priority_order_without_pseudo_filesystems(system, tmp_path):
    tape = tmp_path / "tape.tar"
    filelist = tmp_path / "filelist.txt"
    p = sh(BACKUP, "-f", str(tape), "-C", str(system), "-b", "64", "-l", str(filelist))
    assert p.returncode == 0, p.stderr
    members = tar_members(tape, 64)
    tops = [m.split("/")[0] for m in members]
    assert tops[:3] == ["etc", "etc", "etc"] and "boot/vmlinuz" in members
    assert tops.index("boot") < tops.index("home") and tops.index("boot") < tops.index("var")
    assert not {"proc", "tmp", "lost+found"} & set(tops)
    # every write is one record of -b 64 blocks: the archive is whole records
    assert tape.stat().st_size % (64 * 512) == 0
    text = filelist.read_text()
    assert "home/ann/notes with spaces.txt" in text and "restore with tar -b 64" in text


def test_backup_refuses_to_overwrite_a_tape_holding_an_archive(system, tmp_path):
    tape = tmp_path / "tape.tar"
    assert sh(BACKUP, "-f", str(tape), "-C", str(system), "-l", str(tmp_path / "l1")).returncode == 0
    before = tape.read_bytes()
    p = sh(BACKUP, "-f", str(tape), "-C", str(system), "-l", str(tmp_path / "l2"))
    assert p.returncode == 2
    assert "already holds" in p.stderr and "--overwrite" in p.stderr
    assert tape.read_bytes() == before
    p = sh(BACKUP, "-f", str(tape), "-C", str(system), "-l", str(tmp_path / "l3"), "--overwrite")
    assert p.returncode == 0, p.stderr


def test_backup_refuses_a_rescue_tape_within_its_retention(system, tmp_path):
    tape = tmp_path / "label.tar"
    label = {"format": "rescue-label", "record_size": 262144, "retention_until": "2999-01-01"}
    write_tar(tape, {"rescue-label.json": json.dumps(label, indent=2)}, 512)
    p = sh(BACKUP, "-f", str(tape), "-C", str(system), "-l", str(tmp_path / "l"), "--overwrite")
    assert p.returncode == 2 and "kept until 2999-01-01" in p.stderr


def test_backup_dumps_mysql_with_credentials_from_an_option_file_only(system, tmp_path):
    """A stand-in dump tool on PATH records its arguments: the password must not be among them."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("mariadb-dump", "mysqldump"):
        fake = bindir / name
        fake.write_text('#!/bin/sh\necho "$@" > "$ARGS_LOG"\necho "-- dump of all databases"\n')
        fake.chmod(0o755)
    cnf = tmp_path / "backup.cnf"
    cnf.write_text("[client]\nuser=backup\npassword=very-secret\n")
    cnf.chmod(0o600)
    log = tmp_path / "args.log"
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "ARGS_LOG": str(log)}
    tape = tmp_path / "tape.tar"
    p = sh(BACKUP, "-f", str(tape), "-C", str(system), "-l", str(tmp_path / "l"), "-c", str(cnf), env=env)
    assert p.returncode == 0, p.stderr
    args = log.read_text()
    assert args.startswith(f"--defaults-extra-file={cnf}") and "very-secret" not in args
    members = tar_members(tape, 512)
    assert members[0].startswith("backup/") and "backup/mysql/databases.sql" in members


def test_restore_of_a_plain_tar_tape_restores_the_paths_asked(system, tmp_path):
    tape = tmp_path / "tape.tar"
    assert (
        sh(BACKUP, "-f", str(tape), "-C", str(system), "-b", "64", "-l", str(tmp_path / "l")).returncode == 0
    )
    target = tmp_path / "target"
    target.mkdir()
    # Paths in any order and with a leading slash: one tar pass reads the tape in its own order.
    p = sh(RESTORE, "-f", str(tape), "-C", str(target), "/var/www", "/etc")
    assert p.returncode == 0, p.stderr
    assert (target / "var" / "www" / "index.html").read_text() == "<h1>up</h1>\n"
    assert (target / "etc" / "secret").stat().st_mode & 0o777 == 0o600
    assert not (target / "home").exists()


def write_tar(path: Path, files: dict, blocks: int) -> None:
    """A tar file of text members, padded to whole records of `blocks` 512-byte blocks (as tape files are)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    record = blocks * 512
    path.write_bytes(raw + b"\0" * (-len(raw) % record))


def rescue_set(directory: Path, system: Path, record_size: int) -> None:
    """A rescue backup set as a directory of tape files (the layout of `rescue backup -f DIR`): the label with
    RESTORE.txt (file 0), the archive written by GNU tar with the label's blocking factor (file 1), the catalog
    (file 2)."""
    directory.mkdir()
    blocks = record_size // 512
    label = {
        "format": "rescue-label",
        "version": 1,
        "backup_id": "0b7e4c1e-1111-4222-8333-944455556666",
        "host": "web1",
        "created": "2026-11-26T01:00:00Z",
        "record_size": record_size,
        "archive_file": 1,
        "catalog_file": 2,
    }
    write_tar(
        directory / "0-label.tar",
        {
            "rescue-label.json": json.dumps(label, indent=2, sort_keys=True) + "\n",
            "RESTORE.txt": "tar -b ...\n",
        },
        blocks,
    )
    subprocess.run(
        ["tar", "-c", "-f", str(directory / "1-archive.tar"), "-b", str(blocks), "--format=posix"]
        + ["-C", str(system), "etc", "var", "home"],
        check=True,
    )
    write_tar(directory / "2-catalog.tar", {"filelist.txt": "etc/passwd\n", "summary.json": "{}\n"}, blocks)


def test_restore_reads_a_rescue_set_by_its_label(system, tmp_path):
    tapes = tmp_path / "usb"
    rescue_set(tapes, system, 32768)
    target = tmp_path / "target"
    target.mkdir()
    p = sh(RESTORE, "-f", str(tapes), "-C", str(target))
    assert p.returncode == 0, p.stderr
    assert "rescue tape of web1" in p.stderr and "tar -b 64" in p.stderr
    assert (target / "home" / "ann" / "notes with spaces.txt").read_text() == "hello\n"
    assert (target / "etc" / "passwd").exists()


def test_restore_prints_restore_txt_and_extracts_the_catalog(system, tmp_path):
    tapes = tmp_path / "usb"
    rescue_set(tapes, system, 65536)
    p = sh(RESTORE, "-f", str(tapes), "--label")
    assert p.returncode == 0 and p.stdout == "tar -b ...\n"
    catalog = tmp_path / "catalog"
    p = sh(RESTORE, "-f", str(tapes), "--catalog", str(catalog))
    assert p.returncode == 0, p.stderr
    assert (catalog / "filelist.txt").read_text() == "etc/passwd\n"


def test_restore_refuses_the_running_root_and_a_missing_target(system, tmp_path):
    tape = tmp_path / "tape.tar"
    assert sh(BACKUP, "-f", str(tape), "-C", str(system), "-l", str(tmp_path / "l")).returncode == 0
    p = sh(RESTORE, "-f", str(tape), "-C", "/")
    assert p.returncode == 2 and "refusing to restore over /" in p.stderr
    p = sh(RESTORE, "-f", str(tape), "-C", str(tmp_path / "nowhere"))
    assert p.returncode == 2 and "no such directory" in p.stderr
    p = sh(RESTORE, "-f", str(tmp_path / "no-tape"))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1


def test_restore_passes_on_tar_failing_on_a_damaged_archive(system, tmp_path):
    tape = tmp_path / "tape.tar"
    assert sh(BACKUP, "-f", str(tape), "-C", str(system), "-l", str(tmp_path / "l")).returncode == 0
    data = bytearray(tape.read_bytes())
    data[600:1600] = b"\xff" * 1000  # the first member's data and the next header
    tape.write_bytes(bytes(data))
    target = tmp_path / "target"
    target.mkdir()
    p = sh(RESTORE, "-f", str(tape), "-C", str(target))
    assert p.returncode == 2, p.stderr


def test_scripts_are_shellcheck_clean():
    need_tool("shellcheck")
    scripts = [str(BACKUP), str(RESTORE), str(MEDIUM / "init")]
    p = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


def tap_to_directory(tap: Path, directory: Path) -> list:
    """Split a SIMH .tap image into one file per tape file (0-file.tar ...); returns each file's record sizes."""
    directory.mkdir()
    data = tap.read_bytes()
    pos, number, sizes, current, out = 0, 0, [], [], io.BytesIO()
    while pos + 4 <= len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if length == 0xFFFFFFFF:  # end of medium
            break
        if length == 0:  # tape mark: the file ends
            (directory / f"{number}-file.tar").write_bytes(out.getvalue())
            sizes.append(current)
            number, current, out = number + 1, [], io.BytesIO()
            continue
        size = length & 0x7FFFFFFF
        out.write(data[pos : pos + size])
        current.append(size)
        pos += size + (size & 1) + 4  # data padded to even length, then the trailing length word
    return sizes


def test_restore_reads_a_set_written_by_rescue_backup(system, tmp_path):
    """The real label writer: `rescue backup` to a .tap image, its tape files laid out as a directory set,
    restored by restore-tar.sh with GNU tar alone."""
    tap = tmp_path / "night.tap"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TAPE", None)
    backup = [sys.executable, "-m", "rescue", "-f", str(tap), "backup", "--config", "/dev/null", "--no-db"]
    backup += ["--catalog-dir", str(tmp_path / "catalogs"), "--record-size", "64K", str(system)]
    p = subprocess.run(backup, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    sizes = tap_to_directory(tap, tmp_path / "set")
    assert set(sizes[1]) == {65536}  # the archive: every record of the label's size
    target = tmp_path / "target"
    target.mkdir()
    p = sh(RESTORE, "-f", str(tmp_path / "set"), "-C", str(target))
    assert p.returncode == 0, p.stderr
    assert "record size 65536 (tar -b 128)" in p.stderr
    assert (target / "home" / "ann" / "notes with spaces.txt").read_text() == "hello\n"
    assert (target / "etc" / "secret").stat().st_mode & 0o777 == 0o600
    assert not (target / "proc" / "1" / "status").exists()  # excluded (the mount point itself may stay)
    catalog = tmp_path / "catalog"
    assert sh(RESTORE, "-f", str(tmp_path / "set"), "--catalog", str(catalog)).returncode == 0
    assert "etc/passwd" in (catalog / "filelist.txt").read_text()


def test_restore_lists_the_archive_without_writing(system, tmp_path):
    tapes = tmp_path / "usb"
    rescue_set(tapes, system, 32768)
    p = sh(RESTORE, "-f", str(tapes), "--list", "etc")
    assert p.returncode == 0, p.stderr
    names = [line.split()[-1] for line in p.stdout.splitlines()]
    assert sorted(names) == ["etc/", "etc/passwd", "etc/secret"]
    assert not (tmp_path / "etc").exists()
