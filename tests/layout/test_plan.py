"""plan_recreate is pure: disk matching, partition sizing with the catalog's fit check, and the command order."""

from __future__ import annotations

import pytest

from rescue.layout.plan import PlanError, RecreateOptions, plan_recreate

MIB = 1024 * 1024
SECT = MIB // 512


def part(node, number, start_mib, size_mib, ptype="0FC63DAF-8483-4772-8E79-3D69D8477DE4"):
    return {
        "node": node,
        "number": number,
        "start": start_mib * SECT,
        "size": size_mib * SECT,
        "type": ptype,
        "uuid": f"00000000-0000-0000-0000-00000000000{number}",
        "name": None,
        "attrs": None,
        "bootable": False,
        "role": None,
    }


def ext4(device, uuid, label, size_mib):
    blocks = size_mib * 256
    return {
        "device": device,
        "type": "ext4",
        "uuid": uuid,
        "label": label,
        "size": size_mib * MIB,
        "version": "1.0",
        "ext": {
            "features": ["has_journal", "extent"],
            "block_size": 4096,
            "inode_size": 256,
            "inode_count": blocks // 4,
            "block_count": blocks,
            "reserved_blocks": blocks // 20,
            "blocks_per_group": 32768,
            "flex_bg_size": 16,
            "journal_size_k": 4096,
        },
    }


def layout(disk_mib=1000, serial="S1", extra_stack=None):
    disk = {
        "path": "/dev/vda",
        "name": "vda",
        "type": "disk",
        "size": disk_mib * MIB,
        "serial": serial,
        "wwn": None,
        "by_id": [f"virtio-{serial}"] if serial else [],
        "by_path": [],
        "model": None,
        "table": {
            "label": "gpt",
            "id": "D1",
            "first_lba": 2048,
            "last_lba": disk_mib * SECT - 34,
            "sector_size": 512,
            "partitions": [
                part("/dev/vda1", 1, 1, 200),
                part("/dev/vda2", 2, 201, 600),
                part("/dev/vda3", 3, 801, 198, "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"),
            ],
        },
    }
    fss = [
        ext4("/dev/vda1", "u-boot", "boot", 200),
        ext4("/dev/vda2", "u-root", "root", 600),
        {"device": "/dev/vda3", "type": "swap", "uuid": "u-swap", "label": None, "size": 198 * MIB},
    ]
    data = {
        "format": "rescue-layout",
        "version": 1,
        "disks": [disk],
        "md": [],
        "luks": [],
        "lvm": None,
        "filesystems": fss,
        "devices": [],
        "mounts": [
            {"mount_point": "/boot", "source_device": "/dev/vda1", "fstype": "ext4", "fsroot": "/"},
            {"mount_point": "/", "source_device": "/dev/vda2", "fstype": "ext4", "fsroot": "/"},
        ],
    }
    data.update(extra_stack or {})
    return data


def here(path, mib, serial=None):
    return {
        "path": path,
        "name": path.rsplit("/", 1)[1],
        "size": mib * MIB,
        "serial": serial,
        "wwn": None,
        "by_id": [f"virtio-{serial}"] if serial else [],
        "model": None,
    }


