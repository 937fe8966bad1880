"""The bootloader stage's plan (pure) and its chroot, with subprocess mocked at its boundary."""

import subprocess

import pytest

from rescue.errors import RefusedError
from rescue.recover import bootloader
from rescue.recover.bootloader import BootloaderError, plan_bootloader
from rescue.recover.chroot import Chroot, ChrootError, logged_runner


def disk(path, *parts, by_id=()):
    return {
        "path": path,
        "by_id": list(by_id),
        "table": {"partitions": [{"node": f"{path}{n}", "number": n, "role": "linux"} for n in parts]},
    }


def bios_layout(**boot):
    return {
        "disks": [disk("/dev/vda", 1, 2, by_id=["virtio-AAA"])],
        "boot": {"firmware": "bios", "grub_in_mbr": ["/dev/vda"], "packages": ["grub-pc"], **boot},
        "md": [],
        "luks": [],
    }


def argvs(plan):
    return [argv for argv, _ in plan.commands]


def test_bios_installs_grub_pc_on_the_new_disk_and_names_it_for_debconf():
    dmap = {"/dev/vda": "/dev/sda", "/dev/vda1": "/dev/sda1"}
    plan = plan_bootloader(bios_layout(), dmap, [], {}, False, False, {"/dev/sda": "/dev/disk/by-id/ata-NEW"})
    assert argvs(plan)[:3] == [
        ["grub-install", "--target=i386-pc", "/dev/sda"],
        ["debconf-set-selections"],
        ["update-grub"],
    ]
    assert plan.commands[1][1] == "grub-pc grub-pc/install_devices multiselect /dev/disk/by-id/ata-NEW\n"
    # vda -> sda is another disk name: the initramfs is rebuilt.
    assert argvs(plan)[-1] == ["update-initramfs", "-u", "-k", "all"]
    assert plan.initramfs == ["disk /dev/vda is /dev/sda here"]


def test_same_disks_and_uuids_keep_the_initramfs():
    plan = plan_bootloader(bios_layout(), {"/dev/vda": "/dev/vda"}, [], {}, False, False, {})
    assert ["update-initramfs", "-u", "-k", "all"] not in argvs(plan) and plan.initramfs == []


def test_bios_raid1_installs_on_every_member_disk_found_through_debconf():
    layout = bios_layout(grub_in_mbr=[], grub_pc_install_devices=["/dev/disk/by-id/virtio-AAA"])
    layout["disks"].append(disk("/dev/vdb", 1, by_id=["virtio-BBB"]))
    layout["md"] = [
        {"level": "raid1", "uuid": "u1", "members": [{"device": "/dev/vda1"}, {"device": "/dev/vdb1"}]}
    ]
    dmap = {"/dev/vda": "/dev/vda", "/dev/vdb": "/dev/vdb"}
    plan = plan_bootloader(layout, dmap, [], {}, False, False, {})
    assert argvs(plan)[:2] == [
        ["grub-install", "--target=i386-pc", "/dev/vda"],
        ["grub-install", "--target=i386-pc", "/dev/vdb"],
    ]
    assert plan.commands[2][1] == "grub-pc grub-pc/install_devices multiselect /dev/vda, /dev/vdb\n"
    # md UUID changed: rebuild.
    assert plan_bootloader(layout, dmap, [], {"u1": "u2"}, False, False, {}).initramfs == [
        "UUID u1 is u2 now"
    ]


def uefi_layout(shim):
    efi = {
        "current": "0003",
        "order": ["0003"],
        "entries": [{"num": "0003", "path": r"HD(1,GPT,x)/File(\EFI\debian\shimx64.efi)"}],
    }
    return {
        "disks": [disk("/dev/vda", 1, 2)],
        "boot": {"firmware": "uefi", "efibootmgr": efi, "esp": [{"mount_point": "/boot/efi"}], "shim": shim},
    }


def test_uefi_with_shim_keeps_the_bootloader_id_and_adds_the_removable_path():
    plan = plan_bootloader(uefi_layout(True), {"/dev/vda": "/dev/vda"}, [], {}, True, True, {})
    assert argvs(plan)[0] == [
        "grub-install",
        "--target=x86_64-efi",
        "--efi-directory=/boot/efi",
        "--bootloader-id=debian",
        "--uefi-secure-boot",
    ]
    assert ("boot/efi/EFI/debian/shimx64.efi", "boot/efi/EFI/BOOT/BOOTX64.EFI") in plan.copies
    assert ("efibootmgr", "efibootmgr") in plan.tools and ("shim", "shim-signed") in plan.tools


