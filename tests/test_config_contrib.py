"""The shipped examples in contrib/ are valid: the config parses, the cron line and units name `rescue backup`."""

from __future__ import annotations

import os
import shutil
import subprocess

from rescue import config
from tests.support import need_tool

CONTRIB = os.path.join(os.path.dirname(__file__), "..", "contrib")


def test_example_config_parses_with_its_hooks():
    cfg = config.load(os.path.join(CONTRIB, "rescue.conf"))
    assert cfg.device == "/dev/nst0" and cfg.record_size == 256 * 1024 and cfg.retention_days == 6
    assert [(h.name, h.type) for h in cfg.db] == [("mariadb", "mariadb"), ("postgresql", "postgresql")]
    assert cfg.db[1].run_as == "postgres"


def test_cron_line_has_six_fields_and_a_user():
    lines = [line for line in open(os.path.join(CONTRIB, "rescue.cron")) if line[:1].isdigit()]
    assert len(lines) == 1
    fields = lines[0].split(None, 6)
    assert fields[5] == "root" and fields[6].startswith("rescue backup")


def test_systemd_units_verify(tmp_path):
    need_tool("systemd-analyze")
    for name in ("rescue.service", "rescue.timer"):
        shutil.copy(os.path.join(CONTRIB, name), tmp_path / name)
    # ExecStart must exist for verify; point it at a stand-in.
    service = tmp_path / "rescue.service"
    service.write_text(service.read_text().replace("/usr/local/sbin/rescue", "/bin/true"))
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "rescue.timer"), str(service)],
        capture_output=True,
        text=True,
    )
    errors = [line for line in proc.stderr.splitlines() if "rescue." in line]
    assert proc.returncode == 0 and not errors, proc.stderr
