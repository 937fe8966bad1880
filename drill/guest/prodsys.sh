#!/bin/sh
# The production system's layouts, made and booted by the drill (drill/bootdrill.py). Runs in the installer guest
# (the production tree itself, with udev, lvm2, mdadm and grub): disks are named by their by-id path
# (/dev/disk/by-id/virtio-SERIAL), never by kernel name. DISKS is one such path, or several joined by commas.
#   prodsys.sh layout LAYOUT DISKS        partition the disks, make the arrays, volumes and file systems
#   prodsys.sh mount LAYOUT DISKS TARGET  mount the layout's file systems under TARGET (root first)
#   prodsys.sh fstab LAYOUT DISKS TARGET  write TARGET/etc/fstab from what exists (by UUID), and mdadm.conf's arrays
#   prodsys.sh bootloader LAYOUT DISKS TARGET  grub in a chroot of TARGET; /dev /proc /sys /run mounted for it
#   prodsys.sh umount TARGET              unmount everything under TARGET, deactivate the volume group, stop md
# LAYOUT: bios-mbr (MBR: ext4 root, swap), uefi-lvm (GPT: ESP, /boot, LVM with root and swap) or bios-md (two
# disks, each MBR with one partition; an md RAID1 of the two, LVM on it with root and swap; grub on both disks).
set -eu
VG=vg0
MD=/dev/md0

first() { echo "${1%%,*}"; }
each() { echo "$1" | tr , ' '; }

part() { # part DISK N: the partition device of a disk given by its by-id path
  readlink -f "$1-part$2"
}

cmd_layout() {
  layout=$1 disk=$(first "$2")
  for d in $(each "$2"); do wipefs -q -a "$d"; done
  disk_mb=$(($(blockdev --getsize64 "$disk") / 1048576))
  case $layout in
  bios-mbr)
    # root: all but 256 MiB of swap at the end (and the first MiB sfdisk leaves for alignment)
    printf 'label: dos\n,%sMiB,L,*\n,,S\n' $((disk_mb - 257)) | sfdisk -q "$disk"
    udevadm settle
    mkfs.ext4 -q -F -L root "$(part "$disk" 1)"
    mkswap -L swap "$(part "$disk" 2)" >/dev/null
    ;;
  uefi-lvm)
    printf 'label: gpt\n,128MiB,U\n,384MiB,L\n,,V\n' | sfdisk -q "$disk"
    udevadm settle
    mkfs.vfat -F 32 -n ESP "$(part "$disk" 1)" >/dev/null
    mkfs.ext4 -q -F -L boot "$(part "$disk" 2)"
    pvcreate -q -ff -y "$(part "$disk" 3)"
    vgcreate -q "$VG" "$(part "$disk" 3)"
    lvcreate -q -y -L 256M -n swap "$VG"
    lvcreate -q -y -l 100%FREE -n root "$VG"
    udevadm settle
    mkfs.ext4 -q -F -L root "/dev/$VG/root"
    mkswap -L swap "/dev/$VG/swap" >/dev/null
    ;;
  bios-md)
    # One RAID partition per disk (sfdisk leaves the first MiB: room for grub's core.img with mdraid1x and lvm).
    # Metadata 1.2 sits 4 KiB into each member, so LVM never sees a member as its PV; grub reads it (mdraid1x).
    # The disks are new (zeros): the mirror is in sync from the start, no resync under emulation.
    members=""
    for d in $(each "$2"); do
      printf 'label: dos\n,,R,*\n' | sfdisk -q "$d"
      members="$members $(part "$d" 1)"
    done
    udevadm settle
    # shellcheck disable=SC2086 # one word per member
    mdadm --create "$MD" --run --level=1 --raid-devices=2 --metadata=1.2 --homehost=prod --name=0 \
      --assume-clean $members
    pvcreate -q -ff -y "$MD"
    vgcreate -q "$VG" "$MD"
    lvcreate -q -y -L 256M -n swap "$VG"
    lvcreate -q -y -l 100%FREE -n root "$VG"
    udevadm settle
    mkfs.ext4 -q -F -L root "/dev/$VG/root"
    mkswap -L swap "/dev/$VG/swap" >/dev/null
    ;;
  *) echo "prodsys: unknown layout $layout" >&2; exit 2 ;;
  esac
  udevadm settle
}

