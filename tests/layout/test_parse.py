"""The pure parsers of rescue.layout on output recorded from the real tools (tests/layout/data/)."""

from __future__ import annotations

import json
from pathlib import Path

from rescue.layout import boot, parse_disks, parse_fs, parse_stack

DATA = Path(__file__).resolve().parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_sfdisk_gpt_keeps_ids_names_attributes_and_roles():
    t = parse_disks.parse_sfdisk(read("sfdisk-gpt.json"))
    assert (t["label"], t["id"], t["first_lba"], t["last_lba"], t["sector_size"]) == (
        "gpt",
        "DEB1B3BC-256C-4F43-A330-80A977C86F4D",
        2048,
        204766,
        512,
    )
    assert [(p["number"], p["start"], p["size"], p["role"]) for p in t["partitions"]] == [
        (1, 2048, 2048, "bios_boot"),
        (2, 4096, 65536, "esp"),
        (3, 69632, 133120, None),
    ]
    assert t["partitions"][1]["name"] == "EFI System" and t["partitions"][2]["attrs"] == "LegacyBIOSBootable"


def test_sfdisk_dos_has_type_bytes_and_no_partition_uuids():
    t = parse_disks.parse_sfdisk(read("sfdisk-dos.json"))
    assert (t["label"], t["id"], t["last_lba"]) == ("dos", "0xfdc3ebb4", None)
    assert [(p["node"], p["type"], p["uuid"]) for p in t["partitions"]] == [
        ("/dev/sdb1", "83", None),
        ("/dev/sdb2", "83", None),
    ]


def test_blkid_export_gives_type_uuid_label_and_fat_version():
    ident = parse_disks.parse_export(read("blkid-vfat.txt"))
    assert (ident["TYPE"], ident["UUID"], ident["LABEL"], ident["VERSION"]) == (
        "vfat",
        "2B08-A193",
        "ESP",
        "FAT16",
    )


def test_partition_nodes_follow_the_kernels_naming():
    assert parse_disks.partition_node("/dev/sda", 2) == "/dev/sda2"
    assert parse_disks.partition_node("/dev/nvme0n1", 2) == "/dev/nvme0n1p2"
    assert parse_disks.partition_node("/dev/loop3", 1) == "/dev/loop3p1"


def test_lsblk_tree_flattens_a_raid_under_two_partitions_once():
    tree = {
        "blockdevices": [
            {
                "name": "vda",
                "path": "/dev/vda",
                "type": "disk",
                "children": [
                    {
                        "name": "vda1",
                        "path": "/dev/vda1",
                        "type": "part",
                        "children": [{"name": "md0", "path": "/dev/md0", "type": "raid1"}],
                    }
                ],
            },
            {
                "name": "vdb",
                "path": "/dev/vdb",
                "type": "disk",
                "children": [
                    {
                        "name": "vdb1",
                        "path": "/dev/vdb1",
                        "type": "part",
                        "children": [{"name": "md0", "path": "/dev/md0", "type": "raid1"}],
                    }
                ],
            },
        ]
    }
    devices = parse_disks.lsblk_devices(tree)
    assert [d["path"] for d in devices] == ["/dev/vda", "/dev/vda1", "/dev/md0", "/dev/vdb", "/dev/vdb1"]
    assert [d["path"] for d in parse_disks.descendants(devices, "/dev/vdb")] == ["/dev/vdb1", "/dev/md0"]


def test_luks2_dump_gives_the_parameters_and_nothing_secret():
    luks = parse_stack.parse_luks_dump(read("luksdump-luks2.txt"))
    assert luks == {
        "version": 2,
        "uuid": "417dcb30-7e9d-4a7f-ba6a-9427a2641da0",
        "label": None,
        "cipher": "aes-xts-plain64",
        "key_size": 512,
        "sector_size": 4096,
        "pbkdf": "pbkdf2",
        "hash": "sha256",
        "data_offset": 16777216,
    }


def test_luks1_dump_gives_cipher_name_and_mode_and_the_payload_offset_in_bytes():
    luks = parse_stack.parse_luks_dump(read("luksdump-luks1.txt"))
    assert (luks["version"], luks["uuid"], luks["cipher"], luks["key_size"], luks["data_offset"]) == (
        1,
        "00ec7c5b-e8ff-4d43-b1a9-06d4c402344a",
        "aes-xts-plain64",
        512,
        4096 * 512,
    )
    assert "salt" not in json.dumps(luks).lower()


MDADM_EXPORT = """MD_LEVEL=raid1
MD_DEVICES=2
MD_METADATA=1.2
MD_UUID=1d2c7a0e:5b1f4c3a:9e8d7c6b:5a4f3e2d
MD_DEVNAME=root
MD_NAME=rescue:root
MD_DEVICE_dev_vdb1_ROLE=1
MD_DEVICE_dev_vdb1_DEV=/dev/vdb1
MD_DEVICE_dev_vda1_ROLE=0
MD_DEVICE_dev_vda1_DEV=/dev/vda1
"""
MDADM_EXAMINE = """/dev/vda1:
          Magic : a92b4efc
        Version : 1.2
    Feature Map : 0x1
     Array UUID : 1d2c7a0e:5b1f4c3a:9e8d7c6b:5a4f3e2d
           Name : rescue:root
     Raid Level : raid1
   Raid Devices : 2
    Data Offset : 10240 sectors
Internal Bitmap : 8 sectors from superblock
"""


