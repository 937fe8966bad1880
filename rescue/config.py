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

Every key has a command line flag of the same name (`--record-size`, `--exclude`, `--db mariadb,defaults_file=..`)
and the flag wins.  A missing default file is fine (built-in defaults); a file named with --config must exist.
Unknown keys are errors, so a typo never silently disables a guard.  Passwords are refused here: they belong in
the option file or passfile a hook names.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import re
from typing import List, Optional

from rescue.archive.tarformat import BLOCKSIZE, DEFAULT_RECORD_SIZE, check_record_size
from rescue.db import DbHook
from rescue.errors import RescueError, UsageError

DEFAULT_PATH = "/etc/rescue/rescue.conf"
DEFAULT_CATALOG_DIR = "/var/lib/rescue/catalogs"
DEFAULT_SPOOL_DIR = "/var/lib/rescue/spool"
DEFAULT_SHRINK_THRESHOLD = 30.0  # percent


@dataclasses.dataclass
class Config:
    device: Optional[str] = None
    record_size: int = DEFAULT_RECORD_SIZE
    exclude: List[str] = dataclasses.field(default_factory=list)
    default_excludes: bool = True
    one_file_system: bool = False
    catalog_dir: str = DEFAULT_CATALOG_DIR
    spool_dir: str = DEFAULT_SPOOL_DIR
    retention_days: int = 0  # 0: the tape may be overwritten any time
    keep_catalogs: int = 0  # catalogs of this host kept in catalog_dir, newest first; 0 keeps all
    shrink_threshold: float = DEFAULT_SHRINK_THRESHOLD  # percent drop that refuses a backup; 0 turns it off
    verify: bool = False
    eject: bool = False
    acls: bool = True
    xattrs: bool = True
    db: List[DbHook] = dataclasses.field(default_factory=list)


_BOOL_KEYS = ("default_excludes", "one_file_system", "verify", "eject", "acls", "xattrs")
_HOOK_FIELDS = {f.name: f for f in dataclasses.fields(DbHook)}


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


def load(path: Optional[str] = None) -> Config:
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


def _set(cfg: Config, key: str, value: str, where: str) -> None:
    key = key.replace("-", "_")
    if key in ("exclude", "excludes"):
        cfg.exclude = [p for p in value.split() if p]
    elif key == "record_size":
        cfg.record_size = parse_size(value)
    elif key in _BOOL_KEYS:
        setattr(cfg, key, parse_bool(value, where))
    elif key in ("retention_days", "keep_catalogs"):
        try:
            number = int(value)
        except ValueError:
            raise UsageError(f"{where}: '{value}' is not a whole number") from None
        if number < 0:
            raise UsageError(f"{where}: cannot be negative")
        setattr(cfg, key, number)
    elif key == "shrink_threshold":
        cfg.shrink_threshold = parse_percent(value, where)
    elif key in ("device", "catalog_dir", "spool_dir"):
        setattr(cfg, key, value.strip())
    else:
        raise UsageError(f"{where}: unknown key (see the Configuration section of the README)")


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


def select_hooks(cfg: Config, specs: Optional[List[str]], no_db: bool = False) -> List[DbHook]:
    """The configured hooks with the --db ones added (a --db hook replaces a configured one of the same name);
    --no-db drops the configured ones."""
    hooks = [] if no_db else list(cfg.db)
    for spec in specs or ():
        hook = parse_db_spec(spec)
        hooks = [h for h in hooks if h.name != hook.name] + [hook]
    return hooks


def resolve_device(flag: Optional[str], cfg: Config) -> str:
    """-f DEVICE, else $TAPE, else the config's device, else /dev/nst0."""
    return flag or os.environ.get("TAPE") or cfg.device or "/dev/nst0"
