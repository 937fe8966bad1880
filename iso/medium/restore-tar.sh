#!/usr/bin/env bash
# restore-tar.sh: restore from a tape with mt and GNU tar alone (no python3 needed).
#
# Reads a rescue tape by its RESTORE.txt recipe - tape file 0 the label (rescue-label.json, RESTORE.txt),
# file 1 the archive, file 2 the catalog, in records of the label's record size (tar -b record_size/512) - and
# also a plain GNU tar tape such as backup-tar.sh writes. It is the classic restore script with its faults
# fixed: the tape check had no then/else/fi, and it passed directory names in "tape order" although one tar
# run reads the tape once in its own order whatever the order of the names.
#
# Usage: restore-tar.sh [-f DEVICE] [-C TARGET] [-b BLOCKS] [--list] [--label] [--catalog DIR]
#                       [--allow-root] [PATH ...]
#   DEVICE   a tape (default $TAPE, then /dev/nst0); a directory holding a set as files (0-label.tar,
#            1-archive.tar, 2-catalog.tar, as `rescue backup -f DIR` writes to a USB disk); or a tar file
#   TARGET   where to restore (default /mnt/target, must exist; / only with --allow-root)
#   -b       blocking factor; default: from the label, else 2048 (1 MiB) on a tape, which fits any record
#   --list   list the archive instead of restoring;  --label  print RESTORE.txt and stop
#   --catalog DIR  extract the catalog (catalog.jsonl.gz, filelist.txt, summary.json) into DIR and stop
#   PATH     restore only these (etc var/www; a leading / is dropped); default everything
# Exit status as GNU tar: 0 ok, 1 some files differed, 2 fatal.
set -euo pipefail

device=${TAPE:-/dev/nst0}
target=/mnt/target
blocks=
mode=restore
catalog_dir=
allow_root=no

die() {
	echo "restore-tar: $*" >&2
	exit 2
}

usage() {
	sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

while [ "$#" -gt 0 ]; do
	case "$1" in
	-f) device=${2:?-f needs a device}; shift 2 ;;
	-C) target=${2:?-C needs a directory}; shift 2 ;;
	-b) blocks=${2:?-b needs a number}; shift 2 ;;
	--list) mode=list; shift ;;
	--label) mode=label; shift ;;
	--catalog) mode=catalog; catalog_dir=${2:?--catalog needs a directory}; shift 2 ;;
	--allow-root) allow_root=yes; shift ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done
case "$blocks" in '') ;; *[!0-9]* | 0*) die "-b $blocks: expected a number of 512-byte blocks" ;; esac

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

# Where each tape file comes from, and how to get there.
kind=plain
if [ -c "$device" ]; then
	kind=tape
elif [ -d "$device" ]; then
	kind=dir
elif [ ! -e "$device" ]; then
	die "$device: no such tape, directory or file"
fi

mt_do() {
	mt -f "$device" "$@" || die "$device: mt $* failed"
}

# tape_file N: print the name tar should read for tape file N, positioning the tape there first.
tape_file() {
	case "$kind" in
	tape)
		mt_do rewind
		if [ "$1" -gt 0 ]; then mt_do fsf "$1"; fi
		echo "$device"
		;;
	dir)
		local f
		for f in "$device/$1"-*.tar; do
			[ -f "$f" ] && { echo "$f"; return 0; }
		done
		die "$device: no tape file $1 ($1-*.tar)"
		;;
	plain)
		[ "$1" -eq 0 ] || die "$device: a plain file holds one archive only, not tape file $1"
		echo "$device"
		;;
	esac
}

if [ "$kind" = tape ]; then
	mt -f "$device" status >/dev/null 2>&1 || die "$device: no tape loaded (or no drive)"
	mt_do setblk 0 # variable block mode: one tar record per tape record, whatever the record size
fi

