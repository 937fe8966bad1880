"""Compare a restored tree with the original, entry by entry (runs in the drill guest; standard library only).

    python3 compare.py ORIGINAL RESTORED [--only PATH ...] [--added PATH ...] [--json OUT]

Checks every entry of ORIGINAL (but the top-level directories a restore leaves out by default: proc, sys, dev,
run, tmp, mnt, media, lost+found) against RESTORED: type, permission bits incl. setuid/sticky, numeric owner
and group, size and SHA-256 of regular files, symlink targets, device numbers, xattrs (incl. POSIX ACLs), that
hard links of the original are hard links again, and mtime to the second (directories and symlinks excepted:
extraction touches them).  Entries in RESTORED that ORIGINAL lacks are differences too.  With --only, just those
subtrees are expected (a partial restore).  With --added, what is at or under those paths in RESTORED alone (and
their parent directories RESTORED alone has) was added by design (recover's state and logs): counted apart, not a
difference; what ORIGINAL has there is still compared.  Prints a summary line "compare: N entries, D differences" and the
first differences; exit 0 when there are none.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys

SKIP_TOP = {"proc", "sys", "dev", "run", "tmp", "mnt", "media", "lost+found"}
RESTORE_LEFTOVERS = (".rescue-restore.journal",)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return h.hexdigest()
            h.update(chunk)


def xattrs(path: str) -> dict:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in sorted(names):
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False).hex()
        except OSError as e:
            out[name] = f"unreadable: {e.strerror}"
    return out


def describe(root: str, rel: str) -> tuple:
    path = os.path.join(root, rel) if rel else root
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    d = {
        "type": {
            stat.S_IFREG: "file",
            stat.S_IFDIR: "dir",
            stat.S_IFLNK: "symlink",
            stat.S_IFCHR: "chardev",
            stat.S_IFBLK: "blockdev",
            stat.S_IFIFO: "fifo",
            stat.S_IFSOCK: "socket",
        }.get(kind, "?"),
        "mode": oct(stat.S_IMODE(st.st_mode)),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "xattrs": xattrs(path),
    }
    if kind == stat.S_IFREG:
        d["size"] = st.st_size
        d["sha256"] = sha256(path)
        d["mtime"] = int(st.st_mtime)
    elif kind == stat.S_IFLNK:
        d["target"] = os.readlink(path)
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        d["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
        d["mtime"] = int(st.st_mtime)
    if kind == stat.S_IFLNK:
        d.pop("mode")  # symlink permission bits mean nothing on Linux
    return d, (st.st_dev, st.st_ino), st.st_nlink


def walk(root: str, only: list) -> dict:
    """rel path -> (description, inode key, nlink) for every entry under root (minus SKIP_TOP)."""
    entries = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        path = os.path.join(root, rel) if rel else root
        with os.scandir(path) as it:
            names = sorted(e.name for e in it)
        for name in names:
            child = f"{rel}/{name}" if rel else name
            if not rel and (name in SKIP_TOP or name in RESTORE_LEFTOVERS):
                continue
            if only and not any(
                child == o or child.startswith(o + "/") or o.startswith(child + "/") for o in only
            ):
                continue
            entries[child] = describe(root, child)
            if stat.S_ISDIR(os.lstat(os.path.join(root, child)).st_mode):
                stack.append(child)
    return entries


def link_groups(entries: dict) -> list:
    groups = {}
    for rel, (_, key, nlink) in entries.items():
        if nlink > 1 and entries[rel][0]["type"] != "dir":
            groups.setdefault(key, []).append(rel)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def by_design(rel: str, added: list) -> bool:
    return any(rel == p or rel.startswith(p + "/") or p.startswith(rel + "/") for p in added)


def compare(original: str, restored: str, only: list, added: tuple = ()) -> tuple:
    a = walk(original, only)
    b = walk(restored, only)
    diffs = []
    for rel in sorted(a):
        if only and not any(rel == o or rel.startswith(o + "/") for o in only):
            continue  # a parent directory of a selected subtree: its metadata is not restored
        if rel not in b:
            diffs.append(f"missing: {rel}")
            continue
        da, db = a[rel][0], b[rel][0]
        for key in sorted(set(da) | set(db)):
            if key == "mtime" and da.get("type") == "dir":
                continue
            if da.get(key) != db.get(key):
                diffs.append(f"{key} differs: {rel}: {da.get(key)!r} != {db.get(key)!r}")
    extra = sorted(set(b) - set(a))
    diffs += [f"extra: {rel}" for rel in extra if not by_design(rel, added)]
    la, lb = link_groups(a), link_groups(b)
    for group in la:
        if group not in lb:
            diffs.append(f"hard links lost: {group}")
    return len(a), diffs, len(la)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("original")
    p.add_argument("restored")
    p.add_argument("--only", action="append", default=[])
    p.add_argument("--added", action="append", default=[])
    p.add_argument("--json")
    args = p.parse_args(argv)
    only = [o.strip("/") for o in args.only]
    count, diffs, links = compare(args.original, args.restored, only, [a.strip("/") for a in args.added])
    print(f"compare: {count} entries, {links} hard-link groups, {len(diffs)} differences")
    for d in diffs[:40]:
        print(f"  {d}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"entries": count, "link_groups": links, "differences": diffs}, f, indent=1)
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main())
