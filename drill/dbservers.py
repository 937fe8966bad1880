"""Real MariaDB and PostgreSQL servers for the tests, each on a unix socket in its own temporary directory.

MariaDB: mariadb-install-db + mariadbd --skip-networking (mariadbd runs as root with --user=root).
PostgreSQL: initdb + postgres with listen_addresses='' (no TCP), run as the `postgres` system user through
setpriv (postgres refuses to run as root), in a directory that user owns.  Both are stopped by their pid.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time


def _wait(pred, what: str, proc: subprocess.Popen, log: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log, errors="replace") as f:
                raise RuntimeError(f"{what} exited with {proc.returncode}:\n{f.read()[-3000:]}")
        if pred():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up in {timeout}s")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


_templates: dict = {}


def mariadb_template() -> str:
    """A data directory made by mariadb-install-db once per test session; each server gets a copy (an install
    costs seconds, a copy milliseconds)."""
    if "mariadb" not in _templates:
        base = tempfile.mkdtemp(prefix="rescue-test-mariadb-template-")
        datadir = os.path.join(base, "data")
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={datadir}",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _templates["mariadb"] = datadir
    return _templates["mariadb"]


def _postgres_template(bindir: str, as_postgres: list) -> str:
    """An initdb'ed cluster, once per session, owned by postgres; servers copy it."""
    if "postgres" not in _templates:
        pw = pwd.getpwnam("postgres")
        base = tempfile.mkdtemp(prefix="rescue-test-pg-template-")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        datadir = os.path.join(base, "data")
        subprocess.run(
            as_postgres
            + [
                f"{bindir}/initdb",
                "-D",
                datadir,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=base,
        )
        _templates["postgres"] = datadir
    return _templates["postgres"]


def remove_templates() -> None:
    for datadir in _templates.values():
        shutil.rmtree(os.path.dirname(datadir), ignore_errors=True)
    _templates.clear()


MARIADB_TOOLS = ("mariadb-install-db", "mariadbd", "mariadb", "mariadb-dump")
POSTGRES_TOOLS = ("psql", "pg_dumpall", "setpriv")


def postgres_bindir() -> str:
    """The newest PostgreSQL server's bin directory (Debian's layout); callers check it exists first."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        raise RuntimeError("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) missing")
    return bins[-1]


class MariaDBServer:
    def __init__(self, base: str):
        self.base = base
        self.datadir = os.path.join(base, "data")
        self.socket = os.path.join(base, "mysqld.sock")
        self.log = os.path.join(base, "error.log")
        shutil.copytree(mariadb_template(), self.datadir, symlinks=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    "mariadbd",
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    f"--socket={self.socket}",
                    f"--pid-file={os.path.join(base, 'mysqld.pid')}",
                    "--skip-networking",
                    "--user=root",
                    "--innodb-buffer-pool-size=16M",
                    "--skip-log-bin",
                ],
                stdout=log,
                stderr=log,
            )
        _wait(lambda: self._ping(), "mariadbd", self.proc, self.log)

    def _ping(self) -> bool:
        r = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-e", "SELECT 1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return r.returncode == 0

    def sql(self, statement: str, database: str = "") -> str:
        argv = ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-B", "-e", statement]
        if database:
            argv.append(database)
        return subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True).stdout

    def stop(self) -> None:
        _stop(self.proc)


class PostgresServer:
    def __init__(self):
        self.bin = postgres_bindir()
        pw = pwd.getpwnam("postgres")
        # tmp_path is root's 0700 tree; postgres needs a directory it owns and can reach.
        self.base = tempfile.mkdtemp(prefix="rescue-test-pg-")
        os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.datadir = os.path.join(self.base, "data")
        self.sockdir = self.base
        self.log = os.path.join(self.base, "postgres.log")
        self._as_postgres = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--"]
        template = _postgres_template(self.bin, self._as_postgres)
        # cp -a keeps the owner (postgres) and the 0700 mode postgres insists on.
        subprocess.run(["cp", "-a", template, self.datadir], check=True)
        fd = os.open(self.log, os.O_WRONLY | os.O_CREAT, 0o644)
        os.fchown(fd, pw.pw_uid, pw.pw_gid)
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(
                self._as_postgres
                + [
                    f"{self.bin}/postgres",
                    "-D",
                    self.datadir,
                    "-k",
                    self.sockdir,
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "shared_buffers=16MB",
                ],
                stdout=log,
                stderr=log,
                cwd=self.base,
            )
        _wait(lambda: self._ping(), "postgres", self.proc, self.log)

    def _ping(self) -> bool:
        r = subprocess.run(
            ["psql", "-X", "-h", self.sockdir, "-U", "postgres", "-d", "postgres", "-c", "SELECT 1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return r.returncode == 0

    def sql(self, statement: str, database: str = "postgres") -> str:
        argv = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.sockdir, "-U", "postgres"]
        argv += ["-d", database, "-c", statement]
        return subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True).stdout

    def stop(self) -> None:
        _stop(
            self.proc, signal.SIGINT
        )  # postgres(1): SIGINT is the fast shutdown (SIGTERM waits for clients)
        shutil.rmtree(self.base, ignore_errors=True)
