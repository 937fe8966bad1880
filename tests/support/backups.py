"""Builders of the backup tests: a small system tree (`make_tree`), BackupOptions for a test (`options`), one
backup into a .tap (`backup`; `backed_up` with the machine's own layout capture, checked), and the name in a tar
header at a byte position (`header_name`)."""

from __future__ import annotations

import io
import os

from rescue.backup.job import BackupOptions, run_backup
from rescue.tape.simh import SimhTape
from tests.support import need_tool

RECORD = 20 * 512


def make_tree(root) -> None:
    for d in ("etc/ssh", "boot", "root", "home/ann", "var/www", "proc/1", "usr/share/doc"):
        os.makedirs(root / d)
    (root / "etc/hostname").write_text("web1\n")
    (root / "etc/ssh/sshd_config").write_text("PermitRootLogin no\n")
    (root / "boot/vmlinuz").write_bytes(os.urandom(3 * RECORD + 100))  # spans records
    (root / "root/.bashrc").write_text("alias l=ls\n")
    (root / "home/ann/notes.txt").write_text("tape on friday\n" * 100)
    (root / "var/www/index.html").write_text("<h1>hi</h1>\n")
    (root / "proc/1/status").write_text("not on tape\n")
    (root / "usr/share/doc/" / ("long-name-" * 12)).write_text("a name longer than 100 bytes\n")
    os.symlink("../etc/hostname", root / "var/hostname-link")
    os.link(root / "etc/hostname", root / "var/hostname-hard")


def options(tmp_path, **kw) -> BackupOptions:
    values = dict(
        record_size=RECORD,
        catalog_dir=str(tmp_path / "catalogs"),
        spool_dir=str(tmp_path / "spool"),
        layout={"format": "test"},
    )
    values.update(kw)
    return BackupOptions(**values)


def backup(tmp_path, tree, tap, **kw):
    with SimhTape(str(tap), write=True) as tape:
        return run_backup(tape, str(tree), options(tmp_path, **kw), out=io.StringIO())


def backed_up(tmp_path, tree, name: str = "set"):
    """TMP/NAME.tap holding one backup of `tree` whose label carries this machine's layout (layout=None: captured
    as `rescue backup` does); the backup must succeed."""
    need_tool("tar")
    tap = tmp_path / f"{name}.tap"
    result = backup(tmp_path, tree, tap, layout=None)
    assert result.exit_code == 0, result.warnings
    return tap


def header_name(archive: bytes, pos: int) -> str:
    """Name of the member whose first header block is at pos: the pax 'path' record, else the ustar name."""
    block = archive[pos : pos + 512]
    if block[156:157] == b"x":
        size = int(block[124:136].rstrip(b"\0 ").decode() or "0", 8)
        data = archive[pos + 512 : pos + 512 + size]
        for line in data.split(b"\n"):
            if b" path=" in line:
                return line.split(b" path=", 1)[1].decode()
        block = archive[pos + 512 + (size + 511) // 512 * 512 :][:512]
    name = block[0:100].rstrip(b"\0").decode()
    prefix = block[345:500].rstrip(b"\0").decode()
    return f"{prefix}/{name}" if prefix else name


def backup_config(tmp_path):
    """A rescue.conf for CLI backups of a test: 10 KiB records, catalog and spool directories under tmp_path."""
    conf = tmp_path / "rescue.conf"
    conf.write_text(
        f"[rescue]\nrecord_size = 10K\ncatalog_dir = {tmp_path / 'catalogs'}\nspool_dir = {tmp_path / 'spool'}\n"
    )
    return conf
