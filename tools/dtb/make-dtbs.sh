#!/usr/bin/env bash
# Generate the device trees the kernel boots with, with the GCMA, CMA and
# static-carveout reserved-memory regions added. See --help and
# tools/README.md. Nothing here is hand-copied: virt's tree is dumped from
# QEMU itself, the Raspberry Pi 4's comes from Debian's arm64 Linux package.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
# shellcheck source=tools/dtb/qemu-machines.sh
source "$SCRIPT_DIR/qemu-machines.sh"

PROG="make-dtbs"
MIB=$((1024 * 1024))
# Regions start on 4 MiB boundaries (a pageblock of 2 MiB fits, and so does
# a 2 MiB block mapping).
ALIGN=$((4 * MIB))

usage() {
    cat <<'EOF'
Usage: tools/dtb/make-dtbs.sh [options]

Build the device trees for QEMU virt and QEMU raspi4b, each with a
/reserved-memory node holding four regions:

  gcma@ADDR      shared-dma-pool, reusable, guarantee, static reg  (GCMA)
  tags@ADDR      the same, a second GCMA donor standing in for MTE tag
                 storage (one tag page per 32 pages of RAM), taken back
                 by explicit pfn ranges
  cma            shared-dma-pool, reusable, dynamic: size, alignment,
                 alloc-ranges                                        (CMA)
  carveout@ADDR  shared-dma-pool, static reg, not reusable  (static carveout)

Options:
  --gcma SIZE       GCMA area size            (default 64M)
  --cma SIZE        CMA area size             (default 64M)
  --carveout SIZE   static carveout size      (default 64M)
  --tags SIZE       tag-storage donor size    (default 2M)
                    SIZE: bytes, or a number with K/M/G (KiB/MiB/GiB also
                    accepted); a multiple of 1 MiB; 0 leaves the region out.
  --board B         virt, rpi4 or all         (default all)
  --out DIR         output directory          (default build/dtb)
  --cache DIR       download cache            (default build/cache)
  --rpi4-source F   use this bcm2711-rpi-4-b.dtb instead of the one from
                    Debian's linux-image-*-arm64 package (no download)
  -q, --quiet       print nothing unless something fails
  -h, --help        this text

Outputs (in DIR): qemu-virt.dtb, rpi4.dtb, and the .dts each was compiled
from (to read). Layout with the defaults:

  virt (1 GiB RAM at 0x4000_0000; kernel at 0x4008_0000, QEMU puts the DTB
  at 0x4800_0000):
    gcma@50000000      0x5000_0000 .. 0x5400_0000
    carveout@54000000  0x5400_0000 .. 0x5800_0000
    tags@58000000      0x5800_0000 .. 0x5820_0000
    cma                64 MiB, 4 MiB aligned, in 0x5840_0000 .. 0x8000_0000
  rpi4 (QEMU maps 2 GiB but the tree it hands over describes only
  0..0x3c00_0000, the first GiB below the VideoCore's 64 MiB; kernel at
  0x8_0000, QEMU puts the DTB at 0x0800_0000; all regions in the low GiB,
  which every Pi 4 DMA master reaches):
    gcma@10000000      0x1000_0000 .. 0x1400_0000
    carveout@14000000  0x1400_0000 .. 0x1800_0000
    tags@18000000      0x1800_0000 .. 0x1820_0000
    cma                64 MiB, 4 MiB aligned, in 0x1840_0000 .. 0x3c00_0000

The first run for rpi4 downloads Debian's arm64 kernel package (~90 MB,
needs root for `dpkg --add-architecture arm64` and `apt-get update` if
arm64 package lists are missing); the .deb and the extracted tree are kept
in the cache and reused.
EOF
}

say() { [[ "$QUIET" == 1 ]] || echo "$PROG: $*" >&2; }
die() { echo "$PROG: error: $*" >&2; exit 1; }

