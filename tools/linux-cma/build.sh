#!/usr/bin/env bash
# Build and boot Linux 6.12 with a CMA area, for `cargo xtask linux-cma`
# (tools/xtask/src/linuxcma.rs), which runs the steps in this order:
#
#   build.sh deps        install the missing build dependencies (apt-get, as
#                        root), naming each: gcc-aarch64-linux-gnu,
#                        libc6-dev-arm64-cross (static libc for our programs),
#                        bc, bison, flex (kconfig, the kernel's build), cpio,
#                        xz-utils (the source tarball, the initramfs). A
#                        tinyconfig plus config.fragment needs no libssl-dev
#                        (no module signing) nor libelf-dev (no BTF, objtool).
#   build.sh kernel      build/linux-cma/Image: Linux from Debian's
#                        linux-source-6.12 package (apt-get download, dpkg -x:
#                        nothing installed), patched with cma-debug-align.patch,
#                        configured with `make tinyconfig` + config.fragment.
#                        Rebuilt only when the package, the fragment or the
#                        patch changes (their hash is kept in Image.key).
#   build.sh initramfs   build/linux-cma/initramfs.cpio: busybox from Debian's
#                        busybox-static:arm64, our init script and the static
#                        arm64 programs cmatime.c and cmaload.c.
#   build.sh data        build/demo-data.img, the demo's data disk, made as
#                        qemu-run.sh makes it (same tools/mkdata invocation).
#   build.sh boot ARGS   boots it: the QEMU virt machine of
#                        tools/dtb/qemu-machines.sh with -smp $LCMA_SMP (1 to
#                        8; 1 if unset) instead of its -smp 2, the data disk
#                        read-only on virtio-blk, `cma=64M`; ARGS are added to
#                        the kernel command line (the init script reads
#                        lcma.*=). The console goes to stdout.
#
# Compiling runs under `nice`: the machine's cores are shared.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$ROOT/build/linux-cma"
PROG="linux-cma"
CROSS=aarch64-linux-gnu-
JOBS="$(nproc)"

die() { echo "$PROG: error: $*" >&2; exit 2; }
say() { echo "$PROG: $*" >&2; }

# Downloads (without installing) the newest candidate of a Debian package
# into $OUT/debs unless a .deb of it is already there; prints its path.
fetch_deb() {
    local pkg="$1" name="${1%%:*}" deb
    mkdir -p "$OUT/debs"
    deb="$(ls -t "$OUT/debs/${name}"_*.deb 2>/dev/null | head -n 1 || true)"
    if [[ -z "$deb" ]]; then
        say "downloading $pkg (apt-get download)"
        (cd "$OUT/debs" && apt-get download -q "$pkg" >/dev/null 2>"$OUT/debs/apt.err") ||
            die "apt-get download $pkg failed: $(tail -n 3 "$OUT/debs/apt.err")"
        deb="$(ls -t "$OUT/debs/${name}"_*.deb | head -n 1)"
    fi
    echo "$deb"
}

cmd_deps() {
    local want=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross bc bison flex cpio xz-utils) missing=() p
    for p in "${want[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "build dependencies present: ${want[*]}"
        return
    fi
    [[ "$(id -u)" == 0 ]] || die "missing ${missing[*]}: run as root, or apt-get install them"
    mkdir -p "$OUT"
    say "installing build dependencies: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        >"$OUT/apt-install.log" 2>&1 || die "apt-get install failed; see $OUT/apt-install.log"
}

