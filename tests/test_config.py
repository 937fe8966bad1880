"""rescue.conf: keys, flags that override them, database hooks, and errors that name the file and key."""

from __future__ import annotations

import configparser
import os

import pytest

from rescue import config
from rescue.cli import build_parser
from rescue.cli.backup_cmd import options_from
from rescue.errors import UsageError


def write(tmp_path, text):
    path = tmp_path / "rescue.conf"
    path.write_text(text)
    return str(path)


def test_every_key_is_read(tmp_path):
    cfg = config.load(
        write(
            tmp_path,
            """
[rescue]
device = /dev/nst1
record_size = 512K
exclude = var/cache/apt
    home/*/.cache
default_excludes = no
one_file_system = yes
catalog_dir = /srv/catalogs
spool_dir = /srv/spool
retention_days = 6
keep_catalogs = 14
shrink_threshold = 25%
verify = yes
eject = true
acls = no
xattrs = no

[db mariadb]
defaults_file = /etc/rescue/my.cnf

[db pg]
type = postgresql
run_as = postgres
port = 5433
optional = yes
""",
        )
    )
    assert cfg.device == "/dev/nst1" and cfg.record_size == 512 * 1024
    assert cfg.exclude == ["var/cache/apt", "home/*/.cache"]
    assert (cfg.default_excludes, cfg.one_file_system, cfg.verify, cfg.eject) == (False, True, True, True)
    assert (cfg.acls, cfg.xattrs, cfg.keep_catalogs) == (False, False, 14)
    assert (cfg.catalog_dir, cfg.spool_dir, cfg.retention_days, cfg.shrink_threshold) == (
        "/srv/catalogs",
        "/srv/spool",
        6,
        25.0,
    )
    maria, pg = cfg.db
    assert (maria.name, maria.type, maria.defaults_file, maria.optional) == (
        "mariadb",
        "mariadb",
        "/etc/rescue/my.cnf",
        False,
    )
    assert (pg.type, pg.run_as, pg.port, pg.optional) == ("postgresql", "postgres", 5433, True)


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, "[rescue]\nrecord_size = 512K\nexclude = a\nverify = yes\nshrink_threshold = 10\n")
    args = build_parser().parse_args(
        [
            "backup",
            "--config",
            path,
            "--record-size",
            "20b",
            "--exclude",
            "b",
            "--no-verify",
            "--shrink-threshold",
            "off",
        ]
    )
    opts = options_from(args, config.load(path))
    assert opts.record_size == 10240 and opts.exclude == ["a", "b"]
    assert opts.verify is False and opts.shrink_threshold == 0


def test_db_flag_replaces_the_configured_hook_of_the_same_name(tmp_path):
    cfg = config.load(write(tmp_path, "[db mariadb]\ndefaults_file = /a.cnf\n"))
    hooks = config.select_hooks(cfg, ["mariadb,defaults_file=/b.cnf,optional", "postgresql,run_as=postgres"])
    assert [(h.name, h.defaults_file, h.optional) for h in hooks] == [
        ("mariadb", "/b.cnf", True),
        ("postgresql", None, False),
    ]
    assert config.select_hooks(cfg, None, no_db=True) == []


@pytest.mark.parametrize(
    "text, message",
    [
        ("[rescue]\nrecord_sise = 1\n", "record_sise.*unknown key"),
        ("[rescue]\nrecord_size = 1000\n", "multiple of 512"),
        ("[rescue]\nverify = maybe\n", "not yes or no"),
        ("[rescue]\nshrink_threshold = 130\n", "between 0 and 100"),
        ("[db mariadb]\npassword = hunter2\n", "passwords do not belong here"),
        ("[db x]\ntype = oracle\n", "unknown type 'oracle'"),
        ("[backup]\n", "unknown section"),
        ("not ini", "not a valid config file"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text, message):
    with pytest.raises(Exception, match=message) as e:
        config.load(write(tmp_path, text))
    assert e.value.exit_code == 2
    assert str(e.value).startswith(str(tmp_path / "rescue.conf"))


def test_missing_default_file_gives_defaults_but_a_named_one_must_exist(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DEFAULT_PATH", str(tmp_path / "absent.conf"))
    assert config.load() == config.Config()
    with pytest.raises(UsageError, match="config file not found"):
        config.load(str(tmp_path / "absent.conf"))


def test_device_order_is_flag_then_tape_env_then_config(monkeypatch):
    cfg = config.Config(device="/dev/nst2")
    monkeypatch.setenv("TAPE", "/dev/nst3")
    assert config.resolve_device("/dev/nst4", cfg) == "/dev/nst4"
    assert config.resolve_device(None, cfg) == "/dev/nst3"
    monkeypatch.delenv("TAPE")
    assert config.resolve_device(None, cfg) == "/dev/nst2"
    assert config.resolve_device(None, config.Config()) == "/dev/nst0"


def test_sizes_parse_like_tar_and_dd():
    assert [config.parse_size(s) for s in ("262144", "256K", "256KiB", "1M", "20b")] == [
        262144,
        262144,
        262144,
        1 << 20,
        10240,
    ]


README = os.path.join(os.path.dirname(__file__), "..", "README.md")
CONTRIB_CONF = os.path.join(os.path.dirname(__file__), "..", "contrib", "rescue.conf")


def test_readme_table_is_the_settings_table():
    text = open(README, encoding="utf-8").read()
    head = "| key in `[rescue]` | flag | default |\n| --- | --- | --- |\n"
    rows = text.split(head, 1)[1].split("\n\n", 1)[0].splitlines()
    assert rows == [s.readme_row() for s in config.SETTINGS]


def test_contrib_example_sets_exactly_the_defined_keys():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(CONTRIB_CONF, encoding="utf-8")
    assert sorted(parser.options("rescue")) == sorted(config.BY_KEY)


def test_every_backup_setting_has_a_flag_that_overrides_its_key(tmp_path):
    flags = {a.dest: a for a in build_parser()._subparsers._group_actions[0].choices["backup"]._actions}
    for s in config.SETTINGS:
        if s.backup:
            assert s.option in flags[s.key].option_strings, s.key
    assert "device" in flags  # -f DEVICE, the device of every command


@pytest.mark.parametrize("flag", ["--retention", "--keep-catalogs"])
def test_negative_counts_are_refused_naming_the_flag(tmp_path, flag):
    args = build_parser().parse_args(["backup", flag, "-3"])
    with pytest.raises(UsageError, match=f"^{flag}: -3 cannot be negative"):
        options_from(args, config.Config())