def test_mdadm_export_and_examine_give_what_create_needs_with_members_in_role_order():
    md = parse_stack.parse_md(MDADM_EXPORT, MDADM_EXAMINE)
    assert (md["level"], md["raid_devices"], md["metadata"], md["uuid"]) == (
        "raid1",
        2,
        "1.2",
        "1d2c7a0e:5b1f4c3a:9e8d7c6b:5a4f3e2d",
    )
    assert (md["name"], md["homehost"], md["bitmap"], md["data_offset_sectors"]) == (
        "rescue:root",
        "rescue",
        "internal",
        10240,
    )
    assert [m["device"] for m in md["members"]] == ["/dev/vda1", "/dev/vdb1"]


def test_lvm_report_sizes_become_integers():
    text = '{"report": [{"lv": [{"lv_name":"root", "vg_name":"vg0", "lv_uuid":"abc", "lv_size":"125829120", "stripes":"1"}]}]}'
    assert parse_stack.parse_lvm_report(text, "lv") == [
        {"lv_name": "root", "vg_name": "vg0", "lv_uuid": "abc", "lv_size": 125829120, "stripes": 1}
    ]


def test_dumpe2fs_gives_the_mkfs_parameters_without_state_flags():
    ext = parse_fs.parse_dumpe2fs(
        read("dumpe2fs-h.txt").replace("metadata_csum", "metadata_csum needs_recovery")
    )
    assert ext["uuid"] == "5103301a-7644-4848-9bb5-35c67cece690" and ext["label"] == "boot"
    assert "needs_recovery" not in ext["features"] and "metadata_csum" in ext["features"]
    assert (ext["block_size"], ext["inode_size"], ext["inode_count"], ext["block_count"]) == (
        1024,
        256,
        15360,
        61440,
    )
    assert (ext["reserved_blocks"], ext["blocks_per_group"], ext["flex_bg_size"], ext["journal_size_k"]) == (
        3072,
        8192,
        16,
        4096,
    )


def test_xfs_info_sections_and_numbers():
    x = parse_fs.parse_xfs_info(read("xfs_info.txt"))
    assert (
        x["meta-data"]["_"] == "/dev/sdb1"
        and x["meta-data"]["isize"] == 512
        and x["meta-data"]["agcount"] == 4
    )
    assert x["meta-data"]["reflink"] == 1 and x["meta-data"]["nrext64"] == 0
    assert (x["data"]["bsize"], x["data"]["blocks"], x["naming"]["ftype"]) == (4096, 81920, 1)
    assert (x["log"]["_"], x["log"]["blocks"], x["log"]["lazy-count"]) == ("internal", 16384, 1)


def test_btrfs_subvolumes_in_id_order_with_parents_and_the_default():
    subs = parse_fs.parse_btrfs_subvolumes(read("btrfs-subvolume-list.txt"))
    assert [(s["id"], s["parent"], s["path"]) for s in subs] == [
        (256, 5, "@"),
        (257, 5, "@home"),
        (258, 257, "@home/x/snap"),
    ]
    assert subs[0]["uuid"] == "9a2e55d0-d67f-0e4f-b523-ccba28397e5e"
    assert (
        parse_fs.parse_btrfs_subvolumes("ID 260 gen 9 parent 5 top level 5 path <FS_TREE>/@srv")[0]["path"]
        == "@srv"
    )
    assert parse_fs.parse_btrfs_default("ID 256 gen 7 top level 5 path @\n") == 256
    assert parse_fs.parse_btrfs_super("csum_type\t\t0 (crc32c)\nnodesize\t\t16384\n") == {
        "csum_type": "crc32c",
        "nodesize": 16384,
    }


def test_efibootmgr_entries_order_and_current():
    text = (
        "BootCurrent: 0001\nTimeout: 0 seconds\nBootOrder: 0001,0000\n"
        "Boot0000* UiApp\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)\n"
        "Boot0001* debian\tHD(1,GPT,0b5ad5c2-5b5e-4d3a-9b61-3b7f0f6e2f53,0x800,0x100000)/File(\\EFI\\debian\\shimx64.efi)\n"
    )
    efi = parse_fs.parse_efibootmgr(text)
    assert (efi["current"], efi["order"]) == ("0001", ["0001", "0000"])
    assert [(e["num"], e["label"], e["active"]) for e in efi["entries"]] == [
        ("0000", "UiApp", True),
        ("0001", "debian", True),
    ]
    assert "shimx64.efi" in efi["entries"][1]["path"]


def test_dpkg_status_and_debconf_name_the_bootloader_and_its_disks():
    status = (
        "Package: grub-pc\nStatus: install ok installed\nVersion: 2.06\n\n"
        "Package: shim-signed\nStatus: deinstall ok config-files\n\nPackage: bash\nStatus: install ok installed\n"
    )
    assert boot.parse_dpkg_installed(status) == ["grub-pc"]
    config = "Name: grub-pc/install_devices\nTemplate: grub-pc/install_devices\nValue: /dev/disk/by-id/ata-X, /dev/sdb\nOwners: grub-pc\n"
    assert boot.parse_grub_pc_devices(config) == ["/dev/disk/by-id/ata-X", "/dev/sdb"]
