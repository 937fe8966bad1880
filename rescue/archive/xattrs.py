"""Extended attributes and POSIX ACLs: reading them from files, and the text form GNU tar stores ACLs in.

Shared by the writer (reads xattrs and ACLs of every file) and extraction (parses ACL text back to the kernel's
binary `system.posix_acl_*` xattr values), so both agree on one encoding.

What GNU tar 1.34 `--xattrs --acls --format=posix` writes, and what this module reproduces:
- every xattr as `SCHILY.xattr.NAME=VALUE` with the raw value bytes (no `hdrcharset`); in NAME, "%" and "="
  are written as "%25" and "%3D" (xheader.c, xattr_encode_keyword).  That includes `system.posix_acl_access` and
  `system.posix_acl_default`, whose binary values carry numeric ids.
- when the file "has an ACL" (gnulib file_has_acl: an access ACL with more than the three base entries, or a
  default ACL on a directory): `SCHILY.acl.access` and, for directories, `SCHILY.acl.default` (empty when there
  is none), each in libacl's `acl_to_text` long form: one entry per line, every line ended by "\\n", user and
  group qualifiers as names when the name is known, else numbers (xattrs.c, xattrs__acls_get_a).

The binary xattr format is <linux/posix_acl_xattr.h>: a little-endian u32 version (2), then entries of
(u16 tag, u16 perm, u32 id) sorted by tag and id, as the kernel requires.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import struct
from typing import Dict, List, Optional, Tuple

ACL_ACCESS_XATTR = "system.posix_acl_access"
ACL_DEFAULT_XATTR = "system.posix_acl_default"

# <linux/posix_acl.h> tags and <linux/posix_acl_xattr.h> layout
ACL_USER_OBJ = 0x01
ACL_USER = 0x02
ACL_GROUP_OBJ = 0x04
ACL_GROUP = 0x08
ACL_MASK = 0x10
ACL_OTHER = 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF
ACL_XATTR_VERSION = 2
_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")

_TAG_WORD = {
    ACL_USER_OBJ: "user",
    ACL_USER: "user",
    ACL_GROUP_OBJ: "group",
    ACL_GROUP: "group",
    ACL_MASK: "mask",
    ACL_OTHER: "other",
}
_PERMS = ("---", "--x", "-w-", "-wx", "r--", "r-x", "rw-", "rwx")

AclEntries = List[Tuple[int, int, int]]  # (tag, perm, id)

# Errors that mean "this file or filesystem has no xattrs", not a problem with the file.
_NO_XATTRS = {errno.ENOTSUP, errno.ENODATA, getattr(errno, "ENOATTR", errno.ENODATA), errno.EPERM}


def read_xattrs(target, follow_symlinks: bool = False) -> Dict[str, bytes]:
    """All extended attributes of `target` (an open fd or a path) as {name: value}, in the kernel's order.

    An attribute removed between list and get is skipped; a filesystem without xattrs gives {}.  Other errors
    (EIO, EACCES) raise OSError for the caller to record as a warning.
    """
    try:
        names = os.listxattr(target, follow_symlinks=follow_symlinks)
    except OSError as e:
        if e.errno in _NO_XATTRS:
            return {}
        raise
    out = {}
    for name in names:
        try:
            out[name] = os.getxattr(target, name, follow_symlinks=follow_symlinks)
        except OSError as e:
            if e.errno in _NO_XATTRS:
                continue
            raise
    return out


def decode_acl_xattr(value: bytes) -> AclEntries:
    """Entries of a `system.posix_acl_*` value; ValueError if it is not version 2 of the format."""
    if len(value) < _HEADER.size or (len(value) - _HEADER.size) % _ENTRY.size:
        raise ValueError("bad POSIX ACL xattr length")
    (version,) = _HEADER.unpack_from(value)
    if version != ACL_XATTR_VERSION:
        raise ValueError(f"unknown POSIX ACL xattr version {version}")
    return [e for e in _ENTRY.iter_unpack(value[_HEADER.size :])]


def encode_acl_xattr(entries: AclEntries) -> bytes:
    """The kernel's binary value for ACL entries (sorted into the order the kernel requires)."""
    entries = sorted(entries, key=lambda e: (e[0], e[2] if e[0] in (ACL_USER, ACL_GROUP) else 0))
    return _HEADER.pack(ACL_XATTR_VERSION) + b"".join(_ENTRY.pack(*e) for e in entries)


def mode_acl(mode: int) -> AclEntries:
    """The three-entry ACL equivalent to permission bits (what acl_get_file returns without an ACL xattr)."""
    return [
        (ACL_USER_OBJ, (mode >> 6) & 7, ACL_UNDEFINED_ID),
        (ACL_GROUP_OBJ, (mode >> 3) & 7, ACL_UNDEFINED_ID),
        (ACL_OTHER, mode & 7, ACL_UNDEFINED_ID),
    ]


