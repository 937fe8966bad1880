"""`rescue layout show|recreate` wiring: sources, the catalog's usage per mount point, one-line errors."""

from __future__ import annotations

import json

from rescue.archive.member import Member
from rescue.cli import main
from tests.support.tapes import write_catalog_file

LAYOUT = {
    "format": "rescue-layout",
    "version": 1,
    "disks": [
        {
            "path": "/dev/sda",
            "name": "sda",
            "size": 2 << 30,
            "table": {
                "label": "gpt",
                "partitions": [
                    {
                        "node": "/dev/sda1",
                        "number": 1,
                        "start": 2048,
                        "size": 1 << 20,
                        "type": "X",
                        "role": "esp",
                    },
                    {
                        "node": "/dev/sda2",
                        "number": 2,
                        "start": 1 << 20,
                        "size": 2 << 20,
                        "type": "Y",
                        "role": None,
                    },
                ],
            },
        }
    ],
    "devices": [
        {"path": "/dev/sda", "type": "disk", "size": 2 << 30, "children": ["/dev/sda1", "/dev/sda2"]},
        {"path": "/dev/sda1", "type": "part", "size": 512 << 20, "children": []},
        {"path": "/dev/sda2", "type": "part", "size": 1 << 30, "children": []},
    ],
    "filesystems": [
        {"device": "/dev/sda1", "type": "vfat", "uuid": "AB-CD", "label": "ESP"},
        {"device": "/dev/sda2", "type": "ext4", "uuid": "u-root", "label": "root"},
    ],
    "mounts": [
        {"mount_point": "/", "source_device": "/dev/sda2", "fstype": "ext4", "fsroot": "/"},
        {"mount_point": "/boot/efi", "source_device": "/dev/sda1", "fstype": "vfat", "fsroot": "/"},
    ],
    "md": [],
    "luks": [],
    "lvm": None,
    "missing": ["mdadm: not installed"],
    "boot": {"firmware": "uefi"},
}


def write(tmp_path, data) -> str:
    path = tmp_path / "layout.json"
    path.write_text(json.dumps(data))
    return str(path)


def catalog(tmp_path) -> str:
    members = [
        Member("boot/efi/EFI/debian/grubx64.efi", "file", 1000),
        Member("etc", "dir"),
        Member("etc/fstab", "file", 300),
        Member("boot/efi", "dir"),
    ]
    return write_catalog_file(str(tmp_path / "catalog.jsonl.gz"), members, 10240)


def test_show_prints_the_tree_with_the_data_under_each_mount_point(tmp_path, capsys):
    assert main(["layout", "show", "--from", write(tmp_path, LAYOUT), "--catalog", catalog(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("/dev/sda  disk  2.0 GiB  gpt")
    assert out[1].startswith(
        "  /dev/sda1  part  512.0 MiB  (esp)  vfat  UUID=AB-CD  LABEL=ESP  -> /boot/efi (1000 B in 2 files)"
    )
    assert out[2].endswith("-> / (300 B in 2 files)")
    assert "not captured: mdadm: not installed" in out


def test_show_json_has_the_tree_and_usage(tmp_path, capsys):
    assert (
        main(["layout", "show", "--json", "--from", write(tmp_path, LAYOUT), "--catalog", catalog(tmp_path)])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert [c["device"] for c in data["tree"][0]["children"]] == ["/dev/sda1", "/dev/sda2"]
    assert data["usage"] == {"/": {"bytes": 300, "files": 2}, "/boot/efi": {"bytes": 1000, "files": 2}}


def test_a_file_that_is_no_layout_is_one_line_exit_2(tmp_path, capsys):
    assert main(["layout", "show", "--from", write(tmp_path, {"format": "other"})]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a rescue layout" in err


def test_recreate_refuses_a_minimal_layout_and_a_bad_map(tmp_path, capsys):
    minimal = write(tmp_path, {"format": "rescue-layout-minimal", "version": 1, "mounts": []})
    assert main(["layout", "recreate", "--from", minimal, "--dry-run"]) == 2
    assert "minimal layout" in capsys.readouterr().err
    assert main(["layout", "recreate", "--from", write(tmp_path, LAYOUT), "--map", "sda", "--dry-run"]) == 2
    assert "expected OLD=NEW" in capsys.readouterr().err
