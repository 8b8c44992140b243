#!/usr/bin/env bash
# Install what the host needs to build and boot the kernel, on Debian 12
# (bookworm). Idempotent: steps already satisfied are skipped, so a second
# run takes about a second. See --help.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG="setup-host"
QEMU_MIN_MAJOR=9
BACKPORTS_LIST=/etc/apt/sources.list.d/bookworm-backports.list

usage() {
    cat <<'EOF'
Usage: tools/setup-host.sh [--check] [--verbose]

Install the host side of the project on Debian 12 (run as root; CI runs it
with CI=true and no stdin). One line per step; apt's output is shown only if
a step fails (or with --verbose).

Steps:
  1. apt source bookworm-backports (added if missing; Debian 12 only)
  2. arm64 as a dpkg foreign architecture (so that `apt-get download` can
     fetch Debian's arm64 kernel package, source of the Pi 4 device tree)
  3. apt-get update (only when something is to be installed or was added)
  4. qemu-system-arm from bookworm-backports: qemu-system-aarch64 >= 9 with
     -machine raspi4b (bookworm's own QEMU 7.2 has no raspi4b)
  5. device-tree-compiler (dtc, fdtget), mtools, dosfstools, python3,
     python3-matplotlib (plots of the demo's results), gcc and libc6-dev
     (Rust links host programs with cc), git
  then a check that QEMU starts the virt machine with the project's options
  6. rustup target aarch64-unknown-none, rustup component llvm-tools
     (for the toolchain the repository's rust-toolchain.toml selects)

Options:
  --check     report what is missing, change nothing; exit 1 if anything is
  --verbose   show the output of apt-get and rustup
  -h, --help  this text
EOF
}

CHECK=0
VERBOSE=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --check) CHECK=1; shift ;;
        --verbose | -v) VERBOSE=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "$PROG: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

export DEBIAN_FRONTEND=noninteractive
LOG="$(mktemp "${TMPDIR:-/tmp}/setup-host.XXXXXX.log")"
trap 'rm -f "$LOG" "$LOG.rustup" "$LOG.list"' EXIT
MISSING=0

step() { printf '%s: %-44s %s\n' "$PROG" "$1" "$2"; }
die() { echo "$PROG: error: $*" >&2; exit 1; }

# run CMD...: run quietly; on failure show the output and stop.
run() {
    if [[ "$VERBOSE" == 1 ]]; then
        "$@" 2>&1 | tee -a "$LOG"
        return "${PIPESTATUS[0]}"
    fi
    if ! "$@" >>"$LOG" 2>&1; then
        echo "$PROG: failed: $*" >&2
        tail -n 40 "$LOG" >&2
        exit 1
    fi
}

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null; then SUDO=(sudo -n); fi
fi
# as_root CMD...: run CMD as root (directly, or with sudo -n).
as_root() {
    if [[ "$(id -u)" != 0 && ${#SUDO[@]} -eq 0 ]]; then
        die "this step needs root: run tools/setup-host.sh as root"
    fi
    run "${SUDO[@]}" "$@"
}

# todo NAME DETAIL: in --check mode record a missing item and return 1.
todo() {
    if [[ "$CHECK" == 1 ]]; then
        step "$1" "MISSING ($2)"
        MISSING=1
        return 1
    fi
    return 0
}

CODENAME=""
if [[ -r /etc/os-release ]]; then
    CODENAME="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
fi
command -v apt-get >/dev/null || die "apt-get not found: this script is for Debian 12"

APT_UPDATED=0
apt_update() {
    if [[ "$APT_UPDATED" == 0 ]]; then
        step "apt-get update" "running"
        as_root apt-get update -q
        APT_UPDATED=1
    fi
}
apt_install() { # [-t SUITE] PKG...
    as_root apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "$@"
}

# --- 1. bookworm-backports ----------------------------------------------------

have_backports() {
    grep -Eqs '^[[:space:]]*deb[[:space:]].*[[:space:]]bookworm-backports([[:space:]]|$)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list ||
        grep -Eqs '^[[:space:]]*Suites:.*[[:space:]]bookworm-backports([[:space:]]|$)' \
            /etc/apt/sources.list.d/*.sources
}

BACKPORTS=0
if [[ "$CODENAME" != bookworm ]]; then
    step "apt source bookworm-backports" "skipped (not Debian 12: '$CODENAME')"
elif have_backports; then
    step "apt source bookworm-backports" "present"
    BACKPORTS=1
elif todo "apt source bookworm-backports" "not in /etc/apt"; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" >"$LOG.list"
    as_root install -m 0644 "$LOG.list" "$BACKPORTS_LIST"
    rm -f "$LOG.list"
    step "apt source bookworm-backports" "added ($BACKPORTS_LIST)"
    BACKPORTS=1
    NEED_UPDATE=1
fi

# --- 2. arm64 foreign architecture ----------------------------------------------

if dpkg --print-foreign-architectures | grep -qx arm64; then
    step "dpkg architecture arm64" "present"
elif todo "dpkg architecture arm64" "dpkg --add-architecture arm64"; then
    as_root dpkg --add-architecture arm64
    step "dpkg architecture arm64" "added"
    NEED_UPDATE=1
fi
# Package lists for arm64 exist once apt-get update ran after the above.
if [[ "$CHECK" == 0 ]] && ! compgen -G '/var/lib/apt/lists/*_binary-arm64_Packages*' >/dev/null; then
    NEED_UPDATE=1
fi

# --- 3./4. QEMU -------------------------------------------------------------------

qemu_ok() {
    local version major
    command -v qemu-system-aarch64 >/dev/null || return 1
    version="$(qemu-system-aarch64 --version | sed -n '1s/^QEMU emulator version \([0-9][0-9.]*\).*/\1/p')"
    major="${version%%.*}"
    [[ -n "$major" && "$major" -ge "$QEMU_MIN_MAJOR" ]] || return 1
    qemu-system-aarch64 -machine help | grep -q '^raspi4b ' || return 1
    QEMU_VERSION="$version"
}

# qemu_starts: QEMU starts the project's virt machine with exactly the options
# qemu-run.sh uses (tools/dtb/qemu-machines.sh) and dumps its device tree. A
# missing firmware file or option ROM (a package that --no-install-recommends
# left out) shows up here, with QEMU's own message, not at the first boot.
qemu_starts() {
    local dtb out
    # shellcheck source=tools/dtb/qemu-machines.sh
    source "$REPO_ROOT/tools/dtb/qemu-machines.sh"
    local QEMU_MACHINE=()
    qemu_machine_args virt
    dtb="$(mktemp "${TMPDIR:-/tmp}/setup-host.XXXXXX.dtb")"
    if ! out="$(qemu-system-aarch64 "${QEMU_MACHINE[@]}" -machine "dumpdtb=$dtb" -display none 2>&1)"; then
        rm -f "$dtb"
        QEMU_START_ERROR="$out"
        return 1
    fi
    rm -f "$dtb"
}

if [[ "${NEED_UPDATE:-0}" == 1 && "$CHECK" == 0 ]]; then
    apt_update
fi

QEMU_VERSION=""
if qemu_ok; then
    step "qemu-system-aarch64 >= $QEMU_MIN_MAJOR with raspi4b" "present ($QEMU_VERSION)"
elif todo "qemu-system-aarch64 >= $QEMU_MIN_MAJOR with raspi4b" "qemu-system-arm from bookworm-backports"; then
    apt_update
    if [[ "$BACKPORTS" == 1 ]]; then
        step "qemu-system-arm (bookworm-backports)" "installing"
        apt_install -t bookworm-backports qemu-system-arm
    else
        step "qemu-system-arm" "installing"
        apt_install qemu-system-arm
    fi
    qemu_ok || die "installed QEMU is $(qemu-system-aarch64 --version | head -n 1); need >= $QEMU_MIN_MAJOR with -machine raspi4b"
    step "qemu-system-aarch64 >= $QEMU_MIN_MAJOR with raspi4b" "installed ($QEMU_VERSION)"
fi
if [[ "$CHECK" == 0 ]] || qemu_ok; then
    QEMU_START_ERROR=""
    if qemu_starts; then
        step "qemu starts the virt machine (-nic none)" "ok"
    else
        die "QEMU cannot start the project's virt machine: ${QEMU_START_ERROR:-no message}"
    fi
fi

# --- 5. other host tools -------------------------------------------------------------

PKGS=()
for pair in dtc:device-tree-compiler fdtget:device-tree-compiler mcopy:mtools \
    mkfs.vfat:dosfstools python3:python3 timeout:coreutils flock:util-linux; do
    cmd="${pair%%:*}"
    pkg="${pair#*:}"
    if ! command -v "$cmd" >/dev/null && ! [[ -x "/sbin/$cmd" || -x "/usr/sbin/$cmd" ]]; then
        [[ " ${PKGS[*]} " == *" $pkg "* ]] || PKGS+=("$pkg")
    fi
done
# A C toolchain: Rust's host target links with `cc` (the xtask harness, build
# scripts, host tests); a minimal Debian has none. libc6-dev is only a
# recommendation of gcc, which --no-install-recommends would leave out.
if ! command -v cc >/dev/null || ! [[ -e /usr/lib/x86_64-linux-gnu/crt1.o || -e /usr/lib/crt1.o ]] &&
    [[ "$(uname -m)" == x86_64 ]]; then
    PKGS+=(gcc libc6-dev)
fi
# git: results record the commit they were made from.
command -v git >/dev/null || PKGS+=(git)
# Plots of the demo's results (tools/bench): Debian's matplotlib, for /usr/bin/python3.
if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    PKGS+=(python3-matplotlib)
fi
if [[ ${#PKGS[@]} -eq 0 ]]; then
    step "dtc, fdtget, mtools, mkfs.vfat, python3, matplotlib, cc, git" "present"
elif todo "packages ${PKGS[*]}" "apt-get install"; then
    apt_update
    step "packages ${PKGS[*]}" "installing"
    apt_install "${PKGS[@]}"
    step "packages ${PKGS[*]}" "installed"
fi

# --- 6. Rust ---------------------------------------------------------------------------

if ! command -v rustup >/dev/null; then
    die "rustup not found: install Rust with rustup first (https://rustup.rs)"
fi
# Run rustup from the repository so that rust-toolchain.toml picks the
# toolchain (and rustup installs that toolchain if it is missing).
cd "$REPO_ROOT"
# (This is where rustup downloads that toolchain, or the targets and
# components it lists, when they are missing: a failure says why.)
TOOLCHAIN="$(rustup show active-toolchain 2>"$LOG.rustup" | awk '{print $1; exit}')" ||
    die "rustup could not install the toolchain rust-toolchain.toml names: $(grep -m1 -i error "$LOG.rustup" || tail -n1 "$LOG.rustup")"
rm -f "$LOG.rustup"
SYSROOT="$(rustc --print sysroot 2>/dev/null || true)"
if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-none; then
    # rustup's record is not the files: a target whose files were deleted
    # still lists as installed, and every build then fails on `core`.
    compgen -G "$SYSROOT/lib/rustlib/aarch64-unknown-none/lib/libcore-*" >/dev/null ||
        die "rustup lists aarch64-unknown-none as installed in $TOOLCHAIN, but $SYSROOT/lib/rustlib/aarch64-unknown-none has no libcore: reinstall the toolchain (rustup toolchain uninstall $TOOLCHAIN && rustup toolchain install $TOOLCHAIN)"
    step "rust target aarch64-unknown-none" "present ($TOOLCHAIN)"
elif todo "rust target aarch64-unknown-none" "rustup target add"; then
    run rustup target add aarch64-unknown-none
    step "rust target aarch64-unknown-none" "added ($TOOLCHAIN)"
fi
if rustup component list --installed 2>/dev/null | grep -q '^llvm-tools'; then
    step "rust component llvm-tools" "present ($TOOLCHAIN)"
elif todo "rust component llvm-tools" "rustup component add"; then
    run rustup component add llvm-tools
    step "rust component llvm-tools" "added ($TOOLCHAIN)"
fi

if [[ "$CHECK" == 1 && "$MISSING" == 1 ]]; then
    echo "$PROG: some items are missing; run tools/setup-host.sh as root to install them" >&2
    exit 1
fi
step "done" ""
