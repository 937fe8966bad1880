#!/usr/bin/env bash
# Builds tgtd/tgtadm/tgtimg from Debian's tgt source package with our tape-semantics patch applied, into
# build/out/tgt/ (relative to the checkout). Idempotent and cached: a rebuild happens only when the patch changes.
#
# The source comes through apt's configured sources only: a deb-src entry is derived from the existing Debian
# entry (same URIs, suites, components, keyring) and kept in a file of its own under /etc/apt/sources.list.d/.
# Needs root the first time (the deb-src entry, apt-get update, a few build tools); later runs only check the cache.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
top="$(cd "$here/.." && pwd)"
out="$top/build/out"
dest="$out/tgt"
patch="$here/tgt/tape-semantics.patch"
stamp="$dest/.stamp"

want="$(sha256sum "$patch" "$0" | sha256sum | cut -d' ' -f1)"
if [ -x "$dest/tgtd" ] && [ -x "$dest/tgtadm" ] && [ -x "$dest/tgtimg" ] && [ -f "$stamp" ] &&
  [ "$(cat "$stamp")" = "$want" ]; then
  echo "build-tgt: cached in build/out/tgt" >&2
  exit 0
fi

srclist=/etc/apt/sources.list.d/rescue-deb-src.sources
have_deb_src() {
  grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null
}

derive_deb_src() {
  # deb822 stanzas of Debian's archive with "Types: deb" become "Types: deb-src"; one-line entries likewise.
  local f tmp
  tmp="$(mktemp)"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    [ "$f" = "$srclist" ] && continue
    grep -qE '^URIs:.*debian' "$f" || continue
    awk 'BEGIN { RS=""; ORS="\n\n" }
         /(^|\n)Types:[^\n]*deb/ && /(^|\n)URIs:[^\n]*debian/ {
           sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print }' "$f" >>"$tmp"
  done
  if [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb \(.*debian.*\)$/deb-src \1/p' /etc/apt/sources.list >"$tmp.list"
  fi
  if [ -s "$tmp" ]; then
    install -m 0644 "$tmp" "$srclist"
  elif [ -s "$tmp.list" ]; then
    srclist="${srclist%.sources}.list"
    install -m 0644 "$tmp.list" "$srclist"
  else
    echo "build-tgt: no Debian apt source found to derive a deb-src entry from" >&2
    rm -f "$tmp" "$tmp.list"
    exit 2
  fi
  rm -f "$tmp" "$tmp.list"
  echo "build-tgt: added $srclist" >&2
}

if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  if ! have_deb_src; then
    derive_deb_src
    apt-get update -qq
  fi
  # What building usr/ needs (Debian's build-dep list adds rdma, glusterfs, systemd and docbook for the parts
  # we leave out).
  need=(dpkg-dev gcc make libc6-dev patch xz-utils)
  missing=()
  for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

mkdir -p "$out"
src="$(find "$out" -maxdepth 1 -type d -name 'tgt-[0-9]*' | sort -V | tail -n 1)"
if [ -z "$src" ]; then
  (cd "$out" && apt-get source -qq tgt)
  src="$(find "$out" -maxdepth 1 -type d -name 'tgt-[0-9]*' | sort -V | tail -n 1)"
fi
[ -n "$src" ] || { echo "build-tgt: apt-get source tgt gave no source tree" >&2; exit 2; }

version="${src##*/tgt-}"

# Build in a pristine copy so a changed patch applies to the original source.
work="$out/tgt-build"
rm -rf "$work"
cp -a "$src" "$work"
patch -d "$work" -p1 --quiet <"$patch"
make -C "$work/usr" -j"$(nproc)" ISCSI_RDMA= CEPH_RBD= GLFS_BD= SD_NOTIFY= VERSION="$version" EXTRAVERSION=-tape >"$out/tgt-build.log" 2>&1 || {
  tail -n 30 "$out/tgt-build.log" >&2
  echo "build-tgt: make failed, full log in build/out/tgt-build.log" >&2
  exit 2
}
mkdir -p "$dest"
install -m 0755 "$work/usr/tgtd" "$work/usr/tgtadm" "$work/usr/tgtimg" "$dest/"
echo "$want" >"$stamp"
echo "build-tgt: built build/out/tgt/{tgtd,tgtadm,tgtimg} from $(basename "$src")" >&2