root_dev() {
  case $1 in
  bios-mbr) part "$(first "$2")" 1 ;;
  *) echo "/dev/mapper/$VG-root" ;;
  esac
}

swap_dev() {
  case $1 in
  bios-mbr) part "$(first "$2")" 2 ;;
  *) echo "/dev/mapper/$VG-swap" ;;
  esac
}

cmd_mount() {
  layout=$1 disks=$2 target=$3 disk=$(first "$2")
  [ "$layout" = bios-mbr ] || { vgchange -q -a y "$VG" >/dev/null; udevadm settle; }
  mkdir -p "$target"
  mount "$(root_dev "$layout" "$disks")" "$target"
  if [ "$layout" = uefi-lvm ]; then
    mkdir -p "$target/boot" && mount "$(part "$disk" 2)" "$target/boot"
    mkdir -p "$target/boot/efi" && mount "$(part "$disk" 1)" "$target/boot/efi"
  fi
}

uuid() { blkid -s UUID -o value "$1"; }

cmd_fstab() {
  layout=$1 disks=$2 target=$3 disk=$(first "$2")
  {
    echo "# written by the drill's installer for layout $layout"
    echo "UUID=$(uuid "$(root_dev "$layout" "$disks")") / ext4 errors=remount-ro 0 1"
    if [ "$layout" = uefi-lvm ]; then
      echo "UUID=$(uuid "$(part "$disk" 2)") /boot ext4 defaults 0 2"
      echo "UUID=$(uuid "$(part "$disk" 1)") /boot/efi vfat umask=0077 0 1"
    fi
    echo "UUID=$(uuid "$(swap_dev "$layout" "$disks")") none swap sw 0 0"
  } >"$target/etc/fstab"
  if [ "$layout" = bios-md ]; then
    # The tree's mdadm.conf (mkconf's) with the array named, as Debian's installer leaves it.
    conf="$target/etc/mdadm/mdadm.conf"
    grep -v '^ARRAY' "$conf" >"$conf.new" || true
    mdadm --detail --scan >>"$conf.new"
    mv "$conf.new" "$conf"
  fi
}

cmd_bootloader() {
  layout=$1 disks=$2 target=$3 disk=$(first "$2")
  for d in dev proc sys run; do mkdir -p "$target/$d"; done
  mount --bind /dev "$target/dev"
  mount -t proc proc "$target/proc"
  mount -t sysfs sysfs "$target/sys"
  mount -t tmpfs tmpfs "$target/run"
  if [ -d /sys/firmware/efi/efivars ]; then
    mount -t efivarfs efivarfs "$target/sys/firmware/efi/efivars"
  fi
  rc=0
  case $layout in
  bios-mbr)
    # grub-pc's own record of where it lives, by id: the next grub upgrade reinstalls there.
    echo "grub-pc grub-pc/install_devices multiselect $disk" | chroot "$target" debconf-set-selections
    chroot "$target" grub-install --target=i386-pc "$disk" || rc=$?
    ;;
  bios-md)
    # grub on every member: either disk boots alone. debconf names both (comma-separated, as grub-pc asks).
    echo "grub-pc grub-pc/install_devices multiselect $(echo "$disks" | sed 's/,/, /g')" |
      chroot "$target" debconf-set-selections
    for d in $(each "$disks"); do
      [ "$rc" = 0 ] && { chroot "$target" grub-install --target=i386-pc "$d" || rc=$?; }
    done
    ;;
  uefi-lvm)
    # No NVRAM entry from here (the installer may not run under UEFI): the removable path boots by itself.
    chroot "$target" grub-install --target=x86_64-efi --efi-directory=/boot/efi --bootloader-id=debian \
      --no-nvram --force-extra-removable || rc=$?
    ;;
  esac
  [ "$rc" = 0 ] && { chroot "$target" update-grub || rc=$?; }
  for d in sys/firmware/efi/efivars run sys proc dev; do
    mountpoint -q "$target/$d" && umount "$target/$d"
  done
  return "$rc"
}

cmd_umount() {
  target=$1
  awk -v t="$target" '$2 == t || index($2, t "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount "$m"; done
  if vgs "$VG" >/dev/null 2>&1; then vgchange -q -a n "$VG" >/dev/null; fi
  if [ -e /proc/mdstat ] && grep -q '^md' /proc/mdstat; then mdadm --stop --scan; fi
}

cmd=$1
shift
"cmd_$cmd" "$@"