def test_uefi_without_writable_efivars_installs_without_nvram_and_grub_as_fallback():
    plan = plan_bootloader(uefi_layout(False), {"/dev/vda": "/dev/vda"}, [], {}, True, False, {})
    assert argvs(plan)[0][-1] == "--no-nvram" and "--uefi-secure-boot" not in argvs(plan)[0]
    assert plan.copies == [("boot/efi/EFI/debian/grubx64.efi", "boot/efi/EFI/BOOT/BOOTX64.EFI")]


def test_a_bios_system_on_a_uefi_booted_machine_is_refused():
    with pytest.raises(RefusedError, match="BIOS -> UEFI is not supported"):
        plan_bootloader(bios_layout(), {}, [], {}, True, True, {})


def test_a_missing_tool_names_its_package_before_anything_is_mounted(tmp_path, mocker):
    run = mocker.patch("rescue.recover.chroot.subprocess.run")
    plan = plan_bootloader(uefi_layout(True), {"/dev/vda": "/dev/vda"}, [], {}, True, True, {})
    with pytest.raises(BootloaderError, match="install grub-efi-amd64 in the target.*install shim-signed"):
        bootloader.install(
            str(tmp_path),
            plan,
            logged_runner(open(tmp_path / "log", "w")),
            "",
            "log",
            open(tmp_path / "o", "w"),
        )
    run.assert_not_called()


def completed(argv, **kw):
    code = 1 if argv[:2] == ["chroot", kw.get("target")] and "update-grub" in argv else 0
    return subprocess.CompletedProcess(argv, code, b"", b"boom\n" if code else b"")


def test_a_failing_step_in_the_chroot_still_unmounts_everything_in_reverse(tmp_path, mocker):
    target = tmp_path / "t"
    for tool in ("usr/sbin/grub-install", "usr/sbin/update-grub", "usr/bin/debconf-set-selections"):
        (target / tool).parent.mkdir(parents=True, exist_ok=True)
        (target / tool).write_text("")
    run = mocker.patch(
        "rescue.recover.chroot.subprocess.run",
        side_effect=lambda argv, **kw: completed(argv, target=str(target)),
    )
    plan = plan_bootloader(bios_layout(), {"/dev/vda": "/dev/vda"}, [], {}, False, False, {})
    runner = logged_runner(open(tmp_path / "log", "w"))
    with pytest.raises(BootloaderError, match=r"update-grub in the target: exit 1: boom"):
        bootloader.install(str(target), plan, runner, "", "log", open(tmp_path / "o", "w"))
    calls = [c.args[0] for c in run.call_args_list]
    mounts = [c[-1] for c in calls if c[0] == "mount"]
    umounts = [c[-1] for c in calls if c[0] == "umount"]
    assert mounts == [str(target / d) for d in ("dev", "proc", "sys", "run")]
    assert umounts == list(reversed(mounts))
    assert ["chroot", str(target), "grub-install", "--target=i386-pc", "/dev/vda"] in calls


def test_a_busy_mount_is_unmounted_lazily_and_a_failed_bind_undoes_the_others(tmp_path, mocker):
    def fake(argv, **kw):
        fail = (argv[0] == "mount" and argv[-1].endswith("/sys")) or (argv[0] == "umount" and argv[1] != "-l")
        return subprocess.CompletedProcess(argv, 1 if fail else 0, b"", b"busy\n" if fail else b"")

    run = mocker.patch("rescue.recover.chroot.subprocess.run", side_effect=fake)
    chroot = Chroot(str(tmp_path), logged_runner(open(tmp_path / "log", "w")))
    with pytest.raises(ChrootError, match="mount --bind /sys"):
        chroot.__enter__()
    calls = [c.args[0] for c in run.call_args_list]
    assert ["umount", "-l", str(tmp_path / "proc")] in calls and [
        "umount",
        "-l",
        str(tmp_path / "dev"),
    ] in calls


