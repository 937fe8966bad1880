"""Database dumps through a whole backup: hooks from the config file, dumps first on tape and in the label, a
GNU tar restore of the archive, `rescue db reload` into fresh servers, rows equal."""

from __future__ import annotations

import os
import subprocess

import pytest

from rescue.cli import main
from rescue.tape.simh import SimhTape
from rescue.tapeset.catalog import open_catalog
from rescue.tapeset.catalog_tape import read_catalog
from rescue.tapeset.label import read_label
from tests.support import need_tool
from tests.support.tapes import split_tape

pytestmark = pytest.mark.db


def test_backup_dumps_mariadb_and_postgres_first_and_reload_restores_the_rows(
    mariadb_factory, postgres_factory, tmp_path, monkeypatch, capsys
):
    need_tool("tar")
    maria = mariadb_factory("source")
    maria.sql("CREATE DATABASE shop")
    maria.sql("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))", "shop")
    maria.sql("INSERT INTO items VALUES (1,'apple'),(2,'pear')", "shop")
    pg = postgres_factory()
    pg.sql("CREATE DATABASE wiki")
    pg.sql("CREATE TABLE pages (id int PRIMARY KEY, body text)", "wiki")
    pg.sql("INSERT INTO pages VALUES (1,'Main page'),(2,'Tapes')", "wiki")

    option_file = tmp_path / "mariadb.cnf"
    option_file.write_text(f"[client]\nuser=root\nsocket={maria.socket}\n")
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/hostname").write_text("db1\n")
    conf = tmp_path / "rescue.conf"
    conf.write_text(
        "[rescue]\nrecord_size = 20b\n"
        f"catalog_dir = {tmp_path / 'catalogs'}\nspool_dir = {tmp_path / 'spool'}\n\n"
        f"[db mariadb]\ndefaults_file = {option_file}\n\n"
        f"[db postgresql]\nhost = {pg.sockdir}\nuser = postgres\nrun_as = postgres\n"
    )
    tap = str(tmp_path / "db.tap")
    monkeypatch.delenv("TAPE", raising=False)
    assert main(["-f", tap, "backup", str(tree), "--config", str(conf)]) == 0

    dumps = ["var/lib/rescue/dumps/mariadb.sql", "var/lib/rescue/dumps/postgresql.sql"]
    with SimhTape(tap) as tape:
        label = read_label(tape)
        assert label.dumps == dumps
        files = read_catalog(tape, label.catalog_file, str(tmp_path / "cat"))
    _, members = open_catalog(files.catalog)
    assert [m.path for m in members][:2] == dumps  # dumps first, before etc
    assert os.listdir(tmp_path / "spool" / "dumps") == []  # not left lying around

    # Restore the archive with plain GNU tar, then reload into fresh servers.
    pieces = split_tape(tap, str(tmp_path))
    target = tmp_path / "target"
    target.mkdir()
    subprocess.run(["tar", "-xpf", pieces[1], "-b", "20", "-C", str(target)], check=True)
    maria.stop()
    fresh_maria = mariadb_factory("fresh")
    fresh_pg = postgres_factory()
    capsys.readouterr()
    rc = main(
        [
            "db",
            "reload",
            "--root",
            str(target),
            "--config",
            os.devnull,
            "--db",
            f"mariadb,socket={fresh_maria.socket},user=root",
            "--db",
            f"postgresql,host={fresh_pg.sockdir},user=postgres",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert fresh_maria.sql("SELECT * FROM items ORDER BY id", "shop") == "1\tapple\n2\tpear\n"
    assert fresh_pg.sql("SELECT id, body FROM pages ORDER BY id", "wiki") == pg.sql(
        "SELECT id, body FROM pages ORDER BY id", "wiki"
    )


def test_failed_dump_fails_the_backup_before_the_tape_is_written(tmp_path, monkeypatch, capsys):
    need_tool("mariadb-dump")
    tree = tmp_path / "tree"
    tree.mkdir()
    tap = tmp_path / "t.tap"
    monkeypatch.delenv("TAPE", raising=False)
    args = ["-f", str(tap), "backup", str(tree), "--config", os.devnull, "--catalog-dir", str(tmp_path / "c")]
    args += ["--spool-dir", str(tmp_path / "s"), "--db", f"mariadb,socket={tmp_path / 'none.sock'},user=root"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "database hook 'mariadb': dump failed" in err and "mark the hook optional" in err
    assert not tap.exists() or tap.stat().st_size == 0
    assert main([*args[:-1], args[-1] + ",optional"]) == 1  # goes on without it, and says so
    assert "optional: backup goes on without it" in capsys.readouterr().out
