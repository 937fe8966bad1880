"""`rescue db dump|reload` from the command line: hooks from rescue.conf and --db, the dump directory, exit codes
and one-line errors.  The dump and reload programs are small scripts (real processes) standing in for
pg_dumpall and psql; the real servers are exercised in tests/db."""

from __future__ import annotations

import os
import stat

from rescue.cli import main


def script(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_dump_writes_each_configured_hook_privately_and_prints_path_and_size(tmp_path, capsys):
    dumper = script(
        tmp_path / "dumper", "echo '-- PostgreSQL database cluster dump'\necho 'CREATE TABLE t();'\n"
    )
    conf = tmp_path / "rescue.conf"
    conf.write_text(f"[db pg]\ntype = postgresql\ncommand = {dumper}\n")
    out_dir = tmp_path / "dumps"
    code, out, err = run(capsys, "db", "dump", "--config", conf, "-o", out_dir)
    assert code == 0, err
    path, size = out.strip().split("\t")
    assert path.startswith(f"{out_dir}/") and path.endswith("/pg.sql") and int(size) == os.path.getsize(path)
    assert "CREATE TABLE t();" in open(path).read()
    assert (
        stat.S_IMODE(os.stat(path).st_mode) == 0o600
        and stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    )


def test_no_hooks_is_one_line_exit_2(tmp_path, capsys):
    code, out, err = run(capsys, "db", "dump", "--config", "/dev/null")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "no database hooks" in err
    code, _, err = run(capsys, "db", "dump", "--config", tmp_path / "absent.conf")
    assert code == 2 and err == f"rescue: {tmp_path / 'absent.conf'}: config file not found\n"


def test_reload_feeds_each_dump_of_the_restored_root_to_its_client(tmp_path, capsys):
    got = tmp_path / "got.sql"
    client = script(tmp_path / "client", f"cat > {got}\n")
    root = tmp_path / "root"
    dumps = root / "var/lib/rescue/dumps"
    dumps.mkdir(parents=True)
    (dumps / "pg.sql").write_text("-- PostgreSQL database cluster dump\nSELECT 1;\n")
    code, out, err = run(
        capsys,
        "db",
        "reload",
        "--root",
        root,
        "--config",
        "/dev/null",
        "--db",
        f"pg,type=postgresql,client={client}",
    )
    assert code == 0, err
    assert out == f"{dumps / 'pg.sql'}\treloaded\n" and got.read_text().endswith("SELECT 1;\n")


def test_reload_without_dumps_names_the_directory(tmp_path, capsys):
    code, _, err = run(capsys, "db", "reload", "--root", tmp_path, "--config", "/dev/null")
    assert code == 2 and err == f"rescue: {tmp_path / 'var/lib/rescue/dumps'}: no dumps to reload\n"
