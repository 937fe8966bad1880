"""What extraction restores besides data: owners (numeric, or by name through the target's own passwd),
setuid after chown, file capabilities and SELinux labels, ACLs from GNU tar's text form, directory modes and
mtimes after their contents, checksums, and what happens to things already in the target."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile

import pytest

from rescue.archive import xattrs as xa
from rescue.archive.parallel_extract import open_extractor
from rescue.archive.reader import ArchiveReader, TruncatedArchiveError
from rescue.tape.stream import StreamTape
from tests.support import need, need_tool
from tests.support.archive import extract_each

pytestmark = pytest.mark.usefixtures("extract_mode")

IS_ROOT = os.geteuid() == 0
# A file capability: cap_net_bind_service=ep (VFS_CAP_REVISION_2, <linux/capability.h>).
CAP_NET_BIND = bytes.fromhex("0100000200040000000000000000000000000000")


def member(name, data=b"", **kw):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_600_000_000
    for k, v in kw.items():
        setattr(info, k, v)
    return info, data


def archive_of(path, members):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def extract_all(archive, dest, expected=None, **kw):
    os.makedirs(dest, exist_ok=True)
    with StreamTape(str(archive)) as tape, open_extractor(str(dest), **kw) as x:
        results, members = extract_each(x, ArchiveReader(tape), expected)
    for path, mem in members.items():
        results[path + "#sha"] = mem.sha256
    return results, x.warnings


def test_setuid_survives_chown_and_capabilities_survive_the_data(tmp_path):
    need(IS_ROOT, "needs root to give files away and set security.* xattrs")
    a = archive_of(
        tmp_path / "a.tar",
        [
            member(
                "bin/ping",
                b"\x7fELF" + b"\0" * 5000,
                mode=0o4755,
                uid=1234,
                gid=2345,
                pax_headers={
                    "SCHILY.xattr.security.capability": CAP_NET_BIND.decode("latin-1"),
                    "SCHILY.xattr.security.selinux": "system_u:object_r:ping_exec_t:s0\0",
                },
            ),
            member("sgid-dir", type=tarfile.DIRTYPE, mode=0o2775, uid=5, gid=6),
        ],
    )
    # tarfile encodes str values as UTF-8; check what we meant is what is stored.
    results, warnings = extract_all(a, tmp_path / "t")
    assert warnings == []
    st = os.stat(tmp_path / "t" / "bin" / "ping")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o4755, 1234, 2345)
    cap = os.getxattr(tmp_path / "t" / "bin" / "ping", "security.capability")
    assert cap == CAP_NET_BIND.decode("latin-1").encode("utf-8")
    label = os.getxattr(tmp_path / "t" / "bin" / "ping", "security.selinux")
    assert label == b"system_u:object_r:ping_exec_t:s0\0"
    st = os.stat(tmp_path / "t" / "sgid-dir")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o2775, 5, 6)


def test_real_capability_bytes_round_trip_through_gnu_tar(tmp_path):
    need(IS_ROOT, "needs root to set security.capability")
    need_tool("tar")
    src = tmp_path / "src"
    src.mkdir()
    (src / "ping").write_bytes(b"x" * 100)
    os.chown(src / "ping", 0, 0)
    os.setxattr(src / "ping", "security.capability", CAP_NET_BIND)
    os.chmod(src / "ping", 0o4711)
    subprocess.run(
        [
            "tar",
            "--format=posix",
            "--xattrs",
            "--xattrs-include=*",
            "-cf",
            str(tmp_path / "a.tar"),
            "-C",
            str(src),
            "ping",
        ],
        check=True,
    )
    extract_all(tmp_path / "a.tar", tmp_path / "t")
    assert os.getxattr(tmp_path / "t" / "ping", "security.capability") == CAP_NET_BIND
    assert stat.S_IMODE(os.stat(tmp_path / "t" / "ping").st_mode) == 0o4711


def test_acls_from_gnu_tar_text_become_acl_xattrs(tmp_path):
    need_tool("getfacl")
    a = archive_of(
        tmp_path / "a.tar",
        [
            member(
                "f",
                b"data",
                mode=0o660,
                pax_headers={
                    "SCHILY.acl.access": "user::rw-\nuser:1234:rw-\ngroup::r--\nmask::rw-\nother::---\n"
                },
            ),
            member(
                "d",
                type=tarfile.DIRTYPE,
                mode=0o755,
                pax_headers={
                    "SCHILY.acl.access": "user::rwx\ngroup::r-x\nother::r-x\n",
                    "SCHILY.acl.default": "user::rwx\ngroup::r-x\ngroup:4321:r-x\nmask::r-x\nother::---\n",
                },
            ),
            member("d/inside", b"x", mode=0o600),
            # star / old GNU tar form: the numeric id follows the name
            member(
                "star",
                b"y",
                mode=0o640,
                pax_headers={
                    "SCHILY.acl.access": "user::rw-,user:nosuchuser:r--:4242,group::r--,mask::r--,other::---"
                },
            ),
        ],
    )
    results, warnings = extract_all(a, tmp_path / "t")
    assert warnings == []
    acl = subprocess.run(
        ["getfacl", "-n", "-c", str(tmp_path / "t" / "f")], capture_output=True, text=True
    ).stdout
    assert "user:1234:rw-" in acl and "mask::rw-" in acl and "other::---" in acl
    dacl = subprocess.run(
        ["getfacl", "-n", "-c", str(tmp_path / "t" / "d")], capture_output=True, text=True
    ).stdout
    assert "default:group:4321:r-x" in dacl
    # the default ACL is set after the contents: the member inside keeps exactly its own mode, no inherited ACL
    assert "system.posix_acl_access" not in os.listxattr(tmp_path / "t" / "d" / "inside")
    assert stat.S_IMODE(os.stat(tmp_path / "t" / "d" / "inside").st_mode) == 0o600
    sacl = subprocess.run(
        ["getfacl", "-n", "-c", str(tmp_path / "t" / "star")], capture_output=True, text=True
    )
    assert "user:4242:r--" in sacl.stdout


def test_names_map_through_the_target_passwd_when_not_numeric(tmp_path):
    need(IS_ROOT, "needs root to give files away")
    a = archive_of(
        tmp_path / "a.tar",
        [
            member("etc", type=tarfile.DIRTYPE),
            member("etc/passwd", b"root:x:0:0::/root:/bin/sh\nalice:x:5001:5001::/home/alice:/bin/sh\n"),
            member("etc/group", b"root:x:0:\nstaff:x:6001:\n"),
            member("home/alice/notes", b"hi", uid=1000, gid=1000, uname="alice", gname="staff"),
            member("unknown", b"hi", uid=777, gid=888, uname="nobody-here", gname="nogroup-here"),
        ],
    )
    extract_all(a, tmp_path / "names", numeric_owner=False)
    st = os.stat(tmp_path / "names" / "home" / "alice" / "notes")
    assert (st.st_uid, st.st_gid) == (5001, 6001)
    st = os.stat(tmp_path / "names" / "unknown")
    assert (st.st_uid, st.st_gid) == (777, 888)
    extract_all(a, tmp_path / "numeric")
    st = os.stat(tmp_path / "numeric" / "home" / "alice" / "notes")
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_directory_mode_and_mtime_are_set_after_their_contents(tmp_path):
    a = archive_of(
        tmp_path / "a.tar",
        [
            member("ro", type=tarfile.DIRTYPE, mode=0o555, mtime=1_500_000_000),
            member("ro/sub", type=tarfile.DIRTYPE, mode=0o500, mtime=1_400_000_000),
            member("ro/sub/file", b"x", mtime=1_300_000_000),
            member("ro/later", b"y"),
        ],
    )
    extract_all(a, tmp_path / "t")
    for rel, mode, mtime in (("ro", 0o555, 1_500_000_000), ("ro/sub", 0o500, 1_400_000_000)):
        st = os.stat(tmp_path / "t" / rel)
        assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (mode, mtime)
    assert os.stat(tmp_path / "t" / "ro" / "sub" / "file").st_mtime == 1_300_000_000


# 100 kB is hashed in line; 3 MB in the background thread (background_hash.MIN_SIZE), across records.
@pytest.mark.parametrize("size", [100_000, 3_000_000])
def test_sha256_is_computed_while_writing_and_checked(tmp_path, size):
    data = os.urandom(size)
    good = hashlib.sha256(data).hexdigest()
    a = archive_of(tmp_path / "a.tar", [member("ok", data), member("bad", data)])
    results, warnings = extract_all(a, tmp_path / "t", expected={"ok": good, "bad": "0" * 64})
    assert results["ok"] is True and results["ok#sha"] == good
    assert results["bad"] is False
    assert warnings == [("bad", f"SHA-256 mismatch: restored data {good}, catalog {'0' * 64}")]


def test_overwrite_replaces_files_symlinks_and_empty_directories(tmp_path):
    dest = tmp_path / "t"
    dest.mkdir()
    (dest / "file").write_bytes(b"old")
    os.symlink("file", dest / "link")
    (dest / "emptydir").mkdir()
    (dest / "fulldir").mkdir()
    (dest / "fulldir" / "x").write_bytes(b"keep")
    (dest / "wasfile").write_bytes(b"old")
    a = archive_of(
        tmp_path / "a.tar",
        [
            member("file", b"new"),
            member("link", b"now a file"),
            member("emptydir", b"now a file"),
            member("fulldir", b"cannot"),
            member("wasfile", type=tarfile.DIRTYPE),
        ],
    )
    results, warnings = extract_all(a, dest)
    assert (dest / "file").read_bytes() == b"new"
    assert (dest / "link").read_bytes() == b"now a file" and not os.path.islink(dest / "link")
    assert (dest / "emptydir").read_bytes() == b"now a file"
    assert results["fulldir"] is False and (dest / "fulldir" / "x").read_bytes() == b"keep"
    assert os.path.isdir(dest / "wasfile")
    assert [w for w, _ in warnings] == ["fulldir"]
    assert not [n for n in os.listdir(dest) if n.startswith(".rescue-tmp")]


def test_overwrite_off_keeps_what_is_there(tmp_path):
    dest = tmp_path / "t"
    dest.mkdir()
    (dest / "file").write_bytes(b"old")
    a = archive_of(tmp_path / "a.tar", [member("file", b"new"), member("other", b"new")])
    results, warnings = extract_all(a, dest, overwrite=False)
    assert (dest / "file").read_bytes() == b"old"
    assert results == {"file": False, "file#sha": None, "other": True, "other#sha": results["other#sha"]}
    assert sorted(os.listdir(dest)) == ["file", "other"]


def test_hard_link_to_a_member_that_was_not_restored_is_a_warning(tmp_path):
    a = archive_of(tmp_path / "a.tar", [member("h", type=tarfile.LNKTYPE, linkname="missing")])
    results, warnings = extract_all(a, tmp_path / "t")
    assert results["h"] is False
    assert "was not restored" in warnings[0][1]


def test_hard_link_over_an_existing_link_to_the_same_file_leaves_no_temporary(tmp_path):
    a = archive_of(
        tmp_path / "a.tar",
        [
            member("f", b"x"),
            member("h", type=tarfile.LNKTYPE, linkname="f"),
            member("h", type=tarfile.LNKTYPE, linkname="f"),
        ],
    )
    extract_all(a, tmp_path / "t")
    assert sorted(os.listdir(tmp_path / "t")) == ["f", "h"]


def test_acl_helpers_agree_with_the_kernel(tmp_path):
    """The binary value we build from text is what setfacl itself stores."""
    need_tool("setfacl")
    f = tmp_path / "f"
    f.write_bytes(b"")
    subprocess.run(["setfacl", "-m", "u:1234:rw,g:99:r", str(f)], check=True)
    theirs = os.getxattr(f, xa.ACL_ACCESS_XATTR)
    text = "user::rw-\nuser:1234:rw-\ngroup::r--\ngroup:99:r--\nmask::rw-\nother::r--\n"
    assert xa.encode_acl_xattr(xa.acl_from_text(text)) == theirs


@pytest.mark.parametrize("kind", ["fifo", "chr", "blk"])
def test_special_files_are_made_with_their_metadata(tmp_path, kind):
    if kind != "fifo":
        need(IS_ROOT, "needs root for mknod")
    t = {"fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}[kind]
    a = archive_of(
        tmp_path / "a.tar",
        [member("node", type=t, mode=0o640, devmajor=8, devminor=1, uid=11, gid=12, mtime=1_234_567_890)],
    )
    results, warnings = extract_all(a, tmp_path / "t")
    assert results["node"] and warnings == []
    st = os.lstat(tmp_path / "t" / "node")
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_mtime == 1_234_567_890
    if kind == "fifo":
        assert stat.S_ISFIFO(st.st_mode)
    else:
        assert st.st_rdev == os.makedev(8, 1)
        assert (st.st_uid, st.st_gid) == (11, 12)


def test_many_directories_keep_their_times_without_running_out_of_fds(tmp_path):
    """More directories than the fd cache holds, nested and side by side, each set after its contents."""
    members = []
    for i in range(700):
        top = f"t{i % 7}"
        members.append(member(f"{top}/d{i:04d}", type=tarfile.DIRTYPE, mode=0o751, mtime=1_000_000 + i))
        members.append(member(f"{top}/d{i:04d}/f", b"x", mtime=2_000_000 + i))
    for j in range(7):
        members.insert(0, member(f"t{j}", type=tarfile.DIRTYPE, mode=0o700, mtime=3_000_000 + j))
    a = archive_of(tmp_path / "a.tar", members)
    fds_before = len(os.listdir("/proc/self/fd"))
    results, warnings = extract_all(a, tmp_path / "t")
    assert len(os.listdir("/proc/self/fd")) <= fds_before
    assert warnings == [] and all(v for k, v in results.items() if not k.endswith("#sha"))
    for i in (0, 255, 256, 699):
        st = os.stat(tmp_path / "t" / f"t{i % 7}" / f"d{i:04d}")
        assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o751, 1_000_000 + i)
    for j in range(7):
        st = os.stat(tmp_path / "t" / f"t{j}")
        assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o700, 3_000_000 + j)


def test_a_directory_replaced_by_a_file_is_not_used_afterwards(tmp_path):
    dest = tmp_path / "t"
    a = archive_of(
        tmp_path / "a.tar",
        [
            member("x", type=tarfile.DIRTYPE),
            member("x/inner", b"1"),
            member("y", type=tarfile.DIRTYPE),
            member("y", b"now a file"),  # replaces the (empty) directory y
            member("y2/z", b"2"),
        ],
    )
    results, warnings = extract_all(a, dest)
    assert warnings == []
    assert (dest / "y").read_bytes() == b"now a file"
    assert (dest / "y2" / "z").read_bytes() == b"2"
    assert (dest / "x" / "inner").read_bytes() == b"1"


@pytest.mark.parametrize("unnamed", [True, False], ids=["o_tmpfile", "named-temporary"])
def test_files_are_complete_before_they_get_their_name(tmp_path, unnamed):
    """Both ways of writing a file (unnamed inode linked in, or a temporary name renamed) give the same result,
    and a file whose data is cut short leaves nothing behind under any name."""
    data = os.urandom(200_000)
    a = archive_of(tmp_path / "a.tar", [member("f", data, mode=0o640), member("g", data)])
    cut = tmp_path / "cut.tar"
    cut.write_bytes(a.read_bytes()[:3000])  # inside f's data
    dest = tmp_path / "t"
    dest.mkdir()
    (dest / "g").write_bytes(b"old")  # taken name: replaced through a temporary name
    with StreamTape(str(a)) as tape, open_extractor(str(dest)) as x:
        x._unnamed = unnamed and x._unnamed
        assert all(x.extract(e) for e in ArchiveReader(tape))
    assert (dest / "f").read_bytes() == data and (dest / "g").read_bytes() == data
    assert stat.S_IMODE(os.stat(dest / "f").st_mode) == 0o640
    assert sorted(os.listdir(dest)) == ["f", "g"]
    dest2 = tmp_path / "t2"
    dest2.mkdir()
    with pytest.raises(TruncatedArchiveError), StreamTape(str(cut)) as tape, open_extractor(str(dest2)) as x:
        x._unnamed = unnamed and x._unnamed
        for e in ArchiveReader(tape):
            x.extract(e)
    assert os.listdir(dest2) == []
