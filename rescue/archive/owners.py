"""Owner and group names -> ids for extraction, and the ACL text forms other tars write.

`id_table(data)` parses an etc/passwd or etc/group.  `Ids(root_fd).lookup("passwd" | "group", name)`: the
target's own etc/passwd and etc/group when present (a bare-metal restore must use the restored system's ids, not
the rescue system's), else this system's databases; cached, and the target's files looked at again at most once a
second (the restore may be writing them).
`star_to_plain(text, numeric)`: star and GNU tar before 1.27 append the numeric id to named ACL entries.
"""

from __future__ import annotations

import grp
import os
import pwd
import time
from typing import Dict, Optional, Tuple

from rescue.archive.dirs import DIR_FLAGS


def id_table(data: bytes) -> Dict[str, int]:
    """Name -> id from the text of an etc/passwd or etc/group (the first line of a name wins, as getpwnam)."""
    table: Dict[str, int] = {}
    for line in data.split(b"\n"):
        fields = line.split(b":")
        if len(fields) >= 3 and fields[2].isdigit():
            table.setdefault(fields[0].decode("utf-8", "surrogateescape"), int(fields[2]))
    return table


class Ids:
    def __init__(self, root_fd: int):
        self._root_fd = root_fd
        self._tables: Dict[str, Tuple[Optional[tuple], Dict[str, int]]] = {}
        self._cache: Dict[Tuple[str, str], Optional[int]] = {}
        self._checked: Dict[str, float] = {}

    def _target_table(self, fname: str) -> Dict[str, int]:
        known = self._tables.get(fname)
        now = time.monotonic()
        if known is not None and now - self._checked.get(fname, 0.0) < 1.0:
            return known[1]  # looked at less than a second ago: the restore may still be writing it
        self._checked[fname] = now
        try:
            etc = os.open("etc", DIR_FLAGS, dir_fd=self._root_fd)
        except OSError:
            return {}
        try:
            fd = os.open(fname, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=etc)
        except OSError:
            return {}
        finally:
            os.close(etc)
        try:
            st = os.fstat(fd)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if known is not None and known[0] == key:
                return known[1]
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(16 * 1024 * 1024)
        finally:
            os.close(fd)
        table = id_table(data)
        self._tables[fname] = (key, table)
        return table

    def lookup(self, kind: str, name: str) -> Optional[int]:
        """Id for a user ("passwd") or group ("group") name, or None if unknown anywhere."""
        if not name:
            return None
        if name.isdigit():
            return int(name)
        found = self._target_table(kind).get(name)
        if found is not None:
            return found
        key = (kind, name)
        if key not in self._cache:
            try:
                self._cache[key] = (
                    pwd.getpwnam(name).pw_uid if kind == "passwd" else grp.getgrnam(name).gr_gid
                )
            except KeyError:
                self._cache[key] = None
        return self._cache[key]


def star_to_plain(text: str, numeric: bool) -> str:
    """star and GNU tar before 1.27 append the numeric id to named entries ("user:bob:rw-:1000"): keep the name,
    or the number when numeric ids are wanted (this system's names may differ)."""
    lines = []
    for raw in text.replace(",", "\n").splitlines():
        parts = raw.split("#", 1)[0].strip().split(":")
        if len(parts) == 4 and parts[3].strip().isdigit() and parts[0] in ("user", "u", "group", "g"):
            qualifier = parts[3].strip() if numeric or not parts[1] else parts[1]
            raw = f"{parts[0]}:{qualifier}:{parts[2]}"
        lines.append(raw)
    return "\n".join(lines)