# Tape file 0: a rescue label, or already the archive of a plain tar tape.
archive_file=0
catalog_file=
label_src=$(tape_file 0)
# Look at the first member only (a plain tar tape is not read to its end). A large buffer reads any record
# size: tar adapts to the record actually read.
first_member=$(
	set +o pipefail
	tar -t -f "$label_src" -b 2048 2>/dev/null | head -n 1
) || true
if [ "$first_member" = rescue-label.json ]; then
	label_src=$(tape_file 0)
	tar -x -f "$label_src" -b 2048 -C "$work" 2>/dev/null || die "$device: cannot read the label (tape file 0)"
fi
if [ -f "$work/rescue-label.json" ]; then
	json=$work/rescue-label.json
	field() { sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\}.*/\1/p" "$json" | head -n 1; }
	record_size=$(field record_size)
	archive_file=$(field archive_file)
	catalog_file=$(field catalog_file)
	case "$record_size" in '' | *[!0-9]*) die "$device: label without a record size" ;; esac
	[ $((record_size % 512)) -eq 0 ] || die "$device: label record size $record_size is not whole 512-byte blocks"
	blocks=${blocks:-$((record_size / 512))}
	echo "restore-tar: rescue tape of $(field host), written $(field created), backup $(field backup_id)" >&2
	echo "restore-tar: record size $record_size (tar -b $blocks); archive is tape file $archive_file" >&2
else
	[ "$kind" = dir ] && die "$device: 0-*.tar is not a rescue label"
	echo "restore-tar: no rescue label: a plain tar tape, the archive is tape file 0" >&2
	# st returns a whole record per read and fails when the buffer is smaller: read with 1 MiB, tar adapts
	# to the record size it finds (tar's default of 20 blocks fails on tapes written with -b 512).
	if [ "$kind" = tape ]; then blocks=${blocks:-2048}; fi
fi
blocking=()
if [ -n "$blocks" ]; then blocking=(-b "$blocks"); fi

case "$mode" in
label)
	[ -f "$work/RESTORE.txt" ] || die "$device: no RESTORE.txt (not a rescue tape)"
	cat -- "$work/RESTORE.txt"
	[ "$kind" = tape ] && mt_do rewind
	exit 0
	;;
catalog)
	[ -n "$catalog_file" ] || die "$device: no catalog (not a rescue tape)"
	mkdir -p -- "$catalog_dir"
	tar -x -f "$(tape_file "$catalog_file")" "${blocking[@]}" -C "$catalog_dir"
	[ "$kind" = tape ] && mt_do rewind
	echo "restore-tar: catalog in $catalog_dir" >&2
	exit 0
	;;
esac

paths=()
for p in "$@"; do
	p=${p#/}
	p=${p%/}
	[ -n "$p" ] || die "give paths as in the archive (etc var/www), or none for everything"
	paths+=("$p")
done

src=$(tape_file "$archive_file")
status=0
if [ "$mode" = list ]; then
	tar -t -v -f "$src" "${blocking[@]}" -- "${paths[@]}" || status=$?
else
	[ -d "$target" ] || die "$target: no such directory (mount the new filesystems there first)"
	resolved=$(cd -- "$target" && pwd -P)
	if [ "$resolved" = / ] && [ "$allow_root" != yes ]; then
		die "refusing to restore over / of the running system; use -C /mnt/target (or --allow-root)"
	fi
	# GNU tar refuses member names with '..' and strips a leading '/', so nothing lands outside the target.
	tar -x -p -f "$src" "${blocking[@]}" --xattrs --xattrs-include='*' --acls --numeric-owner \
		--same-permissions -C "$target" -- "${paths[@]}" || status=$?
fi
[ "$kind" = tape ] && mt_do rewind
case "$status" in
0) echo "restore-tar: done" >&2 ;;
1) echo "restore-tar: done, but some files differed (see above)" >&2 ;;
*) echo "restore-tar: tar failed with status $status" >&2 ;;
esac
exit "$status"
