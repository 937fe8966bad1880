"""Reload the database dumps now, in a chroot of the target, with the target's own MariaDB server.

`--reload-db-now` (recover, finalize) is the alternative to `--reload-db` (a one-shot unit at first boot): the
restored machine comes up with its data already in place, and a dump that does not load stops the recover in the
rescue system, where the administrator is, instead of in a unit at first boot.

Contract: `reload_now(chroot, log)` takes an entered `rescue.recover.chroot.Chroot` (/dev, /proc, /sys, /run
bound) and the recover log, finds TARGET/var/lib/rescue/dumps/*.sql, and returns lines for the administrator.
It refuses, before starting anything, a dump that is not MariaDB/MySQL (PostgreSQL reloads at first boot:
`--reload-db`) and a target without a server (naming the package). The server runs as the target's `mysql` user
on the target's data directory and its own configuration, with no network and a private socket in
/run/rescue-db; it is shut down again whatever happens (mariadb-admin shutdown, then SIGTERM, then SIGKILL, by
its pid). Raises DbReloadError.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from typing import List, Optional, TextIO

from rescue import db
from rescue.archive.owners import id_table
from rescue.errors import RescueError

SERVERS = ("usr/sbin/mariadbd", "usr/sbin/mysqld")
CLIENTS = ("usr/bin/mariadb", "usr/bin/mysql")
ADMINS = ("usr/bin/mariadb-admin", "usr/bin/mysqladmin")
RUN_DIR = "/run/rescue-db"  # the rescue system's /run, bound into the chroot
START_SECONDS = 300.0  # a first start after a restore may run InnoDB recovery; emulated machines are slow
STOP_SECONDS = 120.0


class DbReloadError(RescueError):
    pass


def _first(target: str, candidates) -> Optional[str]:
    for rel in candidates:
        if os.path.isfile(os.path.join(target, rel)):
            return "/" + rel
    return None


def target_uid(target: str, user: str) -> Optional[int]:
    """The user's uid in the target's /etc/passwd only (the rescue system's may differ or lack it)."""
    try:
        with open(os.path.join(target, "etc/passwd"), "rb") as f:
            return id_table(f.read()).get(user)
    except OSError:
        return None


def check(target: str, dumps: List[str]) -> None:
    """Refuse before anything starts: a dump this stage cannot load, or no server in the target."""
    other = [os.path.basename(d) for d in dumps if db.sniff_type(d) != "mariadb"]
    if other:
        raise DbReloadError(
            f"{', '.join(other)}: only MariaDB/MySQL dumps reload now; reload these at first boot with "
            "--reload-db (or by hand: rescue db reload)"
        )
    if _first(target, SERVERS) is None or _first(target, CLIENTS) is None:
        raise DbReloadError(
            f"{target}: no MariaDB server in the restored system (package mariadb-server); "
            "reload the dumps at first boot with --reload-db instead"
        )
    if target_uid(target, "mysql") is None:
        raise DbReloadError(f"{target}/etc/passwd: no mysql user to run the database server as")


class PrivateServer:
    """The target's mariadbd in the chroot, with no network, on a socket only this stage knows."""

    def __init__(self, chroot, log: TextIO):
        self.ch, self.log = chroot, log
        self.socket = f"{RUN_DIR}/mysqld.sock"
        self.errlog = f"{RUN_DIR}/error.log"
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> PrivateServer:
        target = self.ch.target
        if os.path.isdir(RUN_DIR):
            shutil.rmtree(RUN_DIR)
        os.mkdir(RUN_DIR, 0o755)
        uid = target_uid(target, "mysql")
        os.chown(RUN_DIR, uid, -1)
        argv = [
            _first(target, SERVERS),
            "--user=mysql",
            "--skip-networking",
            f"--socket={self.socket}",
            f"--pid-file={RUN_DIR}/mysqld.pid",
            f"--log-error={self.errlog}",
        ]
        self.log.write(f"$ chroot {target} {' '.join(argv)} &\n")
        # What it says before its error log is open (a bad option, say) goes to the same file.
        with open(self.errlog, "ab") as console:
            os.fchown(console.fileno(), uid, -1)
            self.proc = self.ch.popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=console)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def client(self, *args: str) -> List[str]:
        return [_first(self.ch.target, CLIENTS), f"--socket={self.socket}", *args]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DbReloadError(
                    f"the target's database server stopped at start (exit {self.proc.returncode}): "
                    f"{self._error_tail()}"
                )
            if os.path.exists(self.socket):
                code, _ = self.ch.run(self.client("-e", "SELECT 1"))
                if code == 0:
                    return
            time.sleep(0.5)
        raise DbReloadError(f"the target's database server did not answer in {START_SECONDS:.0f} s")

    def _error_tail(self) -> str:
        try:
            with open(self.errlog, encoding="utf-8", errors="replace") as f:
                lines = [ln.strip() for ln in f if "[ERROR]" in ln]
        except OSError:
            lines = []
        return lines[-1] if lines else f"see {self.errlog}"

    def load(self, dump: str) -> None:
        """One dump into the server, streamed from its file to the client (a dump can be large)."""
        self.log.write(f"$ chroot {self.ch.target} {' '.join(self.client())} < {dump}\n")
        self.log.flush()
        with open(dump, "rb") as f:
            proc = self.ch.popen(self.client(), stdin=f, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            out, _ = proc.communicate()
        text = out.decode("utf-8", "replace")
        self.log.write(text + f"[exit {proc.returncode}]\n")
        if proc.returncode != 0:
            last = text.strip().splitlines()[-1:] or ["no message"]
            raise DbReloadError(f"reload of {os.path.basename(dump)}: exit {proc.returncode}: {last[0]}")

    def __exit__(self, *exc) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        admin = _first(self.ch.target, ADMINS)
        if admin:
            self.ch.run([admin, f"--socket={self.socket}", "shutdown"])
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=STOP_SECONDS if sig != signal.SIGKILL else 10)
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.write(f"[database server exit {self.proc.returncode}]\n")


def reload_now(chroot, log: TextIO) -> List[str]:
    """Load every dump of the target into the target's own server, started and stopped here."""
    dumps = db.dump_files(chroot.target)
    if not dumps:
        return ["no database dumps in the restored system: nothing to reload"]
    check(chroot.target, dumps)
    done = []
    with PrivateServer(chroot, log) as server:
        for dump in dumps:
            started = time.monotonic()
            server.load(dump)
            done.append(
                f"reloaded /{db.DUMP_ARCDIR}/{os.path.basename(dump)} into the target's MariaDB "
                f"({time.monotonic() - started:.1f} s)"
            )
    return done
