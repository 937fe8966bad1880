"""/etc/rescue/rescue.conf: the defaults of `rescue backup` and the database hooks (INI, read with configparser).

    [rescue]
    device = /dev/nst0
    record_size = 256K
    exclude = var/cache/apt
        home/*/.cache
    default_excludes = yes
    one_file_system = no
    catalog_dir = /var/lib/rescue/catalogs
    spool_dir = /var/lib/rescue/spool
    retention_days = 6
    keep_catalogs = 60
    shrink_threshold = 30
    verify = yes
    eject = no

    [db mariadb]
    type = mariadb
    defaults_file = /etc/rescue/mariadb.cnf

The keys of [rescue] are defined once, in SETTINGS (key, type, default, flag, help), and everything else is
made of it: `Config`, `BackupSettings` (the base of rescue.backup.job.BackupOptions), the reader of this file,
the flags of `rescue backup` (`add_flags`, `backup_settings`) and the README's table (`Setting.readme_row`,
checked by the tests).  Every key has a command line flag (`--record-size`, `--exclude`, `--db mariadb,defaults_file=..`) and
the flag wins.  A missing default file is fine (built-in defaults); a file named with --config must exist.
Unknown keys are errors, so a typo never silently disables a guard.  Passwords are refused here: they belong in
the option file or passfile a hook names.
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import os
import re
from typing import Any, List, Optional

from rescue.archive.tarformat import BLOCKSIZE, DEFAULT_RECORD_SIZE, check_record_size
from rescue.db import DbHook
from rescue.errors import RescueError, UsageError

DEFAULT_PATH = "/etc/rescue/rescue.conf"
DEFAULT_DEVICE = "/dev/nst0"
DEFAULT_CATALOG_DIR = "/var/lib/rescue/catalogs"
DEFAULT_SPOOL_DIR = "/var/lib/rescue/spool"
DEFAULT_SHRINK_THRESHOLD = 30.0  # percent


@dataclasses.dataclass(frozen=True)
class Setting:
    """One key of [rescue]: its type, default, flag and help.  `Config`, `BackupSettings` (the base of
    rescue.backup.job.BackupOptions), the reader of rescue.conf, the flags of `rescue backup` and the README's
    table are all made from SETTINGS, so a setting is spelled once."""

    key: str  # the key in [rescue], the field of Config and BackupOptions; the flag is --KEY unless `flag`
    kind: str  # how a value is read: path, size, bool, count, percent, patterns
    default: Any
    help: str
    metavar: str = ""
    flag: str = ""
    shown: str = ""  # the default as the README shows it (default: the value as written in rescue.conf)
    note: str = ""  # what the README adds after the flag
    backup: bool = True  # a setting of the backup job (device is the device of every command)

    @property
    def option(self) -> str:
        return self.flag or "--" + self.key.replace("_", "-")

    def parse(self, value: str, where: str) -> Any:
        """A value as written in rescue.conf or given to the flag."""
        text = str(value).strip()
        if self.kind == "size":
            return parse_size(text)
        if self.kind == "bool":
            return parse_bool(text, where)
        if self.kind == "percent":
            return parse_percent(text, where)
        if self.kind == "patterns":
            return [p for p in text.split() if p]
        if self.kind == "count":
            try:
                number = int(text)
            except ValueError:
                raise UsageError(f"{where}: '{value}' is not a whole number") from None
            if number < 0:
                raise UsageError(f"{where}: {number} cannot be negative")
            return number
        return text

    def readme_row(self) -> str:
        if self.kind == "bool":
            flag = f"`--[no-]{self.key.replace('_', '-')}`"
        else:
            flag = f"`{self.option} {self.metavar}`"
        default = self.shown or f"`{self.default}`"
        return f"| `{self.key}` | {flag}{' ' + self.note if self.note else ''} | {default} |"


SETTINGS = (
    Setting("device", "path", None, "tape device", "DEVICE", flag="-f", shown=f"`{DEFAULT_DEVICE}`",
            note="(then `$TAPE`, then this key)", backup=False),
    Setting("record_size", "size", DEFAULT_RECORD_SIZE, "bytes per tape record: 262144, 256K, 512b (default 256K)",
            "N", shown="`256K`", note="(bytes, `256K`, `1M`, `512b` for tar blocks)"),
    Setting("exclude", "patterns", (), "leave out (repeatable; adds to the configured list)", "PATTERN",
            shown="none", note="(adds to the key's list)"),
    Setting("default_excludes", "bool", True, "leave out proc, sys, dev, run, tmp, mnt, media, lost+found and "
            "mounted pseudo file systems (archived as empty directories; default: yes)", shown="`yes`"),
    Setting("one_file_system", "bool", False, "stay on ROOT's file system, as tar does", shown="`no`"),
    Setting("catalog_dir", "path", DEFAULT_CATALOG_DIR, "where catalogs are kept", "DIR"),
    Setting("spool_dir", "path", DEFAULT_SPOOL_DIR, "where database dumps are spooled", "DIR"),
    Setting("retention_days", "count", 0, "protect this set from overwriting for DAYS", "DAYS",
            flag="--retention", shown="`0` (may be overwritten any time)"),
    Setting("keep_catalogs", "count", 0, "keep the newest N catalogs of this host (default 0: all)", "N",
            note="(the newest N of this host)", shown="`0` (keep all)"),
    Setting("shrink_threshold", "percent", DEFAULT_SHRINK_THRESHOLD,
            "refuse a backup that shrank by more than PERCENT (default 30; off)", "PERCENT", note="(`off`)",
            shown="`30`"),
    Setting("verify", "bool", False, "read the set back and check every checksum", shown="`no`"),
    Setting("eject", "bool", False, "unload the tape when done", shown="`no`"),
    Setting("acls", "bool", True, "store POSIX ACLs", shown="`yes`"),
    Setting("xattrs", "bool", True, "store extended attributes", shown="`yes`"),
)  # fmt: skip
BY_KEY = {s.key: s for s in SETTINGS}
ALIASES = {"excludes": "exclude"}


def _fields(settings) -> list:
    out = []
    for s in settings:
        if s.kind == "patterns":
            out.append((s.key, List[str], dataclasses.field(default_factory=list)))
        else:
            out.append((s.key, Any, dataclasses.field(default=s.default)))
    return out


# The backup job's settings; rescue.backup.job.BackupOptions adds the per-run switches to them.
BackupSettings = dataclasses.make_dataclass("BackupSettings", _fields(s for s in SETTINGS if s.backup))
# What rescue.conf holds: every setting, and the database hooks of its [db NAME] sections.
Config = dataclasses.make_dataclass(
    "Config",
    _fields(SETTINGS) + [("db", List[DbHook], dataclasses.field(default_factory=list))],
)
BackupSettings.__module__ = Config.__module__ = __name__  # make_dataclass's module= is Python 3.12+
_HOOK_FIELDS = {f.name: f for f in dataclasses.fields(DbHook)}


def add_flags(parser) -> None:
    """The flags of the backup settings (`rescue backup`); None where not given, so the config's value stays."""
    for s in SETTINGS:
        if not s.backup:
            continue
        if s.kind == "bool":
            parser.add_argument(s.option, action=argparse.BooleanOptionalAction, default=None, help=s.help)
        elif s.kind == "patterns":
            parser.add_argument(
                s.option, dest=s.key, metavar=s.metavar, action="append", default=[], help=s.help
            )
        else:
            parser.add_argument(s.option, dest=s.key, metavar=s.metavar, default=None, help=s.help)


