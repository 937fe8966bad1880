#!/bin/bash
# Runs in a rescue-image guest (rescue.run=9p:...): builds three layouts the host kernel cannot (md RAID1 + LVM,
# LUKS2 + LVM, GPT + ESP + /boot + LVM root), captures each, checks the refusal of a disk in use, tears the stack
# down and wipes it, recreates it with `rescue layout recreate` and captures again.  Results go to the share:
# NAME-before.json, NAME-after.json, NAME-refused.txt, NAME.log.  /dev/vda+vdb: md, vdc: LUKS, vdd: GPT.
set -euo pipefail
share=$(pwd)
export LVM_SUPPRESS_FD_WARNINGS=1
lvm_quiet() { "$@" >/dev/null; }

teardown() { # VG [MD] [LUKS mapping]
	lvm_quiet vgchange -an "$1"
	if [ -n "${2:-}" ]; then mdadm --stop "$2"; fi
	if [ -n "${3:-}" ]; then cryptsetup close "$3"; fi
}

wipe() { # DISK...
	for disk in "$@"; do
		for part in "$disk"[0-9]*; do
			[ -b "$part" ] && wipefs -a -q "$part"
		done
		wipefs -a -q "$disk"
	done
}

round() { # NAME VG MD LUKS DISK...
	local name=$1 vg=$2 md=$3 luks=$4
	shift 4
	local disks=("$@") disk_args=() maps=()
	for d in "${disks[@]}"; do
		disk_args+=(--disk "$d")
		maps+=(--map "$d=$d")
	done
	rescue layout capture --root "/mnt/src-$name" "${disk_args[@]}" -o "$share/$name-before.json"
	umount -R "/mnt/src-$name"
	# in use by device-mapper (and md): refused before anything is touched
	if rescue layout recreate --from "$share/$name-before.json" "${maps[@]}" --yes --key-file /tmp/key \
		--target "/mnt/t-$name" 2>"$share/$name-refused.txt"; then
		echo "recreate of $name was not refused while its stack was active" >&2
		exit 1
	fi
	teardown "$vg" "$md" "$luks"
	wipe "${disks[@]}"
	rescue layout recreate --from "$share/$name-before.json" "${maps[@]}" --yes --key-file /tmp/key \
		--target "/mnt/t-$name" --log "$share/$name.log" >"$share/$name-recreate.txt"
	rescue layout capture --root "/mnt/t-$name" "${disk_args[@]}" -o "$share/$name-after.json"
	umount -R "/mnt/t-$name"
	teardown "$vg" "$md" "$luks"
	echo "layout round $name: done"
}

printf 'secret passphrase' >/tmp/key

# md RAID1 across two disks, LVM on it: root ext4, swap
for d in /dev/vda /dev/vdb; do
	printf 'label: gpt\n,,A19D880F-05FC-4D3B-A006-743F0F84911E\n' | sfdisk -q "$d"
done
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 --name=root --bitmap=internal \
	/dev/vda1 /dev/vdb1 2>/dev/null
lvm_quiet pvcreate /dev/md0
lvm_quiet vgcreate mdvg /dev/md0
lvm_quiet lvcreate -L 120M -n root mdvg
lvm_quiet lvcreate -L 32M -n swap mdvg
mkfs.ext4 -q -L mdroot /dev/mdvg/root
mkswap -L mdswap /dev/mdvg/swap >/dev/null
mkdir -p /mnt/src-md && mount /dev/mdvg/root /mnt/src-md
round md mdvg /dev/md0 "" /dev/vda /dev/vdb

# LUKS2 with LVM inside
printf 'label: gpt\n,,L\n' | sfdisk -q /dev/vdc
cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file /tmp/key /dev/vdc1
cryptsetup open --key-file /tmp/key /dev/vdc1 cryptlvm
lvm_quiet pvcreate /dev/mapper/cryptlvm
lvm_quiet vgcreate cvg /dev/mapper/cryptlvm
lvm_quiet lvcreate -L 100M -n root cvg
mkfs.ext4 -q -L croot /dev/cvg/root
mkdir -p /mnt/src-luks && mount /dev/cvg/root /mnt/src-luks
round luks cvg "" cryptlvm /dev/vdc

# GPT: BIOS boot, ESP, /boot, LVM (root xfs, swap)
printf 'label: gpt\n,1M,21686148-6449-6E6F-744E-656564454649\n,32M,U\n,64M,L\n,,E6D6D379-F507-44C2-A23C-238F2A3DF928\n' |
	sfdisk -q /dev/vdd
mkfs.fat -n ESP /dev/vdd2 >/dev/null
mkfs.ext4 -q -L boot /dev/vdd3
lvm_quiet pvcreate /dev/vdd4
lvm_quiet vgcreate sys /dev/vdd4
lvm_quiet lvcreate -L 320M -n root sys
lvm_quiet lvcreate -L 16M -n swap sys
mkfs.xfs -q -L root /dev/sys/root
mkswap -L sysswap /dev/sys/swap >/dev/null
mkdir -p /mnt/src-gpt && mount /dev/sys/root /mnt/src-gpt
mkdir -p /mnt/src-gpt/boot && mount /dev/vdd3 /mnt/src-gpt/boot
mkdir -p /mnt/src-gpt/boot/efi && mount /dev/vdd2 /mnt/src-gpt/boot/efi
round gpt sys "" "" /dev/vdd
echo "layout guest: all rounds done"