# parse_size TEXT: print the size in bytes.
parse_size() {
    local text="$1" num unit mult
    if [[ "$text" =~ ^(0[xX][0-9a-fA-F]+|[0-9]+)([kKmMgG]?)(i?[bB])?$ ]]; then
        num="${BASH_REMATCH[1]}"
        unit="${BASH_REMATCH[2]}"
    else
        die "bad size '$text' (examples: 64M, 128MiB, 1G, 0x4000000)"
    fi
    case "$unit" in
        "") mult=1 ;;
        k | K) mult=1024 ;;
        m | M) mult=$MIB ;;
        g | G) mult=$((1024 * MIB)) ;;
    esac
    [[ "$num" == 0[xX]* ]] || num="10#$num" # no octal for leading zeros
    echo $((num * mult))
}

hex() { printf '0x%x' "$1"; }
align_up() { echo $((($1 + $2 - 1) / $2 * $2)); }

# cells VALUE N: VALUE as N 32-bit cells (N is 1 or 2).
cells() {
    local v="$1" n="$2"
    if [[ "$n" == 2 ]]; then
        printf '0x%x 0x%x' $((v >> 32)) $((v & 0xffffffff))
    elif [[ "$n" == 1 ]]; then
        ((v <= 0xffffffff)) || die "value $(hex "$v") does not fit in one cell"
        printf '0x%x' "$v"
    else
        die "unsupported cell count $n"
    fi
}

GCMA_SIZE=$((64 * MIB))
CMA_SIZE=$((64 * MIB))
CARVEOUT_SIZE=$((64 * MIB))
TAGS_SIZE=$((2 * MIB))
BOARDS=all
OUT_DIR="$REPO_ROOT/build/dtb"
CACHE_DIR="$REPO_ROOT/build/cache"
RPI4_SOURCE=""
QUIET=0

need_arg() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --gcma) need_arg "$@"; GCMA_SIZE="$(parse_size "$2")"; shift 2 ;;
        --cma) need_arg "$@"; CMA_SIZE="$(parse_size "$2")"; shift 2 ;;
        --carveout) need_arg "$@"; CARVEOUT_SIZE="$(parse_size "$2")"; shift 2 ;;
        --tags) need_arg "$@"; TAGS_SIZE="$(parse_size "$2")"; shift 2 ;;
        --board) need_arg "$@"; BOARDS="$2"; shift 2 ;;
        --out) need_arg "$@"; OUT_DIR="$2"; shift 2 ;;
        --cache) need_arg "$@"; CACHE_DIR="$2"; shift 2 ;;
        --rpi4-source) need_arg "$@"; RPI4_SOURCE="$2"; shift 2 ;;
        -q | --quiet) QUIET=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

case "$BOARDS" in
    all) BOARDS="virt rpi4" ;;
    virt | rpi4) ;;
    *) die "--board must be virt, rpi4 or all" ;;
esac
for s in "$GCMA_SIZE" "$CMA_SIZE" "$CARVEOUT_SIZE" "$TAGS_SIZE"; do
    ((s % MIB == 0)) || die "region sizes must be multiples of 1 MiB (got $s bytes)"
done
command -v dtc >/dev/null || die "dtc not found: run tools/setup-host.sh (package device-tree-compiler)"
command -v fdtget >/dev/null || die "fdtget not found: run tools/setup-host.sh (package device-tree-compiler)"

mkdir -p "$OUT_DIR" "$CACHE_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd)"
WORK="$(mktemp -d "$OUT_DIR/.work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Several qemu-run.sh may start at once: build one at a time.
exec 9>"$OUT_DIR/.lock"
flock 9

