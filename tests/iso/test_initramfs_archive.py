"""The image builder's parts that need no packages: the newc cpio writer (read back by GNU cpio) and the
merged-/usr path mapping."""

from __future__ import annotations

import io
import stat
import subprocess

from iso.cpio import cpio_newc
from iso.packages import canonical
from tests.support import need_tool


def test_cpio_is_read_back_by_gnu_cpio_with_links_modes_and_device_nodes(tmp_path):
    need_tool("cpio")
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tool").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "usr" / "bin" / "tool").chmod(0o755)
    (root / "bin").symlink_to("usr/bin")
    (root / "odd").write_bytes(b"x" * 5)  # a size that needs padding
    buf = io.BytesIO()
    cpio_newc(root, buf, 1234567890, {"dev/console": (stat.S_IFCHR, 5, 1)})
    out = tmp_path / "out"
    out.mkdir()
    listing = subprocess.run(
        ["cpio", "-t", "-v", "--quiet"], input=buf.getvalue(), capture_output=True, check=True
    ).stdout.decode()
    subprocess.run(
        ["cpio", "-i", "-d", "--quiet", "--no-absolute-filenames", "--nonmatching", "dev/*"],
        input=buf.getvalue(),
        cwd=out,
        check=True,
    )
    assert (out / "usr" / "bin" / "tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (out / "usr" / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert (out / "bin").is_symlink() and str((out / "bin").readlink()) == "usr/bin"
    assert (out / "odd").read_bytes() == b"xxxxx"
    console = [line for line in listing.splitlines() if line.endswith(" dev/console")]
    assert console and console[0].startswith("crw-------") and "5,   1" in console[0]


def test_cpio_bytes_depend_only_on_the_tree(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("same\n")
    first, second = io.BytesIO(), io.BytesIO()
    cpio_newc(root, first, 0, {})
    (root / "a" / "b" / "f").touch()  # a new mtime must not matter
    cpio_newc(root, second, 0, {})
    assert first.getvalue() == second.getvalue()


def test_bookworm_paths_map_into_merged_usr():
    assert canonical("/bin/tar") == "usr/bin/tar"
    assert canonical("lib64/ld-linux-x86-64.so.2") == "usr/lib64/ld-linux-x86-64.so.2"
    assert canonical("sbin/../lib/x86_64-linux-gnu/libc.so.6") == "usr/lib/x86_64-linux-gnu/libc.so.6"
    assert canonical("usr/bin/python3") == "usr/bin/python3"
    assert canonical("etc/lvm/lvm.conf") == "etc/lvm/lvm.conf"
