"""filelist.txt lines in the style of `tar -tv` (the full comparison with GNU tar is in tests/cli/test_list_cmd.py)."""

from __future__ import annotations

from rescue.archive.member import BLOCKDEV, DIR, FILE, Member
from rescue.tapeset.filelist import VerboseLister, mode_string


def test_mode_strings_show_setuid_setgid_and_sticky_like_ls():
    assert mode_string(FILE, 0o4755) == "-rwsr-xr-x"
    assert mode_string(FILE, 0o2644) == "-rw-r-Sr--"
    assert mode_string(DIR, 0o1777) == "drwxrwxrwt"
    assert mode_string(DIR, 0o1770) == "drwxrwx--T"


def test_devices_show_major_minor_and_the_owner_column_grows_like_tar():
    lister = VerboseLister()
    disk = Member(
        path="dev/sda", type=BLOCKDEV, mode=0o660, uname="root", gname="disk", devmajor=8, devminor=0
    )
    assert lister.line(disk).startswith("brw-rw---- root/disk       8,0 ")
    wide = Member(path="f", type=FILE, size=5, uname="averylongusername", gname="averylonggroup")
    lister.line(wide)
    assert lister.ugswidth == len("averylongusername/averylonggroup 5")
    # Later narrow lines keep the wider column, as GNU tar does.
    assert lister.line(Member(path="g", type=FILE, size=1, uname="a", gname="b")).startswith(
        "-rw-r--r-- a/b" + " " * (lister.ugswidth - len("a/b 1")) + " 1 "
    )