def test_by_uuid_links_are_made_where_missing_and_removed_afterwards(tmp_path, mocker):
    mocker.patch(
        "rescue.recover.chroot.subprocess.run", return_value=subprocess.CompletedProcess([], 0, b"", b"")
    )
    dev = tmp_path / "dev"
    (dev / "disk/by-uuid").mkdir(parents=True)
    (dev / "disk/by-uuid/kept").symlink_to("../../vda2")
    export = "DEVNAME=/dev/vda1\nUUID=abcd\nTYPE=ext4\n\nDEVNAME=/dev/vda2\nUUID=kept\n\nDEVNAME=/dev/vda3\nTYPE=x\n"
    with Chroot(str(tmp_path / "t"), logged_runner(open(tmp_path / "log", "w")), dev_root=str(dev)) as ch:
        assert ch.ensure_by_uuid(export) == [f"{dev}/disk/by-uuid/abcd -> /dev/vda1"]
        assert (dev / "disk/by-uuid/abcd").readlink().as_posix() == "../../vda1"
    assert not (dev / "disk/by-uuid/abcd").exists() and (dev / "disk/by-uuid/kept").is_symlink()


def test_without_udev_debconf_gets_the_old_by_id_name_of_a_disk_with_the_same_serial():
    layout = bios_layout(grub_pc_install_devices=["/dev/disk/by-id/virtio-AAA"])
    layout["disks"][0].update(serial="AAA", by_id=["virtio-AAA", "virtio-AAA-part1"])
    dmap = {"/dev/vda": "/dev/vda"}
    names = bootloader.stable_names(layout, dmap, {}, {"/dev/vda": "AAA"}.get)
    plan = plan_bootloader(layout, dmap, [], {}, False, False, names)
    assert plan.commands[1][1] == "grub-pc grub-pc/install_devices multiselect /dev/disk/by-id/virtio-AAA\n"
    # Another disk (another serial, given by --map): its kernel name, never the old disk's by-id name.
    assert bootloader.stable_names(layout, dmap, {}, {"/dev/vda": "OTHER"}.get) == {}
    # udev's own link here wins.
    here = {"/dev/vda": "/dev/disk/by-id/virtio-NEW"}
    assert bootloader.stable_names(layout, dmap, here, {"/dev/vda": "AAA"}.get) == here


NO_BOOT = {
    "firmware": "bios",
    "efibootmgr": None,
    "esp": [],
    "bios_boot": [],
    "packages": [],
    "grub_pc_install_devices": [],
    "grub_in_mbr": [],
    "efi_files": [],
    "shim": False,
}


def test_a_layout_without_a_bootloader_installs_nothing_and_says_so(tmp_path, mocker):
    run = mocker.patch("rescue.recover.chroot.subprocess.run")
    layout = {**bios_layout(), "boot": dict(NO_BOOT)}
    # Also on a UEFI-booted machine: there is no BIOS bootloader to refuse.
    plan = plan_bootloader(layout, {"/dev/vda": "/dev/sda"}, [], {}, True, True, {})
    assert plan.commands == [] and plan.tools == []
    assert plan.lines() == ["no bootloader in the layout: nothing installed"]
    done = bootloader.install(
        str(tmp_path), plan, logged_runner(open(tmp_path / "log", "w")), "", "log", None
    )
    assert done == ["no bootloader in the layout: nothing installed"]
    run.assert_not_called()


@pytest.mark.parametrize(
    "fact",
    [{"packages": ["grub-pc"]}, {"bios_boot": [{"device": "/dev/vda1", "disk": "/dev/vda"}]}],
)
def test_a_recorded_bootloader_that_cannot_be_placed_still_stops(fact):
    layout = {**bios_layout(), "boot": {**NO_BOOT, **fact}}
    with pytest.raises(BootloaderError, match="names no disk that booted grub-pc"):
        plan_bootloader(layout, {"/dev/vda": "/dev/vda"}, [], {}, False, False, {})


def test_a_layout_without_boot_facts_is_not_taken_for_one_without_a_bootloader():
    layout = {k: v for k, v in bios_layout().items() if k != "boot"}
    with pytest.raises(BootloaderError, match="names no disk that booted grub-pc"):
        plan_bootloader(layout, {"/dev/vda": "/dev/vda"}, [], {}, False, False, {})
