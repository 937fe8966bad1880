"""The pure rewrites of fstab, crypttab, mdadm.conf and the resume device (rescue.recover.rewrite)."""

from rescue.recover.rewrite import rewrite_crypttab, rewrite_fstab, rewrite_names, uuid_changes

FSTAB = """\
# /etc/fstab: static file system information.
UUID=1111-aaaa   /          ext4  errors=remount-ro 0 1
/dev/vda1        /boot      ext4  defaults          0 2
/dev/vda10       /srv       xfs   defaults          0 2
UUID=2222-bbbb   none       swap  sw                0 0
tmpfs            /tmp       tmpfs defaults          0 0
"""


def test_fstab_is_unchanged_byte_for_byte_when_uuids_and_names_were_kept():
    assert rewrite_fstab(FSTAB, {}, {}) == (FSTAB, [])
    assert rewrite_fstab(FSTAB, {"1111-aaaa": "1111-aaaa"}, {"/dev/vda": "/dev/vda"}) == (FSTAB, [])


def test_fstab_gets_new_uuids_and_device_names_keeping_spacing_and_comments():
    text, changes = rewrite_fstab(FSTAB, {"2222-bbbb": "3333-cccc"}, {"/dev/vda1": "/dev/nvme0n1p1"})
    lines = text.splitlines()
    assert lines[0] == "# /etc/fstab: static file system information."
    assert lines[2] == "/dev/nvme0n1p1        /boot      ext4  defaults          0 2"
    assert lines[3].startswith("/dev/vda10       /srv")  # vda1 is not a prefix match of vda10
    assert lines[4].startswith("UUID=3333-cccc   none")
    assert changes == ["fstab: /dev/vda1 -> /dev/nvme0n1p1", "fstab: UUID=2222-bbbb -> UUID=3333-cccc"]


def test_crypttab_rewrites_the_second_field_only():
    text = "cryptroot UUID=aaaa-1 none luks,discard\n# old /dev/sda2\nswap /dev/sda3 /dev/urandom swap\n"
    new, changes = rewrite_crypttab(text, {"aaaa-1": "bbbb-2"}, {"/dev/sda3": "/dev/nvme0n1p3"})
    assert (
        new
        == "cryptroot UUID=bbbb-2 none luks,discard\n# old /dev/sda2\nswap /dev/nvme0n1p3 /dev/urandom swap\n"
    )
    assert len(changes) == 2


def test_mdadm_conf_array_uuid_matches_in_mdadm_notation():
    text = (
        "HOMEHOST <system>\nARRAY /dev/md/0 metadata=1.2 UUID=0a1b2c3d:4e5f6071:8293a4b5:c6d7e8f9 name=h:0\n"
    )
    new, changes = rewrite_names(
        text,
        {"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9": "ffffffff:00000000:11111111:22222222"},
        {},
        "mdadm.conf",
    )
    assert "UUID=ffffffff:00000000:11111111:22222222 name=h:0" in new
    assert changes == [
        "mdadm.conf: UUID=0a1b2c3d:4e5f6071:8293a4b5:c6d7e8f9 -> UUID=ffffffff:00000000:11111111:22222222"
    ]


def test_resume_device_in_initramfs_conf_and_kernel_line():
    conf = "RESUME=UUID=2222-bbbb\n"
    grub = 'GRUB_CMDLINE_LINUX="quiet resume=/dev/vda2"\n'
    assert rewrite_names(conf, {"2222-bbbb": "3333-cccc"}, {}, "resume")[0] == "RESUME=UUID=3333-cccc\n"
    assert (
        rewrite_names(grub, {}, {"/dev/vda2": "/dev/sda2"}, "grub")[0]
        == 'GRUB_CMDLINE_LINUX="quiet resume=/dev/sda2"\n'
    )


def test_uuid_changes_compares_each_device_with_what_blkid_reports_now():
    layout = {
        "filesystems": [{"device": "/dev/vda1", "uuid": "1111"}, {"device": "/dev/vda2", "uuid": "2222"}],
        "luks": [],
        "md": [],
    }
    now = [{"DEVNAME": "/dev/sda1", "UUID": "1111"}, {"DEVNAME": "/dev/sda2", "UUID": "9999"}]
    assert uuid_changes(layout, {"/dev/vda1": "/dev/sda1", "/dev/vda2": "/dev/sda2"}, now) == {"2222": "9999"}
