#!/usr/bin/env bash
# Builds the drill's production system (Debian bookworm from drill/prodroot/packages, with mmdebstrap) into
# build/out/prodroot/ (relative to the checkout), cached like build-tgt.sh: a rebuild happens only when the
# package list, the files under drill/prodroot/ or this script change.
#   root.tar       the tree (owners, modes, links as installed); what the installer extracts onto a layout
#   installer.ext4 the same tree as a bare ext4 file system (label drill-inst), booted with
#                  init=/sbin/drill-installer-init to lay out and fill disks (it has udev, lvm2, mdadm, grub)
#   vmlinuz, initrd.img  the tree's kernel and initramfs, to boot installer.ext4 directly
# Packages come from the Debian archive that apt's own sources name (deb entries of /etc/apt/sources.list and
# sources.list.d/*.sources whose URIs name debian); no mirror is written here. Needs root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
top="$(cd "$here/.." && pwd)"
dest="$top/build/out/prodroot"
stamp="$dest/.stamp"

want="$(cd "$here" && sha256sum build-prodroot.sh prodroot/* | sha256sum | cut -d' ' -f1)"
if [ -f "$dest/root.tar" ] && [ -f "$dest/installer.ext4" ] && [ -f "$dest/vmlinuz" ] &&
  [ -f "$dest/initrd.img" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "build-prodroot: cached in build/out/prodroot" >&2
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "build-prodroot: run as root (mmdebstrap, owners in the tree)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { echo "build-prodroot: mmdebstrap missing (build/system-deps.sh)" >&2; exit 2; }

# Built beside the old tree, which stays usable (guests may be running from it) until the new one replaces it.
mkdir -p "$top/build/out"
work="$(mktemp -d "$top/build/out/.prodroot-work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The Debian "deb" entries apt uses here, as one deb822 file for the tree's apt.
sources="$work/debian.sources"
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  awk 'BEGIN { RS=""; ORS="\n\n" }
       /(^|\n)Types:([^\n]* )?deb( [^\n]*)?(\n|$)/ && /(^|\n)URIs:[^\n]*debian/ {
         sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb"); sub(/^\n/, ""); print }' "$f" >>"$sources"
done
if [ -f /etc/apt/sources.list ]; then
  sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*debian[^ ]*\) \(.*\)$/deb \2 \3/p' /etc/apt/sources.list >"$work/list"
  [ -s "$sources" ] || [ ! -s "$work/list" ] || mv "$work/list" "$sources"
fi
[ -s "$sources" ] || { echo "build-prodroot: no Debian entry in apt's sources" >&2; exit 2; }

packages="$(grep -v '^#' "$here/prodroot/packages" | grep . | paste -sd, -)"
# shellcheck disable=SC2016 # $1 is the tree, expanded by mmdebstrap's hook shell
resume_hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && echo RESUME=none >"$1/etc/initramfs-tools/conf.d/resume"'
t0=$(date +%s)
# Documentation, man pages, translations and drivers for hardware a VM never has are left out (smaller tree:
# faster backup and restore under TCG). RESUME=none before the kernel's initramfs is built: the build host's
# swap must not become the tree's resume device.
mmdebstrap --variant=minbase --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/gpu/*' \
  --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/media/*' \
  --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/net/wireless/*' \
  --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/infiniband/*' \
  --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/staging/*' \
  --dpkgopt='path-exclude=/lib/modules/*/kernel/sound/*' \
  --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/bluetooth/*' \
  --dpkgopt='path-exclude=/lib/modules/*/kernel/net/wireless/*' \
  --dpkgopt='path-exclude=/lib/modules/*/kernel/net/mac80211/*' \
  --setup-hook="$resume_hook" \
  --customize-hook="$here/prodroot/customize.sh" \
  bookworm "$work/root.tar" "$sources" >"$work/mmdebstrap.log" 2>&1 || {
  tail -n 30 "$work/mmdebstrap.log" >&2
  echo "build-prodroot: mmdebstrap failed" >&2
  exit 2
}
t1=$(date +%s)

tree="$work/tree"
mkdir "$tree"
tar -C "$tree" --numeric-owner -xpf "$work/root.tar"
kernel="$(find "$tree/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)"
initrd="$tree/boot/initrd.img-${kernel##*/vmlinuz-}"
if [ ! -f "$kernel" ] || [ ! -f "$initrd" ]; then
  echo "build-prodroot: no kernel/initramfs in the tree" >&2
  exit 2
fi
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
size_mb=$(($(du -sm "$tree" | cut -f1) * 13 / 10 + 200))
mkfs.ext4 -q -F -L drill-inst -d "$tree" "$work/installer.ext4" "${size_mb}M"
t2=$(date +%s)
rm -rf "$work/tree" "$dest"
mkdir "$dest"
mv "$work/root.tar" "$work/installer.ext4" "$work/vmlinuz" "$work/initrd.img" "$work/mmdebstrap.log" "$dest/"
echo "$want" >"$stamp"
echo "build-prodroot: mmdebstrap $((t1 - t0))s, installer image $((t2 - t1))s; root.tar $(du -m "$dest/root.tar" | cut -f1) MB" >&2
