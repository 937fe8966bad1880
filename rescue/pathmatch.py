"""Which archive paths a job selects: paths asked for, excludes, and default excludes.

One matcher serves backup (what to walk) and restore (what to extract), so both read patterns the same way:
- A pattern without "/" matches a path component anywhere, like GNU tar's `--exclude` (`*.tmp`, `cache`).
- A pattern with "/" is anchored at the archive root (`var/cache/apt`, `home/*/tmp`); a leading "/" or "./" is
  ignored. A match on a directory covers everything under it.
- Shell globbing (fnmatch) applies to whole components: `*` never crosses "/".
- Default excludes (proc, sys, dev, ... anchored at the root) leave out contents only: the directory itself is
  kept (`keeps_empty`), so a backup archives the mount points empty and a restore brings them back with their
  mode, owner and mtime (tmp's 1777), ready for the chroot steps.
"""

from __future__ import annotations

import re
from typing import Iterable, List, Sequence

# Contents excluded from a whole-system backup and restore unless --no-default-excludes: pseudo and scratch
# filesystems (the directories themselves are kept, empty).
DEFAULT_EXCLUDES = ("proc", "sys", "dev", "run", "tmp", "mnt", "media", "lost+found")


def normalize(path: str) -> str:
    """Archive form of a path: relative, no "./" prefixes, no trailing or doubled slashes."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/".join(parts)


def _glob_regex(pattern: str) -> str:
    """Regex for a shell glob where "*" and "?" never match "/" (fnmatch.translate lets them)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "["
                out.append(re.escape(c))
            else:
                body = pattern[i:j].replace("\\", "\\\\")
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j + 1
        else:
            out.append(re.escape(c))
    return "".join(out)


class PathMatcher:
    """Answers "is this path selected?" for a list of include paths (empty = everything) and excludes.

    `default_excludes` are anchored at the root (a backup's `proc` means `/proc`, not `usr/src/.../proc`) and
    exclude what is below them, not the directory itself.
    """

    def __init__(
        self,
        includes: Sequence[str] = (),
        excludes: Iterable[str] = (),
        default_excludes: Iterable[str] = (),
    ):
        self.includes = [normalize(p) for p in includes if normalize(p)]
        self._include_re = self._compile(self.includes, anchored=True) if self.includes else None
        self._each_include = [self._compile([p], anchored=True) for p in self.includes]
        defaults = [normalize(p) for p in default_excludes]
        self._empty_re = self._compile(defaults, anchored=True, below="") if defaults else None
        anchored = [f"{p}/*" for p in defaults]  # "proc/*": what is below the directory, not itself
        floating = []
        for pattern in excludes:
            pattern = normalize(pattern)
            (anchored if "/" in pattern else floating).append(pattern)
        parts = []
        if anchored:
            parts.append(self._compile(anchored, anchored=True).pattern)
        if floating:
            parts.append(self._compile(floating, anchored=False).pattern)
        self._exclude_re = re.compile("|".join(parts)) if parts else None

    @staticmethod
    def _compile(patterns: List[str], anchored: bool, below: str = "(?:/.*)?") -> re.Pattern:
        body = "|".join(f"(?:{_glob_regex(p)})" for p in patterns)
        # A match covers the path itself and (unless `below` says otherwise) everything below it.
        prefix = r"\A" if anchored else r"(?:\A|.*/)"
        return re.compile(f"{prefix}(?:{body}){below}\\Z", re.S)

    def excluded(self, path: str) -> bool:
        return bool(self._exclude_re and self._exclude_re.match(path))

    def keeps_empty(self, path: str) -> bool:
        """True for a directory the default excludes keep without its contents (`proc`, `tmp`)."""
        return bool(self._empty_re and self._empty_re.match(path))

    def includes_matching(self, path: str) -> List[int]:
        """Indexes into `includes` of every asked path that covers `path` (for counts per PATH)."""
        return [i for i, rx in enumerate(self._each_include) if rx.match(path)]

    def included(self, path: str) -> bool:
        """True if the path is asked for (or no paths were asked), before excludes."""
        return self._include_re is None or bool(self._include_re.match(path))

    def is_ancestor_of_include(self, path: str) -> bool:
        """True for a directory on the way to an asked path (`etc` when `etc/ssh` was asked), so a walk can
        descend into it and a restore can create it."""
        prefix = path + "/"
        return any(inc.startswith(prefix) for inc in self.includes)

    def selected(self, path: str) -> bool:
        return self.included(path) and not self.excluded(path)