cmd_kernel() {
    local deb key src obj missing
    mkdir -p "$OUT"
    deb="$(fetch_deb linux-source-6.12)"
    key="$(basename "$deb") $(sha256sum "$HERE/config.fragment" "$HERE/cma-debug-align.patch" | cut -c1-64 | tr '\n' ' ')"
    if [[ -s "$OUT/Image" && "$(cat "$OUT/Image.key" 2>/dev/null)" == "$key" ]]; then
        say "kernel up to date: ${OUT#"$ROOT"/}/Image ($(basename "$deb"))"
        return
    fi
    src="$OUT/src/linux-source-6.12"
    obj="$OUT/obj"
    # A fresh tree for every rebuild, so that the patch applies exactly once.
    rm -rf "$OUT/src" "$OUT/pkg" "$obj" "$OUT/Image" "$OUT/Image.key"
    say "unpacking $(basename "$deb")"
    dpkg -x "$deb" "$OUT/pkg"
    mkdir -p "$OUT/src"
    nice tar -C "$OUT/src" -xJf "$OUT/pkg/usr/src/linux-source-6.12.tar.xz"
    rm -rf "$OUT/pkg"
    [[ -f "$src/Makefile" ]] || die "no linux-source-6.12/Makefile in $(basename "$deb")"
    patch -s -d "$src" -p1 <"$HERE/cma-debug-align.patch" || die "cma-debug-align.patch does not apply"
    local mk=(nice make -s -C "$src" O="$obj" ARCH=arm64 CROSS_COMPILE="$CROSS")
    "${mk[@]}" tinyconfig >/dev/null
    KCONFIG_CONFIG="$obj/.config" "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" \
        "$obj/.config" "$HERE/config.fragment" >/dev/null
    "${mk[@]}" olddefconfig >/dev/null
    # Every option the fragment asks for must have survived olddefconfig.
    missing="$(grep -E '^CONFIG_[A-Z0-9_]+=y' "$HERE/config.fragment" | while read -r line; do
        grep -qx "$line" "$obj/.config" || echo "${line%=y}"
    done)"
    [[ -z "$missing" ]] || die "options dropped by olddefconfig (unmet dependencies): $(echo $missing)"
    say "building Linux $(make -s -C "$src" kernelversion) (tinyconfig + config.fragment, nice make -j$JOBS Image)"
    local t0=$SECONDS
    "${mk[@]}" -j"$JOBS" Image >"$OUT/make.log" 2>&1 || { tail -n 30 "$OUT/make.log" >&2; die "kernel build failed; see $OUT/make.log"; }
    cp "$obj/arch/arm64/boot/Image" "$OUT/Image"
    echo "$key" >"$OUT/Image.key"
    say "kernel built in $((SECONDS - t0)) s: ${OUT#"$ROOT"/}/Image"
}

cmd_initramfs() {
    local deb root
    deb="$(fetch_deb busybox-static:arm64)"
    root="$OUT/initramfs"
    rm -rf "$root" "$OUT/busybox"
    dpkg -x "$deb" "$OUT/busybox"
    mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,mnt}
    cp "$OUT/busybox/bin/busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh" # for the #! of /init; /init installs the rest
    for c in cmatime cmaload; do
        nice "${CROSS}gcc" -O2 -static -Wall -Wextra -Werror -o "$root/bin/$c" "$HERE/$c.c" ||
            die "could not compile $c.c"
    done
    install -m 0755 "$HERE/init" "$root/init"
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$OUT/initramfs.cpio"
    say "initramfs: ${OUT#"$ROOT"/}/initramfs.cpio ($(basename "$deb"), cmatime, cmaload)"
}

cmd_data() {
    local disk="$ROOT/build/demo-data.img"
    # The same image and invocation as qemu-run.sh's demo data set.
    if [[ ! -s "$disk" || "$disk" -ot "$ROOT/tools/mkdata/mkdata.py" ]]; then
        say "making the demo data set ${disk#"$ROOT"/} (tools/mkdata, 128 MiB, once)"
        python3 "$ROOT/tools/mkdata/mkdata.py" --out "$disk" --image-mb 192 --files 800 \
            --large 8 --total-mb 128 --seed 42 || die "could not make the demo data image"
    fi
}

cmd_boot() {
    local smp="${LCMA_SMP:-1}"
    [[ "$smp" =~ ^[1-8]$ ]] || die "LCMA_SMP=$smp: want a number of guest CPUs from 1 to 8"
    [[ -s "$OUT/Image" && -s "$OUT/initramfs.cpio" ]] || die "run build.sh kernel and initramfs first"
    # shellcheck source=tools/dtb/qemu-machines.sh
    source "$ROOT/tools/dtb/qemu-machines.sh"
    qemu_machine_args virt
    local machine=() a prev="" replaced=0
    for a in "${QEMU_MACHINE[@]}"; do
        # LCMA_SMP CPUs (1 unless asked): with one, the allocations are
        # timed on an otherwise single-CPU guest; with more, /init pins the
        # timing to CPU 0 and the loads to the others.
        if [[ "$prev" == "-smp" ]]; then
            a=$smp
            replaced=1
        fi
        machine+=("$a")
        prev=$a
    done
    [[ $replaced == 1 ]] || die "no -smp in qemu_machine_args virt (tools/dtb/qemu-machines.sh)"
    local cmd=("$QEMU" "${machine[@]}" -nographic -no-reboot
        -kernel "$OUT/Image" -initrd "$OUT/initramfs.cpio"
        -append "console=ttyAMA0 cma=64M loglevel=3 panic=-1 $*"
        -drive "if=none,file=$ROOT/build/demo-data.img,format=raw,readonly=on,id=d0"
        -device virtio-blk-device,drive=d0)
    say "${cmd[*]}"
    exec "${cmd[@]}" </dev/null
}

case "${1:-}" in
    deps) cmd_deps ;;
    kernel) cmd_kernel ;;
    initramfs) cmd_initramfs ;;
    data) cmd_data ;;
    boot) shift; cmd_boot "$@" ;;
    *) die "usage: build.sh deps|kernel|initramfs|data|boot [kernel args]" ;;
esac
