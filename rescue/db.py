"""Database hooks: consistent dumps before the archive is written, and reloading them after a restore.

- MariaDB/MySQL: `mariadb-dump` (or `mysqldump`) `--all-databases --single-transaction --routines --events
  --triggers`.  Credentials come only from an option file given with `--defaults-extra-file` (which must be the
  first option, see mariadb-dump(1) "Option files"), never from the command line, where `ps` would show them;
  without one, the client's usual option files and unix-socket authentication apply (Debian's root).
- PostgreSQL: `pg_dumpall` (roles, tablespaces, every database), run as `run_as` (usually `postgres`, for peer
  authentication) through runuser; a password comes only from a passfile (PGPASSFILE, see libpq's "The Password
  File").
- Dumps go to a 0700 spool directory, mode 0600, streamed from the tool's stdout (no dump sits in memory).  The
  backup writes them first in the archive as `var/lib/rescue/dumps/<name>.sql` and lists them in the label.
- A failed dump raises DumpError (exit 2) unless the hook is optional: then it is a warning (exit 1).
- `reload()` feeds a dump to a running server's client (`mariadb`, `psql`) on stdin.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import subprocess
import sys
from typing import IO, List, Optional, Tuple

from rescue.errors import RescueError

DUMP_ARCDIR = "var/lib/rescue/dumps"
MARIADB_TYPES = ("mariadb", "mysql")
POSTGRES_TYPES = ("postgresql", "postgres")
TYPES = MARIADB_TYPES + POSTGRES_TYPES
MARIADB_DUMP_OPTIONS = ["--all-databases", "--single-transaction", "--routines", "--events", "--triggers"]


class DumpError(RescueError):
    """A database dump or reload failed."""


@dataclasses.dataclass
class DbHook:
    """One database server to dump. Field names are the config keys of a `[db NAME]` section."""

    name: str
    type: str  # mariadb, mysql, postgresql
    optional: bool = False  # a failed dump is a warning (exit 1) instead of fatal
    defaults_file: Optional[str] = None  # MariaDB/MySQL option file with user, password, socket
    socket: Optional[str] = None  # MariaDB/MySQL unix socket
    host: Optional[str] = None  # PostgreSQL host or socket directory; MariaDB host
    port: Optional[int] = None
    user: Optional[str] = None
    passfile: Optional[str] = None  # PostgreSQL password file (PGPASSFILE)
    run_as: Optional[str] = None  # run the tools as this system user (runuser -u)
    command: Optional[str] = None  # the dump program, if not the usual one on PATH
    client: Optional[str] = None  # the client program used by reload

    def __post_init__(self):
        if self.type not in TYPES:
            raise RescueError(
                f"database hook '{self.name}': unknown type '{self.type}' (one of {', '.join(TYPES)})"
            )
        if self.type == "postgres":
            self.type = "postgresql"

    @property
    def arcname(self) -> str:
        return f"{DUMP_ARCDIR}/{self.name}.sql"


@dataclasses.dataclass
class Dump:
    name: str
    type: str
    path: str  # the spooled file
    arcname: str  # its path in the archive
    size: int


def _which(*names: str) -> str:
    for name in names:
        if shutil.which(name):
            return name
    return names[0]


def _run_as(hook: DbHook) -> List[str]:
    return ["runuser", "-u", hook.run_as, "--"] if hook.run_as else []


def _mariadb_connection(hook: DbHook) -> List[str]:
    # --defaults-extra-file must come first (mariadb-dump(1), "Option files").
    args = [f"--defaults-extra-file={hook.defaults_file}"] if hook.defaults_file else []
    if hook.socket:
        args.append(f"--socket={hook.socket}")
    if hook.host:
        args.append(f"--host={hook.host}")
    if hook.port:
        args.append(f"--port={hook.port}")
    if hook.user:
        args.append(f"--user={hook.user}")
    return args


def _postgres_connection(hook: DbHook) -> List[str]:
    args = []
    if hook.host:
        args += ["-h", hook.host]
    if hook.port:
        args += ["-p", str(hook.port)]
    if hook.user:
        args += ["-U", hook.user]
    return args


def _env(hook: DbHook) -> dict:
    env = dict(os.environ)
    if hook.passfile:
        env["PGPASSFILE"] = hook.passfile
    return env


def dump_command(hook: DbHook) -> List[str]:
    """The argv of the dump; it holds no password (tests check that)."""
    if hook.type in MARIADB_TYPES:
        prog = hook.command or (
            _which("mariadb-dump", "mysqldump")
            if hook.type == "mariadb"
            else _which("mysqldump", "mariadb-dump")
        )
        return _run_as(hook) + [prog] + _mariadb_connection(hook) + MARIADB_DUMP_OPTIONS
    prog = hook.command or "pg_dumpall"
    return _run_as(hook) + [prog] + _postgres_connection(hook)


def reload_command(hook: DbHook) -> List[str]:
    """The argv of the client that reads a dump on stdin."""
    if hook.type in MARIADB_TYPES:
        prog = hook.client or (
            _which("mariadb", "mysql") if hook.type == "mariadb" else _which("mysql", "mariadb")
        )
        return _run_as(hook) + [prog] + _mariadb_connection(hook)
    prog = hook.client or "psql"
    # Errors such as "role postgres already exists" are expected on a fresh server: go on (ON_ERROR_STOP off).
    return (
        _run_as(hook)
        + [prog, "-X", "-q", "-v", "ON_ERROR_STOP=0"]
        + _postgres_connection(hook)
        + ["-d", "postgres"]
    )


def _tail(text: bytes, lines: int = 3) -> str:
    rows = [r for r in text.decode("utf-8", "replace").splitlines() if r.strip()]
    return " / ".join(rows[-lines:]) or "no message"


def _run(argv: List[str], hook: DbHook, stdin, stdout, what: str) -> bytes:
    try:
        # cwd "/": a tool run as another user (runuser) may not enter root's working directory (psql warns).
        proc = subprocess.run(
            argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=_env(hook), cwd="/", check=False
        )
    except FileNotFoundError:
        raise DumpError(
            f"database hook '{hook.name}': {argv[len(_run_as(hook))]} not found; install the client tools "
            "or set 'command' in its [db] section"
        ) from None
    if proc.returncode != 0:
        raise DumpError(
            f"database hook '{hook.name}': {what} failed (exit {proc.returncode}): {_tail(proc.stderr)}"
        )
    return proc.stderr


def make_spool(spool_dir: str) -> str:
    """The 0700 directory dumps are written to (created, or its mode tightened)."""
    path = os.path.join(spool_dir, "dumps")
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(spool_dir, 0o700)
    os.chmod(path, 0o700)
    return path


def dump_one(hook: DbHook, spool: str) -> Dump:
    path = os.path.join(spool, f"{hook.name}.sql")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            _run(dump_command(hook), hook, subprocess.DEVNULL, out, "dump")
    except BaseException:
        if os.path.exists(path):
            os.unlink(path)
        raise
    return Dump(hook.name, hook.type, path, hook.arcname, os.path.getsize(path))


def run_dumps(
    hooks: List[DbHook], spool_dir: str, out: Optional[IO[str]] = None
) -> Tuple[List[Dump], List[str]]:
    """Dump every hook into the spool. Returns the dumps and warnings (failed optional hooks)."""
    out = out if out is not None else sys.stderr
    if not hooks:
        return [], []
    names = [h.name for h in hooks]
    if len(set(names)) != len(names):
        raise RescueError(f"database hooks: names must be unique ({', '.join(names)})")
    spool = make_spool(spool_dir)
    dumps, warnings = [], []
    for hook in hooks:
        print(f"rescue: dumping database '{hook.name}' ({hook.type})", file=out)
        try:
            dumps.append(dump_one(hook, spool))
        except DumpError as e:
            if not hook.optional:
                for d in dumps:
                    os.unlink(d.path)
                raise DumpError(
                    f"{e}; the backup was not written (mark the hook optional to go on without it)"
                ) from None
            warnings.append(f"{e} (optional: backup goes on without it)")
            print(f"rescue: warning: {e}", file=out)
    return dumps, warnings


def remove_dumps(dumps: List[Dump]) -> None:
    for d in dumps:
        try:
            os.unlink(d.path)
        except FileNotFoundError:
            pass


def dump_files(root: str) -> List[str]:
    """The dumps a restored system at `root` holds (what `rescue backup` put in its archive), sorted."""
    return sorted(glob.glob(os.path.join(root, DUMP_ARCDIR, "*.sql")))


def sniff_type(path: str) -> Optional[str]:
    """mariadb or postgresql from a dump's first lines (the tools' own headers), None if neither."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if b"MariaDB dump" in head or b"MySQL dump" in head:
        return "mariadb"
    if b"PostgreSQL database cluster dump" in head or b"PostgreSQL database dump" in head:
        return "postgresql"
    return None


def reload(path: str, hook: Optional[DbHook] = None) -> None:
    """Load a dump into a running server; the hook gives the connection (default: the local server)."""
    if hook is None:
        kind = sniff_type(path)
        if kind is None:
            raise DumpError(f"{path}: not a MariaDB/MySQL or PostgreSQL dump; name its type with --db")
        name = os.path.basename(path).rsplit(".", 1)[0]
        hook = DbHook(name=name, type=kind, run_as="postgres" if kind == "postgresql" else None)
    with open(path, "rb") as f:
        _run(reload_command(hook), hook, f, subprocess.DEVNULL, f"reload of {path}")
