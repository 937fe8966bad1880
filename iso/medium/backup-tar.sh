#!/usr/bin/env bash
# backup-tar.sh: the classic nightly full backup to tape with GNU tar, for systems without rescue (no python3).
#
# It is the well-known "bare-metal restore using tar" script (dump MySQL, tar / to /dev/nst0, keep the file list)
# with its faults fixed: the tape check had no then/else/fi and its test was inverted, the database password
# sat on the command line (visible in ps), it zeroed the tape without looking at what was on it, and
# `--preserve` is an extract option. Here:
#   - database credentials come from an option file (-c FILE, mysqldump --defaults-extra-file), never argv;
#   - a tape (or file) that already holds a tar archive or a rescue label is not overwritten without
#     --overwrite, and never while its rescue label's retention date is in the future;
#   - the tape is rewound before and after, in variable block mode (mt setblk 0) so each tar record is one tape
#     record; the record size (-b, default 512 blocks = 256 KiB) is written into the file list;
#   - database dumps, etc/, boot/, root/ go first on tape (restored first), member names are relative;
#   - tar's exit code is passed on: 0 ok, 1 some files changed or could not be read (listed), 2 fatal.
#
# Usage: backup-tar.sh [-f DEVICE] [-b BLOCKS] [-c MYSQL_OPTION_FILE] [-l FILELIST] [-d DUMPDIR]
#                      [-C ROOT] [--overwrite] [--eject] [PATH ...]
#   DEVICE: a tape (default $TAPE, then /dev/nst0) or a file; PATHs (default: all of ROOT, default /) are
#   relative to ROOT; proc sys dev run tmp mnt media lost+found are never included. With -c, the dump goes to
#   DUMPDIR (default ROOT/backup/mysql, as in the original) and its top-level directory is written first.
set -euo pipefail

device=${TAPE:-/dev/nst0}
blocks=512
mysql_cnf=
filelist=/var/backups/rescue-tar/filelist.txt
dumpdir=
root=/
overwrite=no
eject=no
excludes=(proc sys dev run tmp mnt media lost+found)

die() {
	echo "backup-tar: $*" >&2
	exit 2
}

usage() {
	sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

while [ "$#" -gt 0 ]; do
	case "$1" in
	-f) device=${2:?-f needs a device}; shift 2 ;;
	-b) blocks=${2:?-b needs a number of 512-byte blocks}; shift 2 ;;
	-c) mysql_cnf=${2:?-c needs an option file}; shift 2 ;;
	-l) filelist=${2:?-l needs a file}; shift 2 ;;
	-d) dumpdir=${2:?-d needs a directory}; shift 2 ;;
	-C) root=${2:?-C needs a directory}; shift 2 ;;
	--overwrite) overwrite=yes; shift ;;
	--eject) eject=yes; shift ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done

case "$blocks" in '' | *[!0-9]* | 0) die "-b $blocks: expected a positive number of 512-byte blocks" ;; esac
[ -d "$root" ] || die "$root: no such directory"
# Absolute names: tar runs in ROOT.
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
device=$(abs "$device")
filelist=$(abs "$filelist")
root=$(abs "$root")
if [ -n "$dumpdir" ]; then dumpdir=$(abs "$dumpdir"); fi

is_tape() { [ -c "$device" ]; }

mt_do() {
	mt -f "$device" "$@" || die "$device: mt $* failed"
}

# 1. Database dumps (before the tape is touched: a failing dump should not cost a tape).
if [ -n "$mysql_cnf" ]; then
	[ -r "$mysql_cnf" ] || die "$mysql_cnf: cannot read the MySQL option file"
	dumpdir=${dumpdir:-${root%/}/backup/mysql}
	mkdir -p -- "$dumpdir"
	dump=$(command -v mariadb-dump || command -v mysqldump) || die "neither mariadb-dump nor mysqldump found"
	# --defaults-extra-file must be the first option; the file holds [client] user= and password=.
	"$dump" --defaults-extra-file="$mysql_cnf" --all-databases --single-transaction --routines --events \
		--add-drop-table >"$dumpdir/databases.sql.tmp" || die "$dump failed; no backup written"
	mv -- "$dumpdir/databases.sql.tmp" "$dumpdir/databases.sql"
fi