# reserved_fragment BOARD SRC_DTB RAM_END BASE: print a dts fragment that
# merges the three regions into SRC_DTB's /reserved-memory (created if
# missing). Regions are laid out from BASE up; CMA may go anywhere between
# the carveout's end and RAM_END.
reserved_fragment() {
    local board="$1" src="$2" ram_end="$3" base="$4"
    local ac sc have_node=0
    if fdtget "$src" /reserved-memory '#address-cells' >/dev/null 2>&1; then
        have_node=1
        ac="$(fdtget -t u "$src" /reserved-memory '#address-cells')"
        sc="$(fdtget -t u "$src" /reserved-memory '#size-cells')"
    else
        ac="$(fdtget -t u "$src" / '#address-cells')"
        sc="$(fdtget -t u "$src" / '#size-cells')"
    fi

    local gcma_at carve_at tags_at cma_from cma_len next="$base"
    gcma_at="$next"
    next="$(align_up $((next + GCMA_SIZE)) "$ALIGN")"
    carve_at="$next"
    next="$(align_up $((next + CARVEOUT_SIZE)) "$ALIGN")"
    tags_at="$next"
    next="$(align_up $((next + TAGS_SIZE)) "$ALIGN")"
    cma_from="$next"
    ((cma_from <= ram_end)) || die "$board: GCMA + carveout do not fit below $(hex "$ram_end")"
    cma_len=$((ram_end - cma_from))
    ((CMA_SIZE <= cma_len)) ||
        die "$board: CMA of $((CMA_SIZE / MIB)) MiB does not fit in $(hex "$cma_from")..$(hex "$ram_end")"

    echo "/* Added by tools/dtb/make-dtbs.sh ($board). */"
    echo "/ {"
    echo "	reserved-memory {"
    if [[ "$have_node" == 0 ]]; then
        echo "		#address-cells = <$ac>;"
        echo "		#size-cells = <$sc>;"
        echo "		ranges;"
    fi
    ((GCMA_SIZE == 0)) || static_node gcma "$gcma_at" "$GCMA_SIZE" \
        "GCMA: lent to cleancache, taken back at once on allocation." reusable\; guarantee\;
    ((CARVEOUT_SIZE == 0)) || static_node carveout "$carve_at" "$CARVEOUT_SIZE" \
        "Static carveout: never lent, always free for its device."
    ((TAGS_SIZE == 0)) || static_node tags "$tags_at" "$TAGS_SIZE" \
        "A second GCMA donor standing in for MTE tag storage: lent to cleancache, taken back by explicit pfn range when the RAM it would tag is tagged." \
        reusable\; guarantee\;
    if ((CMA_SIZE > 0)); then
        cat <<EOF

		/* CMA: placed by the kernel inside alloc-ranges; lent to movable pages. */
		cma {
			compatible = "shared-dma-pool";
			reusable;
			size = <$(cells "$CMA_SIZE" "$sc")>;
			alignment = <$(cells "$ALIGN" "$sc")>;
			alloc-ranges = <$(cells "$cma_from" "$ac") $(cells "$cma_len" "$sc")>;
		};
EOF
        say "  $board: cma               $((CMA_SIZE / MIB)) MiB, $((ALIGN / MIB)) MiB aligned, in $(hex "$cma_from")..$(hex "$ram_end")"
    fi
    echo "	};"
    echo "};"
}

# static_node NAME AT SIZE COMMENT [PROPERTY...]: a /reserved-memory child
# with a static reg (PROPERTY: extra lines such as "reusable;"), and its
# line in the layout report. Uses the caller's ac, sc and board.
static_node() {
    local name="$1" at="$2" size="$3" comment="$4" p
    shift 4
    printf '\n\t\t/* %s */\n\t\t%s@%x {\n\t\t\tcompatible = "shared-dma-pool";\n' \
        "$comment" "$name" "$at"
    for p in "$@"; do printf '\t\t\t%s\n' "$p"; done
    printf '\t\t\treg = <%s %s>;\n\t\t};\n' "$(cells "$at" "$ac")" "$(cells "$size" "$sc")"
    say "  $board: $(printf '%-18s' "$name@$(printf '%x' "$at")") $(hex "$at")..$(hex $((at + size))) ($((size / MIB)) MiB)"
}

# compile NAME DTS: DTS -> OUT_DIR/NAME.dtb (+ .dts copy), atomically.
compile() {
    local name="$1" dts="$2"
    if ! dtc -q -I dts -O dtb -o "$WORK/$name.dtb" "$dts" 2>"$WORK/$name.dtc.log"; then
        cat "$WORK/$name.dtc.log" >&2
        die "dtc failed on $dts"
    fi
    cp "$dts" "$OUT_DIR/$name.dts.tmp" && mv -f "$OUT_DIR/$name.dts.tmp" "$OUT_DIR/$name.dts"
    mv -f "$WORK/$name.dtb" "$OUT_DIR/$name.dtb"
    say "wrote $OUT_DIR/$name.dtb"
}

