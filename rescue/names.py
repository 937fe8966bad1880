r"""Member names on a terminal and in JSON: one escape, the one GNU tar's `tar -tv` prints, and its inverse.

Names are bytes on the file system and in the archive; in Python they are str decoded as UTF-8 with
surrogateescape, so a byte that is not part of a UTF-8 character is a lone surrogate (U+DC80..U+DCFF), which no
UTF-8 writer accepts.  Two forms of the same escape language:

- `list_name(name)`: what `tar -tv` prints in a UTF-8 locale (GNU tar's "escape" quoting style, quotearg.c):
  a backslash is `\\`; BEL BS FF LF CR TAB VT are `\a \b \f \n \r \t \v`; every other byte of a character that
  is not printable, and every byte that is not UTF-8, is `\ooo` (three octal digits).  `rescue list` and
  filelist.txt use it, so one line is one member.
- `json_name(name)`: the form in `--json` output (`list`, `restore`): only a backslash (`\\`) and the bytes that
  are not UTF-8 (`\ooo`) are escaped; JSON's own escapes take care of the rest, so the output is valid UTF-8.

`unescape(text)` reads both back; `path_argument(text)` applies it to a PATH given on the command line when it
holds a backslash, so a name copied from `rescue list` or from `--json` selects that member.
"""

from __future__ import annotations

import re

_C_ESCAPES = {
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_C_UNESCAPES = {v[1]: k for k, v in _C_ESCAPES.items()}
_ESCAPE = re.compile(r"\\(?:([0-7]{3})|(.))", re.DOTALL)


def _octal(ch: str) -> str:
    return "".join(f"\\{b:03o}" for b in ch.encode("utf-8", "surrogateescape"))


def list_name(name: str) -> str:
    """`name` as `tar -tv` prints it."""
    if name.isprintable() and "\\" not in name:
        return name  # the common case, at C speed: the file list of a backup formats every member
    out = []
    for ch in name:
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_octal(ch))
    return "".join(out)


def json_name(name: str) -> str:
    """`name` for JSON output: valid UTF-8, backslashes doubled, bytes that are not UTF-8 as `\\ooo`."""
    if "\\" not in name:
        try:
            name.encode("utf-8")
            return name
        except UnicodeEncodeError:
            pass
    out = []
    for ch in name:
        if ch == "\\":
            out.append("\\\\")
        elif "\udc80" <= ch <= "\udcff":
            out.append(_octal(ch))
        else:
            out.append(ch)
    return "".join(out)


def json_safe(value):
    """A JSON-ready copy of `value` with every string in the json_name form."""
    if isinstance(value, str):
        return json_name(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def unescape(text: str) -> str:
    """The name `list_name` or `json_name` wrote as `text` (octal escapes are bytes, decoded with surrogateescape)."""
    raw = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        raw += text[pos : m.start()].encode("utf-8", "surrogateescape")
        if m.group(1):
            raw.append(int(m.group(1), 8))
        else:
            raw += _C_UNESCAPES.get(m.group(2), "\\" + m.group(2)).encode("utf-8", "surrogateescape")
        pos = m.end()
    raw += text[pos:].encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "surrogateescape")


def path_argument(text: str) -> str:
    """A PATH from the command line: the escaped form read back when it holds a backslash."""
    return unescape(text) if "\\" in text else text
