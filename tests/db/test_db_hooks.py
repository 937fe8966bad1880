"""Database hooks against real servers: dump, reload into a fresh server, rows equal; failures and options."""

from __future__ import annotations

import os
import stat

import pytest

from rescue import db
from rescue.errors import RescueError

pytestmark = pytest.mark.db

MARIADB_ROWS = "1\tapple\t0.50\n2\tpear\t0.75\n3\tfig\t2.10\n"


def _fill_mariadb(server):
    server.sql("CREATE DATABASE shop")
    server.sql("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), price DECIMAL(6,2))", "shop")
    server.sql("INSERT INTO items VALUES (1,'apple',0.50),(2,'pear',0.75),(3,'fig',2.10)", "shop")
    server.sql("CREATE DATABASE blog")
    server.sql("CREATE TABLE posts (id INT PRIMARY KEY, title TEXT)", "blog")
    server.sql("INSERT INTO posts VALUES (1,'hello'),(2,'tape')", "blog")
    server.sql("CREATE PROCEDURE shop.cheap() SELECT name FROM shop.items WHERE price < 1")
    # A user with a password, to prove the credentials travel in the option file only.
    server.sql("CREATE USER 'backup'@'localhost' IDENTIFIED BY 's3cret-pw'")
    server.sql("GRANT ALL ON *.* TO 'backup'@'localhost'")


def _option_file(tmp_path, server) -> str:
    path = tmp_path / "backup.cnf"
    path.write_text(f"[client]\nuser=backup\npassword=s3cret-pw\nsocket={server.socket}\n")
    path.chmod(0o600)
    return str(path)


def test_mariadb_dump_and_reload_into_a_fresh_server_gives_equal_rows(mariadb_factory, tmp_path):
    source = mariadb_factory("source")
    _fill_mariadb(source)
    hook = db.DbHook(name="mariadb", type="mariadb", defaults_file=_option_file(tmp_path, source))
    assert not any("s3cret" in arg for arg in db.dump_command(hook))
    dumps, warnings = db.run_dumps([hook], str(tmp_path / "spool"), out=open(os.devnull, "w"))
    assert warnings == []
    (dump,) = dumps
    assert dump.arcname == "var/lib/rescue/dumps/mariadb.sql"
    assert stat.S_IMODE(os.stat(dump.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(dump.path)).st_mode) == 0o700
    assert db.sniff_type(dump.path) == "mariadb"

    fresh = mariadb_factory("fresh")
    assert "shop" not in fresh.sql("SHOW DATABASES")
    db.reload(dump.path, db.DbHook(name="mariadb", type="mariadb", socket=fresh.socket, user="root"))
    assert fresh.sql("SELECT * FROM items ORDER BY id", "shop") == MARIADB_ROWS
    assert fresh.sql("SELECT * FROM posts ORDER BY id", "blog") == source.sql(
        "SELECT * FROM posts ORDER BY id", "blog"
    )
    assert "cheap" in fresh.sql("SHOW PROCEDURE STATUS WHERE Db='shop'")


def test_postgres_dump_and_reload_into_a_fresh_server_gives_equal_rows(postgres_factory, tmp_path):
    source = postgres_factory()
    source.sql("CREATE ROLE webapp LOGIN")
    source.sql("CREATE DATABASE shop OWNER webapp")
    source.sql("CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(6,2))", "shop")
    source.sql("INSERT INTO items VALUES (1,'apple',0.50),(2,'pear',0.75),(3,'fig',2.10)", "shop")
    source.sql("CREATE DATABASE blog")
    source.sql("CREATE TABLE posts (id int PRIMARY KEY, title text)", "blog")
    source.sql("INSERT INTO posts VALUES (1,'hello'),(2,'tape')", "blog")
    hook = db.DbHook(
        name="postgresql", type="postgresql", host=source.sockdir, user="postgres", run_as="postgres"
    )
    dumps, _ = db.run_dumps([hook], str(tmp_path / "spool"), out=open(os.devnull, "w"))
    assert db.sniff_type(dumps[0].path) == "postgresql"

    fresh = postgres_factory()
    db.reload(dumps[0].path, db.DbHook(name="pg", type="postgresql", host=fresh.sockdir, user="postgres"))
    query = "SELECT id, name, price FROM items ORDER BY id"
    assert fresh.sql(query, "shop") == source.sql(query, "shop") == "1|apple|0.50\n2|pear|0.75\n3|fig|2.10\n"
    assert fresh.sql("SELECT title FROM posts ORDER BY id", "blog") == "hello\ntape\n"
    assert fresh.sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname='shop'") == "webapp\n"


def test_a_failed_dump_is_fatal_unless_the_hook_is_optional(mariadb_factory, tmp_path):
    server = mariadb_factory()
    bad = db.DbHook(name="gone", type="mariadb", socket=str(tmp_path / "no.sock"), user="root")
    with pytest.raises(db.DumpError, match="database hook 'gone': dump failed .*optional") as e:
        db.run_dumps([bad], str(tmp_path / "spool"), out=open(os.devnull, "w"))
    assert e.value.exit_code == 2
    assert os.listdir(tmp_path / "spool" / "dumps") == []

    good = db.DbHook(name="mariadb", type="mariadb", socket=server.socket, user="root")
    bad.optional = True
    dumps, warnings = db.run_dumps([bad, good], str(tmp_path / "spool"), out=open(os.devnull, "w"))
    assert [d.name for d in dumps] == ["mariadb"]
    assert len(warnings) == 1 and "gone" in warnings[0]


def test_a_missing_dump_program_names_the_program(tmp_path):
    hook = db.DbHook(name="x", type="mariadb", command="no-such-dump-tool")
    with pytest.raises(db.DumpError, match="no-such-dump-tool not found"):
        db.run_dumps([hook], str(tmp_path / "spool"), out=open(os.devnull, "w"))


def test_unknown_hook_type_is_refused():
    with pytest.raises(RescueError, match="unknown type 'oracle'"):
        db.DbHook(name="x", type="oracle")


def test_db_dump_command_writes_private_dumps(mariadb_factory, tmp_path, capsys):
    from rescue.cli import main

    server = mariadb_factory()
    server.sql("CREATE DATABASE notes")
    out = tmp_path / "out"
    rc = main(
        [
            "db",
            "dump",
            "-o",
            str(out),
            "--config",
            os.devnull,
            "--db",
            f"mariadb,socket={server.socket},user=root",
        ]
    )
    assert rc == 0
    path, size = capsys.readouterr().out.split("\t")
    assert path == str(out / "dumps" / "mariadb.sql") and int(size) == os.path.getsize(path)
    assert "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `notes`" in open(path).read()
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
