#!/bin/sh
# shellcheck shell=sh
# Runs in the drill guest (busybox sh) against a blank /dev/nst0: the st(4) behaviours the patched tgt must
# emulate, driven with mt-st and dd only, each checked against what a real SCSI drive does (SSC-3, st.c).
# Prints one "ok N - what" / "not ok N - what: got X, want Y" line per check and a closing
# "st-semantics: P passed, F failed" line; exits 1 when any check failed.
set -u
T=${TAPE:-/dev/nst0}
MT=mt-st # busybox's sh can shadow `mt` with its own applet
n=0
passed=0
failed=0

check() { # what got want
	n=$((n + 1))
	if [ "$2" = "$3" ]; then
		passed=$((passed + 1))
		echo "ok $n - $1"
	else
		failed=$((failed + 1))
		echo "not ok $n - $1: got '$2', want '$3'"
	fi
}
tell() { $MT -f "$T" tell 2>&1 | sed -n 's/^At block \([0-9]*\)\./\1/p'; }
fileno() { $MT -f "$T" status 2>&1 | sed -n 's/^File number=\([-0-9]*\),.*/\1/p'; }
fails() { if "$@" >/dev/null 2>&1; then echo succeeded; else echo failed; fi; }
size() { wc -c <"$1" | tr -d ' '; }

work=$(mktemp -d)
# Layout: file 0 = 3 records of 10240, file 1 = 2 records of 512, file 2 = 1 record of 100000, each closed by
# the filemark st writes at close after writing. Blocks: 0-2 data, 3 FM, 4-5 data, 6 FM, 7 data, 8 FM, EOD 9.
$MT -f "$T" rewind
dd if=/dev/urandom of="$work/f0" bs=10240 count=3 2>/dev/null
dd if=/dev/urandom of="$work/f1" bs=512 count=2 2>/dev/null
dd if=/dev/urandom of="$work/f2" bs=100000 count=1 2>/dev/null
dd if="$work/f0" of="$T" bs=10240 2>/dev/null
dd if="$work/f1" of="$T" bs=512 2>/dev/null
dd if="$work/f2" of="$T" bs=100000 2>/dev/null
check "READ POSITION after writing (MTIOCPOS)" "$(tell)" 9

$MT -f "$T" rewind
$MT -f "$T" eod
check "MTEOM file number (space filemarks residue at EOD)" "$(fileno)" 3
check "MTEOM position" "$(tell)" 9

$MT -f "$T" seek 4
check "LOCATE (MTSEEK) to block 4" "$(tell)" 4
dd if="$T" of="$work/short" bs=262144 count=1 2>/dev/null
check "short record read into a larger buffer: size" "$(size "$work/short")" 512
dd if="$work/f1" bs=512 count=1 2>/dev/null | cmp -s - "$work/short" && same=yes || same=no
check "short record read into a larger buffer: content" "$same" yes
check "position after the short read" "$(tell)" 5

$MT -f "$T" seek 4
check "MTFSR over a filemark fails" "$(fails $MT -f "$T" fsr 5)" failed
check "MTFSR stops just after the filemark" "$(tell)" 7

$MT -f "$T" seek 7
check "READ POSITION long form after MTSEEK (SG_IO)" "$(python3 ./read_position.py "$T")" "object=7 file=2 bop=0"
$MT -f "$T" bsf 1
check "MTBSF stops on the BOT side of the filemark" "$(tell)" 6

$MT -f "$T" rewind
$MT -f "$T" fsf 1
check "MTFSF lands after the filemark" "$(tell)" 4
check "MTFSF file number" "$(fileno)" 1

$MT -f "$T" seek 7
check "MTBSR over a filemark fails" "$(fails $MT -f "$T" bsr 2)" failed
check "MTBSR stops on the BOT side of the filemark" "$(tell)" 6

$MT -f "$T" rewind
check "MTBSR at BOT fails" "$(fails $MT -f "$T" bsr 1)" failed
check "MTBSR at BOT stays at 0" "$(tell)" 0
check "MTBSF at BOT fails" "$(fails $MT -f "$T" bsf 1)" failed

$MT -f "$T" rewind
$MT -f "$T" fsf 3
dd if="$T" of="$work/eod1" bs=262144 count=1 2>/dev/null
check "first read at EOD after a filemark returns 0 bytes (blank check)" "$(size "$work/eod1")" 0
check "next read at EOD fails" "$(fails dd if="$T" of="$work/eod2" bs=262144 count=1)" failed

$MT -f "$T" rewind
check "LOCATE past EOD fails" "$(fails $MT -f "$T" seek 100)" failed
check "LOCATE past EOD leaves the tape at EOD" "$(tell)" 9

$MT -f "$T" rewind
dd if="$T" of="$work/g0" bs=262144 2>/dev/null
cmp -s "$work/g0" "$work/f0" && same=yes || same=no
check "file 0 reads back whole" "$same" yes

$MT -f "$T" offline
drive=$($MT -f "$T" status 2>&1 | grep -c DR_OPEN)
check "MTOFFL unloads (DR_OPEN)" "$drive" 1
$MT -f "$T" load
check "MTLOAD loads at BOT" "$(tell)" 0
check "after MTLOAD st is at file 0 again (unit attention)" "$(fileno)" 0

$MT -f "$T" seek 4
$MT -f "$T" erase
$MT -f "$T" rewind
$MT -f "$T" eod
check "ERASE cuts the tape at the position" "$(tell)" 4

$MT -f "$T" rewind
rm -rf "$work"
echo "st-semantics: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