def backup_settings(args, cfg) -> dict:
    """The backup settings of this run: each flag given wins over the config's key (a pattern flag adds)."""
    values = {}
    for s in SETTINGS:
        if not s.backup:
            continue
        configured, given = getattr(cfg, s.key), getattr(args, s.key, None)
        if s.kind == "patterns":
            values[s.key] = list(configured) + list(given or ())
        elif given is None:
            values[s.key] = configured
        elif s.kind == "bool":
            values[s.key] = bool(given)
        else:
            values[s.key] = s.parse(given, s.option)
    return values


def parse_size(text: str) -> int:
    """`262144`, `256K`, `256KiB`, `1M`, `512b` (tar blocks) -> bytes; a positive multiple of 512."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmM]i?[bB]?|[bB])?\s*", str(text))
    if not m:
        raise UsageError(
            f"record size '{text}': use bytes or a suffix K, M or b (512-byte blocks), e.g. 256K"
        )
    n = int(m.group(1))
    unit = (m.group(2) or "").lower()
    if unit == "b":
        n *= BLOCKSIZE
    elif unit.startswith("k"):
        n *= 1024
    elif unit.startswith("m"):
        n *= 1024 * 1024
    return check_record_size(n, f"record size '{text}'")


def parse_bool(text: str, where: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise UsageError(f"{where}: '{text}' is not yes or no")


def make_hook(name: str, items: dict, where: str) -> DbHook:
    """A DbHook from key/value pairs (a [db NAME] section or a --db spec)."""
    values = {"name": name}
    for key, raw in items.items():
        key = key.replace("-", "_")
        if key in ("password", "passwd", "pass"):
            raise UsageError(
                f"{where}: passwords do not belong here (ps and config readers would see them); put them in the "
                "option file named by defaults_file (MariaDB) or in a passfile (PostgreSQL)"
            )
        if key not in _HOOK_FIELDS or key == "name":
            raise UsageError(
                f"{where}: unknown key '{key}' (known: {', '.join(k for k in _HOOK_FIELDS if k != 'name')})"
            )
        if key == "optional":
            values[key] = parse_bool(raw, f"{where} optional") if raw is not None else True
        elif key == "port":
            try:
                values[key] = int(raw)
            except (TypeError, ValueError):
                raise UsageError(f"{where}: port '{raw}' is not a number") from None
        else:
            values[key] = raw
    values.setdefault("type", name)
    return DbHook(**values)


def parse_db_spec(spec: str) -> DbHook:
    """`--db NAME[,key=value...][,optional]`: `--db postgresql,run_as=postgres`, `--db mariadb,defaults_file=F`."""
    parts = [p for p in spec.split(",") if p.strip()]
    if not parts:
        raise UsageError(
            "--db: give a hook as NAME[,key=value...], e.g. mariadb,defaults_file=/etc/rescue/my.cnf"
        )
    name = parts[0].strip()
    items = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        items[key.strip()] = value.strip() if sep else None
    return make_hook(name, items, f"--db {spec}")


def load(path: Optional[str] = None):
    """Read the config file (default /etc/rescue/rescue.conf, which may be absent)."""
    cfg = Config()
    explicit = path is not None
    path = path or DEFAULT_PATH
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        if explicit:
            raise UsageError(f"{path}: config file not found") from None
        return cfg
    except configparser.Error as e:
        raise UsageError(f"{path}: not a valid config file ({str(e).splitlines()[0]})") from None
    for section in parser.sections():
        where = f"{path} [{section}]"
        try:
            if section == "rescue":
                for key, value in parser.items(section):
                    _set(cfg, key, value, f"{where} {key}")
            elif section.startswith("db ") or section.startswith("db."):
                name = section[3:].strip()
                if not name:
                    raise UsageError(f"{where}: a database section needs a name, e.g. [db mariadb]")
                cfg.db.append(make_hook(name, dict(parser.items(section)), where))
            else:
                raise UsageError(f"{where}: unknown section (known: [rescue], [db NAME])")
        except RescueError as e:
            if path in str(e):
                raise
            raise UsageError(f"{where}: {e}") from None
    return cfg


def _set(cfg, key: str, value: str, where: str) -> None:
    key = key.replace("-", "_")
    setting = BY_KEY.get(ALIASES.get(key, key))
    if setting is None:
        raise UsageError(f"{where}: unknown key (known: {', '.join(BY_KEY)}; see the README's Configuration)")
    setattr(cfg, setting.key, setting.parse(value, where))


def parse_percent(value: str, where: str = "--shrink-threshold") -> float:
    text = str(value).strip().rstrip("%").strip()
    if text.lower() in ("off", "no", "none"):
        return 0.0
    try:
        pct = float(text)
    except ValueError:
        raise UsageError(f"{where}: '{value}' is not a percentage (e.g. 30, or off)") from None
    if not 0 <= pct <= 100:
        raise UsageError(f"{where}: {value} is not between 0 and 100")
    return pct


def select_hooks(cfg, specs: Optional[List[str]], no_db: bool = False) -> List[DbHook]:
    """The configured hooks with the --db ones added (a --db hook replaces a configured one of the same name);
    --no-db drops the configured ones."""
    hooks = [] if no_db else list(cfg.db)
    for spec in specs or ():
        hook = parse_db_spec(spec)
        hooks = [h for h in hooks if h.name != hook.name] + [hook]
    return hooks


def resolve_device(flag: Optional[str], cfg) -> str:
    """-f DEVICE, else $TAPE, else the config's device, else /dev/nst0."""
    return flag or os.environ.get("TAPE") or cfg.device or DEFAULT_DEVICE