build_virt() {
    command -v "$QEMU" >/dev/null || die "$QEMU not found: run tools/setup-host.sh"
    local QEMU_MACHINE=()
    qemu_machine_args virt
    say "virt: dumping QEMU's tree: $QEMU ${QEMU_MACHINE[*]} -machine dumpdtb=..."
    if ! "$QEMU" "${QEMU_MACHINE[@]}" -machine "dumpdtb=$WORK/virt-qemu.dtb" \
        -display none -serial none -monitor none >"$WORK/qemu.log" 2>&1; then
        cat "$WORK/qemu.log" >&2
        die "QEMU could not dump the virt device tree (tools/setup-host.sh installs and checks QEMU)"
    fi
    {
        dtc -q -I dtb -O dts "$WORK/virt-qemu.dtb"
        cat <<'EOF'

/*
 * QEMU fills /chosen/bootargs from -append at boot. Its random seeds are
 * dropped so that the output is reproducible.
 */
/ {
	chosen {
		/delete-property/ rng-seed;
		/delete-property/ kaslr-seed;
	};
};

EOF
        reserved_fragment virt "$WORK/virt-qemu.dtb" 0x80000000 0x50000000
    } >"$WORK/qemu-virt.dts"
    compile qemu-virt "$WORK/qemu-virt.dts"
}

# Print the path of Debian's arm64 kernel .deb in the cache, downloading the
# newest linux-image-6.12.*-arm64 package if the cache has none.
rpi4_deb() {
    local deb
    deb="$(find "$CACHE_DIR" -maxdepth 1 -name 'linux-image-*-arm64_*_arm64.deb' | sort -V | tail -n 1)"
    if [[ -n "$deb" ]]; then
        echo "$deb"
        return
    fi
    command -v apt-get >/dev/null || die "no cached kernel .deb in $CACHE_DIR and no apt-get; pass --rpi4-source FILE"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        [[ "$(id -u)" == 0 ]] || die "arm64 packages are not enabled: run tools/setup-host.sh as root (or: dpkg --add-architecture arm64 && apt-get update)"
        say "rpi4: dpkg --add-architecture arm64"
        dpkg --add-architecture arm64
        say "rpi4: apt-get update (arm64 package lists)"
        apt-get update -qq >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; die "apt-get update failed"; }
    fi
    local pkg_re='^linux-image-6\.12\.[0-9]+\+deb[0-9]+-arm64$' pkg
    pkg="$(apt-cache pkgnames linux-image-6.12. | grep -E "$pkg_re" | sort -V | tail -n 1 || true)"
    if [[ -z "$pkg" && "$(id -u)" == 0 ]]; then
        say "rpi4: no linux-image-6.12.*-arm64 in the package lists; apt-get update"
        apt-get update -qq >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; die "apt-get update failed"; }
        pkg="$(apt-cache pkgnames linux-image-6.12. | grep -E "$pkg_re" | sort -V | tail -n 1 || true)"
    fi
    [[ -n "$pkg" ]] || die "no linux-image-6.12.*-arm64 package found (is bookworm-backports enabled? run tools/setup-host.sh)"
    echo "$PROG: rpi4: downloading $pkg:arm64 (~90 MB, once; cached in $CACHE_DIR)" >&2
    local dl="$WORK/download" rc
    mkdir -p "$dl"
    # Show apt's Get:/Fetched lines as progress; drop its notice about
    # downloading as root outside its sandbox.
    {
        rc=0
        (cd "$dl" && apt-get download "$pkg:arm64") 2>&1 || rc=$?
        echo "$rc" >"$WORK/download.rc"
    } | sed -u -e '/Download is performed unsandboxed/d' -e '/^$/d' \
        -e "s/^/$PROG: rpi4:   /" >&2
    [[ "$(cat "$WORK/download.rc")" == 0 ]] || die "apt-get download $pkg:arm64 failed"
    deb="$(find "$dl" -maxdepth 1 -name '*.deb' | head -n 1)"
    [[ -n "$deb" ]] || die "apt-get download $pkg:arm64 produced no .deb"
    mv -f "$deb" "$CACHE_DIR/"
    echo "$CACHE_DIR/$(basename "$deb")"
}

