#!/bin/sh
# mmdebstrap customize hook for the drill's production tree: $1 is the tree. Adds the health and job units,
# a serial console for grub and the kernel, a host name; leaves layout-specific files (fstab, grub.cfg) to the
# installer.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
root="$1"
install -m 0755 "$here/rescue-health" "$here/drill-job" "$root/usr/local/sbin/"
install -m 0644 "$here/rescue-health.service" "$here/drill-job.service" "$root/etc/systemd/system/"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf ../rescue-health.service "$root/etc/systemd/system/multi-user.target.wants/rescue-health.service"
ln -sf ../drill-job.service "$root/etc/systemd/system/multi-user.target.wants/drill-job.service"
echo prod >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tprod\n' >"$root/etc/hosts"
cat >>"$root/etc/default/grub" <<'GRUB'
# drill: serial console, no menu wait
GRUB_TIMEOUT=0
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB
install -m 0755 "$here/installer-init" "$root/sbin/drill-installer-init"
# The tree has no root password; the drill drives it through drill-job, never a login.
rm -f "$root/etc/machine-id" && : >"$root/etc/machine-id"
