#!/usr/bin/env bash
# Fetch the Raspberry Pi 4 boot firmware (start4.elf, fixup4.dat) from
# Debian's `raspi-firmware` package (component non-free-firmware) without
# installing it and without touching the host's apt configuration.
#
#   tools/sdimage/fetch-firmware.sh [--cache DIR] [--suite SUITE] [--quiet]
#
# apt runs with its own source list, list directory and archive cache under
# DIR (default build/cache/raspi-firmware): `apt-get update` and
# `apt-get download` see only
#   deb http://deb.debian.org/debian SUITE non-free-firmware
# so the host's sources need not enable the component. The package is
# unpacked with `dpkg -x` (never installed: its postinst hook expects
# /boot/firmware to be a mount point) and DIR/firmware/ gets the two files.
# Prints the directory holding them on stdout. Runs again do nothing once the
# files are there.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="$REPO_ROOT/build/cache/raspi-firmware"
SUITE=bookworm
QUIET=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --cache) CACHE="$2"; shift 2 ;;
        --suite) SUITE="$2"; shift 2 ;;
        --quiet) QUIET=1; shift ;;
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fetch-firmware: unknown option '$1'" >&2; exit 2 ;;
    esac
done
say() { [[ "$QUIET" == 1 ]] || echo "fetch-firmware: $*" >&2; }
die() { echo "fetch-firmware: error: $*" >&2; exit 1; }

OUT="$CACHE/firmware"
if [[ -s "$OUT/start4.elf" && -s "$OUT/fixup4.dat" ]]; then
    echo "$OUT"
    exit 0
fi
command -v apt-get >/dev/null || die "apt-get not found (a Debian host is needed to fetch raspi-firmware)"
command -v dpkg >/dev/null || die "dpkg not found"

APT="$CACHE/apt"
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/etc/preferences.d" "$APT/etc/sources.list.d"
echo "deb http://deb.debian.org/debian $SUITE non-free-firmware" >"$APT/etc/sources.list"
OPTS=(
    -o "Dir::Etc::sourcelist=$APT/etc/sources.list"
    -o "Dir::Etc::sourceparts=$APT/etc/sources.list.d"
    -o "Dir::Etc::preferencesparts=$APT/etc/preferences.d"
    -o "Dir::State::Lists=$APT/lists"
    -o "Dir::Cache=$APT"
    -o "Dir::Cache::archives=$APT/archives"
    -o "APT::Architecture=arm64"
    -o "APT::Architectures=arm64"
    -o "Debug::NoLocking=1"
)
say "apt-get update (own source list: $SUITE non-free-firmware)"
if ! apt-get "${OPTS[@]}" -q update >"$APT/update.log" 2>&1; then
    cat "$APT/update.log" >&2
    die "apt-get update failed (network? the source is http://deb.debian.org/debian $SUITE non-free-firmware)"
fi
say "apt-get download raspi-firmware"
rm -f "$APT"/raspi-firmware_*.deb
if ! (cd "$APT" && apt-get "${OPTS[@]}" -q download raspi-firmware >"$APT/download.log" 2>&1); then
    cat "$APT/download.log" >&2
    die "apt-get download raspi-firmware failed"
fi
DEB="$(ls "$APT"/raspi-firmware_*.deb 2>/dev/null | head -1)"
[[ -n "$DEB" ]] || die "apt-get download left no raspi-firmware_*.deb in $APT"
rm -rf "$CACHE/unpacked"
dpkg -x "$DEB" "$CACHE/unpacked" || die "dpkg -x $DEB failed"
mkdir -p "$OUT"
for f in start4.elf fixup4.dat; do
    src="$(find "$CACHE/unpacked" -name "$f" -type f | head -1)"
    [[ -n "$src" ]] || die "$(basename "$DEB") has no $f"
    cp -f "$src" "$OUT/$f"
done
say "$(basename "$DEB"): start4.elf $(stat -c %s "$OUT/start4.elf") bytes, fixup4.dat $(stat -c %s "$OUT/fixup4.dat") bytes"
echo "$OUT"