class NameCache:
    """uid/gid -> name lookups, cached (the password and group databases are read once per id)."""

    def __init__(self):
        self._users: Dict[int, str] = {}
        self._groups: Dict[int, str] = {}

    def user(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except (KeyError, OverflowError):
                name = ""
            self._users[uid] = name
        return name

    def group(self, gid: int) -> str:
        name = self._groups.get(gid)
        if name is None:
            try:
                name = grp.getgrgid(gid).gr_name
            except (KeyError, OverflowError):
                name = ""
            self._groups[gid] = name
        return name


def acl_to_text(entries: AclEntries, names: Optional[NameCache] = None) -> str:
    """libacl's acl_to_text long form, as GNU tar stores it: "user::rw-\\nuser:alice:r--\\n...other::r--\\n"."""
    names = names or NameCache()
    lines = []
    for tag, perm, ident in entries:
        qualifier = ""
        if tag == ACL_USER:
            qualifier = names.user(ident) or str(ident)
        elif tag == ACL_GROUP:
            qualifier = names.group(ident) or str(ident)
        lines.append(f"{_TAG_WORD.get(tag, '?')}:{qualifier}:{_PERMS[perm & 7]}\n")
    return "".join(lines)


def acl_from_text(text: str, user_id=None, group_id=None) -> AclEntries:
    """Parse ACL text (long form, or the short "," separated form; "#" comments allowed) into entries.

    `user_id(name)` / `group_id(name)` map qualifier names to ids (default: this system's databases); numeric
    qualifiers are taken as ids.  ValueError on anything malformed or unknown.
    """

    def lookup(name: str, fn, db) -> int:
        if name.isdigit():
            return int(name)
        if fn is not None:
            return fn(name)
        try:
            return db(name)
        except KeyError:
            raise ValueError(f"unknown ACL qualifier {name!r}") from None

    out = []
    for raw in text.replace(",", "\n").splitlines():
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) == 4 and parts[0] == "default":
            raise ValueError("default: entries belong in the default ACL text")
        if len(parts) != 3:
            raise ValueError(f"bad ACL entry {entry!r}")
        word, qualifier, perms = parts
        if len(perms) != 3 or any(c not in "-" + p for c, p in zip(perms, "rwx")):
            raise ValueError(f"bad ACL permissions {entry!r}")
        perm = (perms[0] == "r") << 2 | (perms[1] == "w") << 1 | (perms[2] == "x")
        if word in ("user", "u"):
            if qualifier:
                out.append((ACL_USER, perm, lookup(qualifier, user_id, lambda n: pwd.getpwnam(n).pw_uid)))
            else:
                out.append((ACL_USER_OBJ, perm, ACL_UNDEFINED_ID))
        elif word in ("group", "g"):
            if qualifier:
                out.append((ACL_GROUP, perm, lookup(qualifier, group_id, lambda n: grp.getgrnam(n).gr_gid)))
            else:
                out.append((ACL_GROUP_OBJ, perm, ACL_UNDEFINED_ID))
        elif word in ("mask", "m") and not qualifier:
            out.append((ACL_MASK, perm, ACL_UNDEFINED_ID))
        elif word in ("other", "o") and not qualifier:
            out.append((ACL_OTHER, perm, ACL_UNDEFINED_ID))
        else:
            raise ValueError(f"bad ACL entry {entry!r}")
    return out


def acl_texts(
    xattrs: Dict[str, bytes], mode: int, is_dir: bool, names: Optional[NameCache] = None
) -> Tuple[Optional[str], Optional[str]]:
    """(access, default) ACL texts as GNU tar --acls stores them for a file with these xattrs and mode, or
    (None, None) when the file has no ACL beyond its mode bits.  `default` is None for non-directories and ""
    for a directory without a default ACL (GNU tar writes the empty keyword then)."""
    access = xattrs.get(ACL_ACCESS_XATTR)
    default = xattrs.get(ACL_DEFAULT_XATTR) if is_dir else None
    try:
        access_entries = decode_acl_xattr(access) if access else None
        default_entries = decode_acl_xattr(default) if default else None
    except ValueError:
        return None, None
    has_acl = bool(access_entries and len(access_entries) > 3) or bool(default_entries)
    if not has_acl:
        return None, None
    access_text = acl_to_text(access_entries or mode_acl(mode), names)
    default_text = None
    if is_dir:
        default_text = acl_to_text(default_entries, names) if default_entries else ""
    return access_text, default_text