def sizes(plan, disk):
    step = next(s for s in plan.steps if s.argv[:1] == ["sfdisk"] and s.argv[-1] == disk)
    return [(p["start"] // SECT, p["size"] // SECT) for p in step.check["partitions"]]


def test_a_disk_is_never_matched_by_its_name_alone():
    with pytest.raises(
        PlanError, match=r"--map /dev/vda=DEV .*disks here: /dev/vda \(1000.0 MiB, serial USBSTICK\)\)"
    ):
        plan_recreate(layout(serial="OLD"), [here("/dev/vda", 1000, serial="USBSTICK")], RecreateOptions())


def test_the_same_serial_matches_a_disk_that_changed_its_name():
    plan = plan_recreate(
        layout(), [here("/dev/sdz", 4000, "RESCUE"), here("/dev/nvme0n1", 1000, "S1")], RecreateOptions()
    )
    assert plan.disks == ["/dev/nvme0n1"]
    assert plan.device_map["/dev/vda2"] == "/dev/nvme0n1p2"
    assert all("/dev/sdz" not in " ".join(s.argv) for s in plan.steps)


def test_map_names_a_disk_of_the_layout_and_a_disk_here():
    with pytest.raises(PlanError, match="not a disk of the layout"):
        plan_recreate(layout(), [here("/dev/sdb", 1000)], RecreateOptions(maps={"/dev/sdx": "/dev/sdb"}))
    with pytest.raises(PlanError, match="not a whole disk here"):
        plan_recreate(layout(), [here("/dev/sdb", 1000)], RecreateOptions(maps={"/dev/vda": "/dev/sdq"}))
    plan = plan_recreate(layout(), [here("/dev/sdb", 1000)], RecreateOptions(maps={"virtio-S1": "/dev/sdb"}))
    assert plan.disks == ["/dev/sdb"]


def test_the_stages_run_in_the_documented_order():
    plan = plan_recreate(
        layout(), [here("/dev/sdb", 1000)], RecreateOptions(maps={"/dev/vda": "/dev/sdb"}, target="/t")
    )
    stages = [s.stage for s in plan.steps]
    first = {st: stages.index(st) for st in ("wipe", "partition", "mkfs", "swap", "mount")}
    assert first["wipe"] < first["partition"] < first["mkfs"] < first["swap"] < first["mount"]
    assert [m["target"] for m in plan.mounts] == ["/t", "/t/boot"]
    mk = next(s for s in plan.steps if s.argv[0] == "mke2fs" and s.argv[-1] == "/dev/sdb2")
    assert mk.argv[mk.argv.index("-U") + 1] == "u-root"
    assert "-N" in mk.argv  # same size: the same inode count


def test_a_bigger_disk_grows_the_last_partition_unless_grow_names_another():
    plan = plan_recreate(layout(), [here("/dev/sdb", 1500)], RecreateOptions(maps={"/dev/vda": "/dev/sdb"}))
    assert sizes(plan, "/dev/sdb") == [(1, 200), (201, 600), (801, 698)]
    plan = plan_recreate(
        layout(), [here("/dev/sdb", 1500)], RecreateOptions(maps={"/dev/vda": "/dev/sdb"}, grow="/")
    )
    assert sizes(plan, "/dev/sdb") == [(1, 200), (201, 1100), (1301, 198)]
    mk = next(s for s in plan.steps if s.argv[0] == "mke2fs" and s.argv[-1] == "/dev/sdb2")
    assert "-N" not in mk.argv and mk.argv[mk.argv.index("-i") + 1] == "16384"  # the ratio, not the count
    assert any("/dev/vda2: 600.0 MiB -> 1.1 GiB" in c for c in plan.changes)


def test_a_smaller_disk_shrinks_swap_freely():
    plan = plan_recreate(layout(), [here("/dev/sdb", 900)], RecreateOptions(maps={"/dev/vda": "/dev/sdb"}))
    assert sizes(plan, "/dev/sdb") == [(1, 200), (201, 600), (801, 98)]


def test_a_smaller_disk_needs_the_catalog_to_shrink_a_filesystem():
    opts = RecreateOptions(maps={"/dev/vda": "/dev/sdb"}, grow="/")
    with pytest.raises(PlanError, match="without the catalog"):
        plan_recreate(layout(), [here("/dev/sdb", 700)], opts)
    opts.usage = {"/": {"bytes": 200 * MIB, "files": 1000}, "/boot": {"bytes": MIB, "files": 3}}
    plan = plan_recreate(layout(), [here("/dev/sdb", 700)], opts)
    assert sizes(plan, "/dev/sdb") == [(1, 200), (201, 300), (501, 198)]


def test_a_smaller_disk_is_refused_naming_the_filesystem_and_the_shortfall():
    opts = RecreateOptions(
        maps={"/dev/vda": "/dev/sdb"}, grow="/", usage={"/": {"bytes": 280 * MIB, "files": 10}}
    )
    with pytest.raises(
        PlanError, match=r"filesystem ext4 LABEL=root \(/\) holds 280.0 MiB in 10 files.*short by"
    ):
        plan_recreate(layout(), [here("/dev/sdb", 700)], opts)
    opts.usage = {"/": {"bytes": MIB, "files": 20000}}
    with pytest.raises(
        PlanError, match=r"needs 22011 inodes, the smaller disk gives 19200: short by 2811 inodes"
    ):
        plan_recreate(layout(), [here("/dev/sdb", 700)], opts)


def test_md_mirrors_are_created_clean_and_luks_reads_the_passphrase_from_stdin():
    stack = {
        "md": [
            {
                "device": "/dev/md0",
                "level": "raid1",
                "raid_devices": 2,
                "metadata": "1.2",
                "uuid": "a:b:c:d",
                "name": "host:root",
                "homehost": "host",
                "members": [{"device": "/dev/vda2", "role": "0"}],
                "chunk_size": None,
                "bitmap": "internal",
            }
        ],
        "luks": [
            {
                "device": "/dev/md0",
                "version": 2,
                "uuid": "L1",
                "cipher": "aes-xts-plain64",
                "key_size": 512,
                "sector_size": 4096,
                "pbkdf": "argon2id",
                "hash": "sha256",
                "data_offset": 16 * MIB,
                "label": None,
                "mapping": "cr",
                "mapped_device": "/dev/mapper/cr",
            }
        ],
    }
    data = layout(extra_stack=stack)
    data["filesystems"] = data["filesystems"][2:]
    data["mounts"] = []
    plan = plan_recreate(data, [here("/dev/sdb", 1000)], RecreateOptions(maps={"/dev/vda": "/dev/sdb"}))
    md = next(s for s in plan.steps if s.stage == "md")
    assert (
        md.argv[-2:] == ["/dev/sdb2", "missing"]
        and "--assume-clean" in md.argv
        and "--homehost=host" in md.argv
    )
    fmt, opened = [s for s in plan.steps if s.stage == "luks"]
    assert (
        fmt.secret_stdin
        and "--key-file=-" in fmt.argv
        and "--uuid=L1" in fmt.argv
        and "--offset=32768" in fmt.argv
    )
    assert opened.argv[-2:] == ["/dev/md0", "cr"]
    stages = [s.stage for s in plan.steps]
    assert stages.index("partition") < stages.index("md") < stages.index("luks") < stages.index("swap")


def test_thin_pools_and_shrinking_a_pv_are_refused():
    lvm = {
        "pvs": [{"pv_name": "/dev/vda2", "pv_uuid": "P", "vg_name": "vg"}],
        "vgs": [],
        "lvs": [{"lv_name": "pool", "vg_name": "vg", "lv_uuid": "T", "segtype": "thin-pool"}],
        "vgcfgbackup": {"vg": "vg {}\n"},
    }
    data = layout(extra_stack={"lvm": lvm})
    with pytest.raises(PlanError, match="thin pools"):
        plan_recreate(data, [here("/dev/sdb", 1000)], RecreateOptions(maps={"/dev/vda": "/dev/sdb"}))
    data["filesystems"] = [f for f in data["filesystems"] if f["device"] != "/dev/vda2"]
    with pytest.raises(PlanError, match="holds no filesystem the catalog can measure"):
        plan_recreate(data, [here("/dev/sdb", 700)], RecreateOptions(maps={"/dev/vda": "/dev/sdb"}, grow="2"))


def test_a_minimal_layout_cannot_be_recreated():
    with pytest.raises(PlanError, match="minimal layout"):
        plan_recreate({"format": "rescue-layout-minimal", "version": 1, "mounts": []}, [], RecreateOptions())
