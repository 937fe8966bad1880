"""`rescue recover`: bring a machine back from tape in named stages, layout -> restore -> bootloader -> finalize.

Modules: `job` (the stages, the plan shown first, one confirmation, `--resume`), `state` (the small state file
that remembers which stages are done), `chroot` (bind mounts around commands run in the target), `bootloader`
(grub and the initramfs, planned purely, run in the chroot), `rewrite` (pure rewrites of fstab, crypttab,
mdadm.conf and the resume device), `finalize` (those rewrites applied with a backup copy, the logs copied into
the target, the summary), `dbreload` (`--reload-db-now`: the dumps loaded by the target's own MariaDB server in
the chroot).
"""