# 2. The tape: loaded, rewound, and not holding a backup we were not told to overwrite.
if is_tape; then
	mt -f "$device" status >/dev/null 2>&1 || die "$device: no tape loaded (or no drive); backup not written"
	mt_do setblk 0
	mt_do rewind
fi
if [ -e "$device" ] && { is_tape || [ -s "$device" ]; }; then
	# Anything in the first record? (A blank tape reads nothing; a large buffer fits any record size.)
	used=$(dd if="$device" bs=1M count=1 2>/dev/null | wc -c) || used=0
	if is_tape; then mt_do rewind; fi
	if [ "$used" -gt 0 ]; then
		first_member=$(
			set +o pipefail
			tar -t -f "$device" -b 2048 2>/dev/null | head -n 1
		) || true
		if is_tape; then mt_do rewind; fi
		if [ "$first_member" = rescue-label.json ]; then
			probe=$(mktemp -d)
			trap 'rm -rf -- "$probe"' EXIT
			tar -x -f "$device" -b 2048 -C "$probe" rescue-label.json 2>/dev/null || true
			if is_tape; then mt_do rewind; fi
			until=$(sed -n 's/.*"retention_until": *"\([0-9-]*\).*/\1/p' "$probe/rescue-label.json" | head -n 1)
			if [ -n "$until" ] && [ "$(date -u +%F)" \< "$until" ]; then
				die "$device: holds a rescue backup kept until $until; use another tape"
			fi
		fi
		if [ "$overwrite" != yes ]; then
			what=${first_member:+a tar archive starting with $first_member}
			die "$device: already holds ${what:-data}; check it is not your only good backup, then use --overwrite"
		fi
	fi
fi

# 3. What to back up, in restore priority order: dumps, etc, boot, root, then the rest.
cd -- "$root"
if [ "$#" -eq 0 ]; then
	set --
	for p in * .[!.]*; do
		[ -e "$p" ] || [ -L "$p" ] || continue
		set -- "$@" "$p"
	done
fi
first=()
if [ -n "$dumpdir" ] && [ -d "$dumpdir" ]; then
	rel=$(realpath --relative-to=. -- "$dumpdir")
	# Its whole top-level directory goes first (naming the dump directory alone would store it twice).
	case "$rel" in ../* | .. | .) ;; *) first+=("${rel%%/*}") ;; esac
fi
for p in etc boot root; do
	for q in "$@"; do [ "${q#/}" = "$p" ] && [ "${first[0]:-}" != "$p" ] && first+=("$p"); done
done
members=("${first[@]}")
for q in "$@"; do
	q=${q#/}
	q=${q%/}
	[ -n "$q" ] || die "give paths under $root (etc var/www), or none for all of it"
	skip=no
	for x in "${excludes[@]}" "${first[@]}"; do [ "$q" = "$x" ] && skip=yes; done
	[ "$skip" = no ] && members+=("$q")
done
[ "${#members[@]}" -gt 0 ] || die "nothing to back up under $root"

# 4. Write. tar's status 1 means some files changed or vanished while read: a warning, not a failure.
mkdir -p -- "$(dirname -- "$filelist")"
filelist_rel=${filelist#"${root%/}"}
filelist_rel=${filelist_rel#/}
exclude_args=()
for x in "${excludes[@]}"; do exclude_args+=("--exclude=./$x" "--exclude=$x"); done
status=0
tar --create --file="$device" --blocking-factor="$blocks" --format=posix --verbose \
	--xattrs --xattrs-include='*' --acls --numeric-owner --one-file-system --ignore-failed-read \
	--anchored "${exclude_args[@]}" --exclude="$filelist_rel" \
	-- "${members[@]}" >"$filelist" || status=$?
{
	echo "# record size $((blocks * 512)) bytes: restore with tar -b $blocks"
	echo "# backup finished $(date -u '+%Y-%m-%dT%H:%M:%SZ') with tar status $status"
} >>"$filelist"

if is_tape; then
	mt_do rewind
	if [ "$eject" = yes ]; then mt_do offline; fi
fi
case "$status" in
0) echo "backup-tar: wrote $device (-b $blocks); file list in $filelist" >&2 ;;
1) echo "backup-tar: wrote $device, but some files changed or could not be read (see above)" >&2 ;;
*) echo "backup-tar: tar failed with status $status; $device does not hold a complete backup" >&2 ;;
esac
exit "$status"
