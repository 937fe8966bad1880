"""`--reload-db-now`: the dumps loaded by the target's own MariaDB server in a chroot, started and stopped there.

The real test builds a small target: the host's /usr and /etc bound read-only (the "restored system's" server,
client and configuration), a data directory of its own owned by the mysql user, and a real dump of a real server
in var/lib/rescue/dumps. Read-only binds, so nothing under the target can ever write into the host.
"""

from __future__ import annotations

import io
import json
import os
import subprocess

import pytest

from drill.dbservers import MARIADB_TOOLS, MariaDBServer, mariadb_template, remove_templates
from rescue import db
from rescue.errors import EXIT_FATAL, UsageError
from rescue.recover import dbreload
from rescue.recover.chroot import Chroot, logged_runner
from rescue.recover.job import RecoverOptions, run_one
from tests.support import need, need_tool

ROWS = "1\tbolt\t3\n2\tnut\t5\n"


def _dump(path, kind: str) -> None:
    head = {"mariadb": "-- MariaDB dump 10.19\n", "postgresql": "-- PostgreSQL database cluster dump\n"}[kind]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(head)


def test_a_postgresql_dump_is_refused_before_anything_starts(tmp_path):
    target = str(tmp_path)
    _dump(tmp_path / db.DUMP_ARCDIR / "a.sql", "mariadb")
    _dump(tmp_path / db.DUMP_ARCDIR / "pg.sql", "postgresql")
    with pytest.raises(
        dbreload.DbReloadError, match=r"pg\.sql: only MariaDB/MySQL dumps reload now.*--reload-db"
    ):
        dbreload.check(target, db.dump_files(target))


def test_a_target_without_a_server_names_the_package(tmp_path):
    _dump(tmp_path / db.DUMP_ARCDIR / "a.sql", "mariadb")
    with pytest.raises(dbreload.DbReloadError, match=r"no MariaDB server .*\(package mariadb-server\)"):
        dbreload.check(str(tmp_path), db.dump_files(str(tmp_path)))


def test_the_mysql_user_is_read_from_the_targets_passwd(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nmysql:x:107:113::/nonexistent:/bin/false\n"
    )
    assert dbreload.target_uid(str(tmp_path), "mysql") == 107
    assert dbreload.target_uid(str(tmp_path), "postgres") is None


def test_both_reload_flags_at_once_are_a_usage_error(tmp_path):
    options = RecoverOptions(
        target=str(tmp_path), state_dir=str(tmp_path / "s"), reload_db=True, reload_db_now=True
    )
    with pytest.raises(UsageError, match="exclude each other") as e:
        run_one("finalize", options)
    assert e.value.exit_code == EXIT_FATAL


@pytest.fixture
def target(tmp_path):
    """A target whose server is the host's (bound read-only) on a data directory of its own."""
    need(os.geteuid() == 0, "chroot and bind mounts need root")
    need_tool(*MARIADB_TOOLS, "chroot", "mount")
    need(dbreload.target_uid("/", "mysql") is not None, "no mysql user (package mariadb-server)")
    root = tmp_path / "target"
    root.mkdir(mode=0o755)
    bound = []
    try:
        for name in ("usr", "etc"):
            (root / name).mkdir()
            subprocess.run(["mount", "--bind", f"/{name}", str(root / name)], check=True)
            bound.append(str(root / name))
            subprocess.run(["mount", "-o", "remount,bind,ro", str(root / name)], check=True)
        for name in ("bin", "sbin", "lib", "lib64"):
            if os.path.islink(f"/{name}"):
                os.symlink(os.readlink(f"/{name}"), root / name)
        (root / "tmp").mkdir()
        os.chmod(root / "tmp", 0o1777)
        datadir = root / "var/lib/mysql"
        datadir.parent.mkdir(parents=True)
        subprocess.run(["cp", "-a", mariadb_template(), str(datadir)], check=True)
        uid = dbreload.target_uid("/", "mysql")
        subprocess.run(["chown", "-R", f"{uid}", str(datadir)], check=True)
        yield str(root)
    finally:
        for point in reversed(bound):
            subprocess.run(["umount", point], check=False)
        remove_templates()


