"""Disks here without udev (the rescue system): lsblk shows no SERIAL or WWN, sysfs has them."""

from __future__ import annotations

from rescue.layout.tools import fill_identity, sysfs_identity


def fake_sysfs(root, name, files):
    for rel, text in files.items():
        path = root / "block" / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_virtio_disk_has_its_serial_in_sysfs(tmp_path):
    fake_sysfs(tmp_path, "vda", {"serial": "prod0\n"})
    assert sysfs_identity("vda", str(tmp_path)) == {"serial": "prod0"}


def test_an_nvme_disk_has_serial_and_wwid(tmp_path):
    fake_sysfs(tmp_path, "nvme0n1", {"device/serial": "  NVME123  \n", "wwid": "eui.0025388b91b0a1c2\n"})
    assert sysfs_identity("nvme0n1", str(tmp_path)) == {"serial": "NVME123", "wwn": "eui.0025388b91b0a1c2"}


def test_a_scsi_naa_wwid_is_written_as_udev_writes_the_wwn(tmp_path):
    fake_sysfs(tmp_path, "sda", {"device/wwid": "naa.5000c500a1b2c3d4\n"})
    assert sysfs_identity("sda", str(tmp_path)) == {"wwn": "0x5000c500a1b2c3d4"}


def test_a_disk_without_identity_files_has_none(tmp_path):
    fake_sysfs(tmp_path, "loop0", {"size": "100\n"})
    assert sysfs_identity("loop0", str(tmp_path)) == {}


def test_a_disk_record_gets_the_sysfs_serial_only_where_lsblk_had_none(tmp_path):
    # A capture in a rescue system: lsblk has no udev database, so recover could not map the disk by serial.
    fake_sysfs(tmp_path, "vda", {"serial": "prod0\n"})
    fake_sysfs(tmp_path, "sda", {"device/wwid": "naa.5000c500a1b2c3d4\n", "device/serial": "sysfs-serial\n"})
    vda = fill_identity({"path": "/dev/vda", "serial": None, "wwn": None}, str(tmp_path))
    sda = fill_identity({"path": "/dev/sda", "serial": "ZA1", "wwn": None}, str(tmp_path))
    assert (vda["serial"], vda["wwn"]) == ("prod0", None)
    assert (sda["serial"], sda["wwn"]) == ("ZA1", "0x5000c500a1b2c3d4")