# Print the path of the Pi 4 B tree taken from the cached Debian package.
rpi4_source_dtb() {
    local deb base dtb
    deb="$(rpi4_deb)"
    base="$(basename "$deb" .deb)"
    dtb="$CACHE_DIR/bcm2711-rpi-4-b.$base.dtb"
    if [[ ! -s "$dtb" || "$dtb" -ot "$deb" ]]; then
        say "rpi4: extracting broadcom/bcm2711-rpi-4-b.dtb from $(basename "$deb")"
        mkdir -p "$WORK/x"
        dpkg-deb --fsys-tarfile "$deb" |
            tar -x -C "$WORK/x" --wildcards '*/broadcom/bcm2711-rpi-4-b.dtb' ||
            die "could not extract bcm2711-rpi-4-b.dtb from $deb"
        local found
        found="$(find "$WORK/x" -name bcm2711-rpi-4-b.dtb | head -n 1)"
        [[ -n "$found" ]] || die "$deb holds no bcm2711-rpi-4-b.dtb"
        cp "$found" "$dtb.tmp" && mv -f "$dtb.tmp" "$dtb"
    fi
    echo "$dtb"
}

# nodes_with_compatible COMPAT...: read a dts (as dtc -O dts writes it) on
# stdin; print the path of every node whose compatible list holds one of
# COMPAT.
nodes_with_compatible() {
    awk -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        /^\t*[^ \t]+ \{$/ { d++; path[d] = (d == 1 ? "" : path[d - 1] "/" $1); next }
        /^\t*\};$/ { d--; next }
        /^\t*compatible = / {
            for (i = 1; i <= n; i++)
                if (index($0, "\"" w[i] "\"") || index($0, "\\0" w[i] "\"") ||
                    index($0, "\"" w[i] "\\0"))
                    print path[d]
        }'
}

build_rpi4() {
    local src
    if [[ -n "$RPI4_SOURCE" ]]; then
        [[ -r "$RPI4_SOURCE" ]] || die "cannot read $RPI4_SOURCE"
        src="$RPI4_SOURCE"
    else
        src="$(rpi4_source_dtb)"
    fi
    say "rpi4: from $src"
    fdtget "$src" / compatible | grep -q 'raspberrypi,4-model-b' ||
        die "$src is not a Raspberry Pi 4 B tree"
    # QEMU raspi4b removes the nodes of devices it does not model from the
    # tree it is given (and warns about each on every boot): remove them
    # here, so the file is the tree the kernel gets and QEMU stays quiet.
    local unmodelled
    unmodelled="$(dtc -q -I dtb -O dts "$src" | nodes_with_compatible \
        brcm,bcm2711-pcie brcm,bcm2711-rng200 brcm,bcm2711-thermal brcm,bcm2711-genet-v5)"
    {
        dtc -q -I dtb -O dts "$src"
        echo
        echo "/* Devices QEMU raspi4b does not model (it would remove them itself). */"
        local path
        for path in $unmodelled; do
            echo "/delete-node/ &{$path};"
        done
        cat <<'EOF'

/*
 * Memory: QEMU raspi4b (10.0) deletes every memory node of the tree it is
 * given and adds memory@0 = 0..0x3c000000 (the first GiB less the
 * VideoCore's 64 MiB). It maps the second GiB (0x40000000..0x80000000) but
 * does not describe it, and a memory@40000000 node put here would be
 * deleted. The node below says in the file what the kernel gets at boot.
 *
 * The tree's own linux,cma region (64 MiB somewhere in the low GiB) is
 * removed: the gcma, cma and carveout regions below replace it, and the
 * comparison needs exactly one CMA area of the chosen size.
 *
 * stdout-path names UART0 (the PL011 at 0xfe201000) that QEMU connects to
 * its first serial port, instead of the mini UART.
 */
/ {
	memory@0 {
		device_type = "memory";
		reg = <0x0 0x0 0x3c000000>;
	};

	chosen {
		stdout-path = "serial0:115200n8";
	};

	reserved-memory {
		/delete-node/ linux,cma;
	};

	__symbols__ {
		/delete-property/ cma;
	};
};

EOF
        reserved_fragment rpi4 "$src" 0x3c000000 0x10000000
    } >"$WORK/rpi4.dts"
    compile rpi4 "$WORK/rpi4.dts"
}

for board in $BOARDS; do
    "build_$board"
done