def _source_dump(tmp_path, target: str) -> None:
    server = MariaDBServer(str(tmp_path / "source"))
    try:
        server.sql(
            "CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, name TEXT, qty INT);"
            " INSERT INTO shop.items VALUES (1, 'bolt', 3), (2, 'nut', 5);"
        )
        hook = db.DbHook(name="mariadb", type="mariadb", socket=server.socket, user="root")
        (dump,) = db.run_dumps([hook], str(tmp_path / "spool"), out=io.StringIO())[0]
    finally:
        server.stop()
    dest = os.path.join(target, dump.arcname)
    os.makedirs(os.path.dirname(dest))
    os.replace(dump.path, dest)


def _mounts_under(path: str) -> list:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path + "/")]


def _finalize_now(tmp_path, target: str) -> str:
    """`rescue finalize --reload-db-now` on the state a recover leaves after its bootloader stage."""
    state = tmp_path / "state"
    state.mkdir()
    done = {"done": True, "seconds": 1.0}
    data = {"stages": dict.fromkeys(("layout", "restore", "bootloader"), done), "options": {}, "layout": {}}
    data.update(device_map={}, mounts=[], changed=[])
    (state / "recover.json").write_text(json.dumps(data))
    out = io.StringIO()
    options = RecoverOptions(target=target, state_dir=str(state), reload_db_now=True)
    assert run_one("finalize", options, out=out) == 0
    return out.getvalue()


@pytest.mark.db
def test_finalize_loads_the_dump_with_the_targets_own_server_as_its_mysql_user(tmp_path, target):
    _source_dump(tmp_path, target)
    said = _finalize_now(tmp_path, target)
    assert "finalize: reloaded /var/lib/rescue/dumps/mariadb.sql into the target's MariaDB" in said
    # The chroot's binds are gone again and the server is stopped: only the test's own read-only binds stay.
    assert _mounts_under(target) == [os.path.join(target, n) for n in ("usr", "etc")]
    assert not os.path.exists(os.path.join(dbreload.RUN_DIR, "mysqld.pid"))
    # The restored system's server runs as mysql at boot: what the reload wrote must be its.
    uid = dbreload.target_uid(target, "mysql")
    assert os.stat(os.path.join(target, "var/lib/mysql/shop/items.ibd")).st_uid == uid
    log = io.StringIO()
    with Chroot(target, logged_runner(log)) as ch:
        server = dbreload.PrivateServer(ch, log)
        with server:
            code, rows = ch.run(server.client("-N", "-B", "-e", "SELECT * FROM shop.items ORDER BY id"))
        assert server.proc.returncode == 0, log.getvalue()[-2000:]  # shut down, not killed
    assert (code, rows) == (0, ROWS)


@pytest.mark.db
def test_a_dump_that_does_not_load_stops_with_its_name_and_the_server_is_stopped(tmp_path, target):
    _dump(os.path.join(target, db.DUMP_ARCDIR, "broken.sql"), "mariadb")
    with open(os.path.join(target, db.DUMP_ARCDIR, "broken.sql"), "a") as f:
        f.write("THIS IS NOT SQL;\n")
    log = io.StringIO()
    with (
        Chroot(target, logged_runner(log)) as ch,
        pytest.raises(dbreload.DbReloadError, match=r"broken\.sql: exit 1"),
    ):
        dbreload.reload_now(ch, log)
    assert "[database server exit 0]" in log.getvalue()


@pytest.mark.db
def test_a_server_that_does_not_start_is_one_error_with_its_own_words(tmp_path, target):
    _dump(os.path.join(target, db.DUMP_ARCDIR, "a.sql"), "mariadb")
    subprocess.run(["chown", "-R", "root", os.path.join(target, "var/lib/mysql")], check=True)
    os.chmod(os.path.join(target, "var/lib/mysql"), 0o700)
    log = io.StringIO()
    with Chroot(target, logged_runner(log)) as ch, pytest.raises(dbreload.DbReloadError) as e:
        dbreload.reload_now(ch, log)
    assert "database server stopped at start" in str(e.value) and "[ERROR]" in str(e.value)
