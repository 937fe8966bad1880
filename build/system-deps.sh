#!/usr/bin/env bash
# Installs the Debian packages the tests, benchmarks and the drill need. Run as root; a no-op for others
# (a developer without root gets skips, CI=true turns those skips into failures).
set -euo pipefail

packages=(
  # archive interop and tape tools
  tar mt-st acl attr e2fsprogs gcc libc6-dev libarchive-tools
  # databases for dump/reload round trips
  mariadb-server mariadb-client postgresql
  # rescue images and VMs
  xorriso mtools dosfstools grub-common grub-pc-bin grub-efi-amd64-bin ovmf qemu-system-x86 qemu-block-extra
  qemu-utils busybox-static cpio zstd
  # the virtual tape: tgt is built from Debian's source with our patch (drill/build-tgt.sh)
  tgt libiscsi-bin dpkg-dev make patch xz-utils
  # disk layouts on loop devices: partition tables, filesystems; md, LVM, LUKS for captures (their kernel parts
  # run in a rescue-image guest)
  fdisk gdisk xfsprogs btrfs-progs mdadm lvm2 cryptsetup-bin
  # the drill's production system, a Debian tree (drill/build-prodroot.sh)
  mmdebstrap
  # lint of shell scripts
  shellcheck
)

if [ "$(id -u)" != 0 ]; then
  echo "system-deps: not root, not installing: ${packages[*]}" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Services are started by the tests themselves, on sockets in temporary directories.
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
