#!/bin/sh
# Run by the rescue image's /init (rescue.run=9p:...) on two empty virtio disks: builds the storage stack a
# recover recreates, with given UUIDs, and leaves what blkid -p and lsblk -J see in the shared directory.
# The UUIDs come from uuids.env beside this script.
set -eux
# shellcheck source=/dev/null
. ./uuids.env
out=$(pwd)
for dev in /dev/vda /dev/vdb; do
	printf 'label: gpt\nsize=32MiB, type=uefi\ntype=raid\n' | sfdisk -q "$dev"
done
wipefs -a /dev/vda2 /dev/vdb2
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 --assume-clean \
	--uuid="$MD_UUID" /dev/vda2 /dev/vdb2
head -c 64 /dev/urandom >/run/luks.key
# LUKS2, aes-xts-plain64 (cryptsetup's default); a small argon2id cost keeps luksFormat quick under TCG.
cryptsetup luksFormat --batch-mode --type luks2 --cipher aes-xts-plain64 --key-size 512 --uuid "$LUKS_UUID" \
	--pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 --pbkdf-parallel 1 \
	--key-file /run/luks.key /dev/md0
cryptsetup open --key-file /run/luks.key /dev/md0 crypt
pvcreate -q --uuid "$PV_UUID" --norestorefile /dev/mapper/crypt
vgcreate -q vg0 /dev/mapper/crypt
lvcreate -q -y -L 64M -n root vg0
lvcreate -q -y -L 304M -n data vg0
lvcreate -q -y -L 128M -n home vg0
mkfs.ext4 -q -U "$EXT4_UUID" /dev/vg0/root
# (xfsprogs makes no new filesystem under 300 MB: data has 304 MiB)
mkfs.xfs -q -K -m uuid="$XFS_UUID" /dev/vg0/data
mkfs.btrfs -q -K -U "$BTRFS_UUID" /dev/vg0/home
mkfs.fat -F 32 -i "$VFAT_ID" /dev/vda1
mkswap -U "$SWAP_UUID" /dev/vdb1
for fs in root data home; do
	mkdir -p "/mnt/$fs"
	mount "/dev/vg0/$fs" "/mnt/$fs"
	echo "$fs" >"/mnt/$fs/hello"
done
mkdir -p /mnt/root/boot/efi
mount /dev/vda1 /mnt/root/boot/efi
echo esp >/mnt/root/boot/efi/hello
swapon /dev/vdb1
swapoff /dev/vdb1
# a chroot of the target as a bootloader step makes it: /usr bind-mounted from the rescue system
mkdir -p /mnt/root/usr /mnt/root/proc
mount --bind /usr /mnt/root/usr
for d in bin sbin lib lib64; do ln -s "usr/$d" "/mnt/root/$d"; done
mount -t proc proc /mnt/root/proc
chroot /mnt/root /bin/sh -c 'cat /hello /boot/efi/hello; findmnt -n -o FSTYPE /' >"$out/chroot.txt"
umount /mnt/root/proc /mnt/root/usr /mnt/root/boot/efi
for fs in root data home; do umount "/mnt/$fs"; done
for dev in /dev/vda1 /dev/vdb1 /dev/vda2 /dev/md0 /dev/mapper/crypt /dev/vg0/root /dev/vg0/data /dev/vg0/home; do
	echo "== $dev"
	blkid -p -o export "$dev"
done >"$out/blkid.txt"
# The tree of devices. (Without udev, lsblk finds no FSTYPE or UUID in udev's database: blkid -p has them.)
lsblk -J -o NAME,TYPE,SIZE >"$out/lsblk.json"
# Everything taken down and brought up again from the disks alone, as the recovered system's boot does.
vgchange -q -an vg0
cryptsetup close crypt
mdadm --stop /dev/md0
mdadm --assemble --uuid="$MD_UUID" /dev/md0 /dev/vda2 /dev/vdb2
cryptsetup open --key-file /run/luks.key /dev/md0 crypt
vgchange -q -ay vg0
mount /dev/vg0/home /mnt/home
cat /mnt/home/hello >"$out/reassembled.txt"
umount /mnt/home
vgchange -q -an vg0
cryptsetup close crypt
mdadm --stop /dev/md0
echo 'storage stack: built, reported and reassembled'
