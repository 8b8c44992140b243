#!/usr/bin/env bash
# QEMU option values are comma-separated lists, not array separators:
# shellcheck disable=SC2054
# Boot a kernel ELF under QEMU: the cargo runner for aarch64-unknown-none
# (.cargo/config.toml). See --help.
set -euo pipefail

# With -nographic QEMU puts the serial port on stdin/stdout and refuses to
# start when stdin is closed (as it may be under CI): give it /dev/null.
if [[ -d /proc/$$/fd && ! -e /proc/$$/fd/0 ]]; then
    exec </dev/null
fi

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/dtb/qemu-machines.sh
source "$REPO_ROOT/tools/dtb/qemu-machines.sh"
PROG="qemu-run"

usage() {
    cat <<'EOF'
Usage: ./qemu-run.sh [options] KERNEL_ELF [--] [kernel args...]

Boot KERNEL_ELF under QEMU with the project's device tree. This is the cargo
runner: `cargo run -- mode=selftest` calls ./qemu-run.sh ELF mode=selftest.

The board comes from the ELF's file name: qemu-virt* or qemu_virt* -> virt,
rpi4* -> rpi4 (QEMU raspi4b); --board overrides it.

Options (each also settable from the environment, for use through cargo):
  --board virt|rpi4   board                                   QEMU_RUN_BOARD
  --disk FILE         virt: attach FILE (raw) as a virtio-blk
                      device on virtio-mmio;                  QEMU_RUN_DISK
                      rpi4: boot from FILE, an SD-card image
                      (cargo xtask sd-image): kernel8.img, the
                      DTB and cmdline.txt come out of its boot
                      partition, the whole image is the card on
                      EMMC2 (default build/rpi4-sd.img, made
                      from KERNEL_ELF when missing or older)
  --timeout SECS      kill QEMU after SECS seconds, exit 124  QEMU_RUN_TIMEOUT
  --dtb FILE          boot with FILE instead of
                      build/dtb/{qemu-virt,rpi4}.dtb          QEMU_RUN_DTB
  --qemu-arg ARG      pass ARG to QEMU (repeatable)           QEMU_RUN_EXTRA
                      (environment: space-separated list)
  --gdb               wait for gdb on tcp::1234 (-s -S)       QEMU_RUN_GDB=1
  --dry-run           print the QEMU command, do not run it   QEMU_RUN_DRY=1
  (a demo run keeps its log, bench.json, plots and results page in
   build/results/BOARD/SCALE/ through tools/bench/collect.py unless
   QEMU_RUN_NO_RESULTS=1 (the test harness sets it); the committed
   results/ change only through `cargo xtask publish`)
  -h, --help          this text

What it does:
  - converts the ELF to a raw image (KERNEL_ELF.img) with llvm-objcopy from
    rustup's llvm-tools; the image must start with an arm64 Image header
    ("ARM\x64" at 0x38) so that QEMU passes the DTB address in x0;
  - builds the device trees with tools/dtb/make-dtbs.sh when missing or
    older than the scripts that make them;
  - runs QEMU with -nographic (the PL011 UART on stdio) and semihosting
    (the kernel exits with a status through SYS_EXIT), prints the command on
    stderr, and exits with QEMU's status (124 on --timeout).

Kernel command line (-append, read by the kernel from /chosen/bootargs):
  board=qemu-virt|rpi4 semihosting [kernel args...]
(rpi4: the image's cmdline.txt, then semihosting and the kernel args)
The first two are always there; the kernel understands
  mode=demo|selftest|soak  what to run (the kernel's default applies if absent)
  minutes=N            soak length in minutes (1..1440)
  semihosting          semihosting is on: exit QEMU with a status code
  reboot               rpi4 without semihosting: exit resets into a new boot
  loglevel=LEVEL       log level (error, warn, info, debug, trace)
  board=qemu-virt|rpi4 which board this is
qemu-run.sh passes all of them through unchanged.

Leaving QEMU: the kernel's semihosting exit (status passed through) or, on
virt, PSCI SYSTEM_OFF (status 0); by hand: Ctrl-A then X.
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 2; }

BOARD="${QEMU_RUN_BOARD:-}"
DISK="${QEMU_RUN_DISK:-}"
TIMEOUT="${QEMU_RUN_TIMEOUT:-}"
DTB="${QEMU_RUN_DTB:-}"
GDB="${QEMU_RUN_GDB:-0}"
DRY="${QEMU_RUN_DRY:-0}"
EXTRA=()
if [[ -n "${QEMU_RUN_EXTRA:-}" ]]; then
    read -r -a EXTRA <<<"$QEMU_RUN_EXTRA"
fi

need_arg() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --board) need_arg "$@"; BOARD="$2"; shift 2 ;;
        --disk) need_arg "$@"; DISK="$2"; shift 2 ;;
        --timeout) need_arg "$@"; TIMEOUT="$2"; shift 2 ;;
        --dtb) need_arg "$@"; DTB="$2"; shift 2 ;;
        --qemu-arg) need_arg "$@"; EXTRA+=("$2"); shift 2 ;;
        --gdb) GDB=1; shift ;;
        --dry-run) DRY=1; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) break ;;
    esac
done
[[ $# -ge 1 ]] || { usage >&2; exit 2; }
ELF="$1"
shift
[[ "${1:-}" == "--" ]] && shift
USER_ARGS=("$@")

[[ -f "$ELF" ]] || die "no such kernel: $ELF"

if [[ -z "$BOARD" ]]; then
    case "$(basename "$ELF")" in
        qemu-virt* | qemu_virt* | virt*) BOARD=virt ;;
        rpi4*) BOARD=rpi4 ;;
        *) die "cannot tell the board from the file name '$(basename "$ELF")'; pass --board virt|rpi4" ;;
    esac
fi
case "$BOARD" in
    virt) DTB_NAME=qemu-virt ;;
    rpi4) DTB_NAME=rpi4 ;;
    *) die "unknown board '$BOARD' (want virt or rpi4)" ;;
esac
if [[ -n "$TIMEOUT" && ! "$TIMEOUT" =~ ^[1-9][0-9]*$ ]]; then
    die "--timeout wants a whole number of seconds, not '$TIMEOUT'"
fi
if ! command -v "$QEMU" >/dev/null || ! command -v dtc >/dev/null; then
    # First run on a fresh machine: install the host side (as root).
    if [[ "$(id -u)" == 0 ]]; then
        echo "$PROG: $QEMU or dtc missing: running tools/setup-host.sh" >&2
        bash "$REPO_ROOT/tools/setup-host.sh" || die "tools/setup-host.sh failed"
    fi
    command -v "$QEMU" >/dev/null || die "$QEMU not found: run tools/setup-host.sh (as root)"
    command -v dtc >/dev/null || die "dtc not found: run tools/setup-host.sh (as root)"
fi
if ! command -v python3 >/dev/null; then
    die "python3 not found (it makes the demo's data set and results): run tools/setup-host.sh (as root)"
fi

# --- kernel image -----------------------------------------------------------

find_objcopy() {
    local sysroot host tool
    if sysroot="$(cd "$REPO_ROOT" && rustc --print sysroot 2>/dev/null)" &&
        host="$(cd "$REPO_ROOT" && rustc -vV 2>/dev/null | sed -n 's/^host: //p')"; then
        tool="$sysroot/lib/rustlib/$host/bin/llvm-objcopy"
        if [[ -x "$tool" ]]; then
            echo "$tool"
            return
        fi
    fi
    for tool in rust-objcopy llvm-objcopy; do
        if command -v "$tool" >/dev/null; then
            command -v "$tool"
            return
        fi
    done
    die "llvm-objcopy not found: run tools/setup-host.sh (it runs rustup component add llvm-tools)"
}

if [[ "$(head -c 4 "$ELF" | od -An -tx1 | tr -d ' \n')" == 7f454c46 ]]; then
    IMAGE="$ELF.img"
    if [[ ! -s "$IMAGE" || "$IMAGE" -ot "$ELF" ]]; then
        OBJCOPY="$(find_objcopy)"
        "$OBJCOPY" -O binary "$ELF" "$IMAGE.tmp.$$" || die "llvm-objcopy failed on $ELF"
        mv -f "$IMAGE.tmp.$$" "$IMAGE"
    fi
else
    IMAGE="$ELF" # already a raw image
fi
if [[ "$(dd if="$IMAGE" bs=1 skip=56 count=4 2>/dev/null)" != "ARMd" ]]; then
    printf '%s: warning: %s has no arm64 Image header ("ARM\\x64" at 0x38): %s\n' \
        "$PROG" "$IMAGE" "QEMU will not load it as an Image and x0 will not hold the DTB address" >&2
fi

# --- rpi4: boot from the SD-card image ---------------------------------------

# What the test boots is what a user flashes: kernel8.img, the device tree
# and cmdline.txt are read out of the image's boot partition (mtools), and
# the whole image becomes the SD card on EMMC2, the first generic SDHCI of
# raspi4b (the kernel checks it finds the card at the emmc2 node).
SD_CMDLINE=""
if [[ "$BOARD" == rpi4 ]]; then
    if [[ -z "$DISK" ]]; then
        DISK="$REPO_ROOT/build/rpi4-sd.img"
        if [[ ! -s "$DISK" || "$DISK" -ot "$ELF" || "$DISK" -ot "$REPO_ROOT/tools/dtb/make-dtbs.sh" ]]; then
            echo "$PROG: making the SD-card image $DISK from $ELF (cargo xtask sd-image)" >&2
            (cd "$REPO_ROOT" && cargo xtask sd-image --kernel "$ELF" --out "$DISK") >&2 ||
                die "cargo xtask sd-image failed; see above"
        fi
    fi
    [[ -f "$DISK" ]] || die "no such SD-card image: $DISK (make one with cargo xtask sd-image)"
    size="$(stat -c %s "$DISK")"
    if [[ "$size" -eq 0 || $((size & (size - 1))) -ne 0 ]]; then
        die "$DISK is $size bytes: QEMU's SD card needs a power-of-two size (cargo xtask sd-image --size MIB)"
    fi
    command -v mcopy >/dev/null || die "mcopy not found: run tools/setup-host.sh (as root; it installs mtools)"
    if [[ "$(od -An -tx1 -j 510 -N 2 "$DISK" | tr -d ' \n')" != 55aa ]]; then
        die "$DISK has no MBR partition table (make it with cargo xtask sd-image)"
    fi
    p1="$(od -An -tu4 -j 454 -N 4 "$DISK" | tr -d ' \n')"
    [[ "$p1" =~ ^[1-9][0-9]*$ ]] || die "$DISK: partition 1 has no start sector"
    SD_BOOT="$(mktemp -d "${TMPDIR:-/tmp}/qemu-run-sd.XXXXXX")"
    [[ "$DRY" == 1 ]] || trap 'rm -rf "$SD_BOOT"' EXIT
    for f in kernel8.img bcm2711-rpi-4-b.dtb cmdline.txt; do
        MTOOLS_SKIP_CHECK=1 mcopy -n -i "$DISK@@$((p1 * 512))" "::/$f" "$SD_BOOT/$f" 2>/dev/null ||
            die "$DISK: no $f on the boot partition (make the image with cargo xtask sd-image)"
    done
    if ! cmp -s "$SD_BOOT/kernel8.img" "$IMAGE"; then
        echo "$PROG: warning: the image's kernel8.img is not $IMAGE; booting the image's (cargo xtask sd-image --kernel $ELF rebuilds it)" >&2
    fi
    IMAGE="$SD_BOOT/kernel8.img"
    [[ -z "$DTB" ]] && DTB="$SD_BOOT/bcm2711-rpi-4-b.dtb"
    SD_CMDLINE="$(tr '\n' ' ' <"$SD_BOOT/cmdline.txt" | sed 's/  */ /g; s/ $//')"
fi

# --- device tree ------------------------------------------------------------

if [[ -z "$DTB" ]]; then
    DTB="$REPO_ROOT/build/dtb/$DTB_NAME.dtb"
    stale=0
    if [[ ! -s "$DTB" ]]; then
        stale=1
    else
        for f in "$REPO_ROOT"/tools/dtb/*.sh; do
            [[ "$DTB" -ot "$f" ]] && stale=1
        done
    fi
    if [[ "$stale" == 1 ]]; then
        echo "$PROG: building $DTB (tools/dtb/make-dtbs.sh --board $BOARD)" >&2
        "$REPO_ROOT/tools/dtb/make-dtbs.sh" --board "$BOARD" --quiet ||
            die "could not build the device tree; see above"
    fi
fi
[[ -r "$DTB" ]] || die "cannot read device tree $DTB"

# --- QEMU command -----------------------------------------------------------

case "$BOARD" in virt) BOARD_NAME=qemu-virt ;; *) BOARD_NAME=$BOARD ;; esac
KERNEL_ARGS="board=$BOARD_NAME semihosting"
if [[ -n "$SD_CMDLINE" ]]; then
    KERNEL_ARGS="$SD_CMDLINE semihosting"
fi
if [[ ${#USER_ARGS[@]} -gt 0 ]]; then
    KERNEL_ARGS+=" ${USER_ARGS[*]}"
fi

# How many cores the kernel will start: the last valid smp= (bootargs takes
# the last one; an invalid one is ignored there too), empty for all of them.
# rpi4's TCG threading depends on it (tools/dtb/qemu-machines.sh).
CORES=""
for a in $KERNEL_ARGS; do
    [[ "$a" =~ ^smp=0*([1-8])$ ]] && CORES="${BASH_REMATCH[1]}"
done
QEMU_MACHINE=()
qemu_machine_args "$BOARD" "$CORES"
CMD=("$QEMU" "${QEMU_MACHINE[@]}" -nographic
    -kernel "$IMAGE" -dtb "$DTB" -append "$KERNEL_ARGS"
    -semihosting-config enable=on,target=native)

# The demo (no mode= argument, or mode=demo) and the soak (mode=soak) on
# virt read the data set from build/demo-data.img unless --disk names
# another image. Only the demo writes results/.
DEMO=1
DATA=1
for a in "${USER_ARGS[@]}"; do
    [[ "$a" == mode=* && "$a" != mode=demo ]] && DEMO=0
    [[ "$a" == mode=* && "$a" != mode=demo && "$a" != mode=soak ]] && DATA=0
done
if [[ "$DATA" == 1 && "$BOARD" == virt && -z "$DISK" ]]; then
    DISK="$REPO_ROOT/build/demo-data.img"
    if [[ ! -s "$DISK" || "$DISK" -ot "$REPO_ROOT/tools/mkdata/mkdata.py" ]]; then
        echo "$PROG: making the demo data set $DISK (tools/mkdata, 128 MiB, once)" >&2
        python3 "$REPO_ROOT/tools/mkdata/mkdata.py" --out "$DISK" --image-mb 192 --files 800 \
            --large 8 --total-mb 128 --seed 42 || die "could not make the demo data image"
    fi
fi
BENCH_PYTHON=python3
if ! python3 -c 'import matplotlib' 2>/dev/null && [[ -x /usr/bin/python3 ]]; then
    BENCH_PYTHON=/usr/bin/python3
fi

if [[ -n "$DISK" ]]; then
    [[ -f "$DISK" ]] || die "no such disk image: $DISK"
    case "$BOARD" in
        virt) CMD+=(-drive "if=none,file=$DISK,format=raw,id=d0" -device virtio-blk-device,drive=d0) ;;
        rpi4) CMD+=(-drive "if=none,id=card0,file=$DISK,format=raw" -device sd-card,drive=card0,bus=/generic-sdhci/sd-bus) ;;
    esac
fi
[[ "$GDB" == 1 ]] && CMD+=(-s -S)
CMD+=("${EXTRA[@]}")

# Show the command so that it can be pasted into a shell.
shown=""
for arg in "${CMD[@]}"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./,=:+@%-]+$ ]]; then
        shown+=" $arg"
    else
        shown+=" ${arg@Q}"
    fi
done
echo "$PROG:$shown" >&2
[[ "$DRY" == 1 ]] && exit 0

run_qemu() {
    if [[ -z "$TIMEOUT" ]]; then
        "${CMD[@]}"
        return
    fi
    # --foreground: QEMU keeps the terminal (with -nographic it reads stdin,
    # and in a background process group it would be stopped). -k: SIGKILL if
    # QEMU does not end 5 s after SIGTERM.
    local start=$SECONDS rc=0
    timeout --foreground -k 5 "$TIMEOUT" "${CMD[@]}" || rc=$?
    if [[ ($rc == 124 || $rc == 137) && $((SECONDS - start)) -ge $TIMEOUT ]]; then
        [[ -t 0 ]] && stty sane 2>/dev/null
        echo >&2
        echo "$PROG: TIMEOUT: QEMU ($BOARD) killed after $TIMEOUT s; the kernel did not exit (hung?)" >&2
        return 124
    fi
    return "$rc"
}

if [[ "$DEMO" != 1 ]]; then
    rc=0
    run_qemu || rc=$?
    exit "$rc"
fi

# The demo: keep the console log and turn it into bench.json, plots and a
# results page with tools/bench/collect.py, all under build/results/BOARD/SCALE/.
# Nothing here writes the committed results/ or the README: only
# `cargo xtask publish` does, from a complete full-scale run.
SCALE=quick
for a in "${USER_ARGS[@]}"; do
    [[ "$a" == scale=* ]] && SCALE="${a#scale=}"
done
[[ "$SCALE" =~ ^[a-z]+$ ]] || SCALE=other
OUT="$REPO_ROOT/build/results/$DTB_NAME/$SCALE"
LOG="$OUT/demo.log"
mkdir -p "$OUT"
# The commit is read before the boot, not after: a commit made while the
# demo runs (minutes on virt, most of an hour on raspi4b) did not build the
# kernel that ran.
COMMIT_ARGS=()
if [[ -f "$REPO_ROOT/tools/bench/collect.py" ]] &&
    commit=$("$BENCH_PYTHON" "$REPO_ROOT/tools/bench/collect.py" --print-commit --out "$OUT"); then
    COMMIT_ARGS=(--commit "$commit")
fi
# Host CPU per demo step (tools/bench/hostsched.py, read by collect.py):
# QEMU names its vCPU threads and writes its pid, and the sampler follows
# the log until QEMU exits. The old log goes first, so that the sampler
# never reads a previous run's steps. On several cores the sampler also puts
# the camera core's vCPU thread under SCHED_FIFO (QEMU_RUN_HOST_RT=0 leaves
# it normal): on a board the camera's core is its own, and under TCG on a
# host with fewer cores than QEMU has busy threads it would otherwise wait
# for a host core behind the load's vCPUs (results page, "Host CPU").
rm -f "$OUT/qemu.pid" "$OUT/hostsched.tsv"
: >"$LOG"
CMD+=(-name "gcma-$BOARD,debug-threads=on" -pidfile "$OUT/qemu.pid")
SAMPLER=""
if [[ -f "$REPO_ROOT/tools/bench/hostsched.py" ]]; then
    "$BENCH_PYTHON" "$REPO_ROOT/tools/bench/hostsched.py" sample --pidfile "$OUT/qemu.pid" \
        --log "$LOG" --out "$OUT/hostsched.tsv" --camera-rt "$([[ "${QEMU_RUN_HOST_RT:-1}" == 0 ]] && echo 0 || echo 10)" &
    SAMPLER=$!
fi
rc=0
run_qemu 2>&1 | tee "$LOG" || true
rc=${PIPESTATUS[0]}
if [[ -n "$SAMPLER" ]]; then
    # It ends within 50 ms of QEMU; one that still waits for a pid file
    # (QEMU did not start) is stopped.
    for _ in $(seq 40); do
        kill -0 "$SAMPLER" 2>/dev/null || break
        sleep 0.05
    done
    kill "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
fi
if [[ "$rc" == 0 && -z "${QEMU_RUN_NO_RESULTS:-}" && -f "$REPO_ROOT/tools/bench/collect.py" ]]; then
    echo "$PROG: demo log in ${LOG#"$REPO_ROOT"/}; writing ${OUT#"$REPO_ROOT"/}/ (tools/bench/collect.py)" >&2
    if "$BENCH_PYTHON" "$REPO_ROOT/tools/bench/collect.py" "$LOG" --board "$DTB_NAME" --accel tcg --out "$OUT" "${COMMIT_ARGS[@]}"; then
        if [[ "$SCALE" == full ]]; then
            echo "$PROG: to make this run the committed results: cargo xtask publish --board $DTB_NAME" >&2
        fi
    else
        echo "$PROG: warning: collect.py failed; the log is in $LOG" >&2
    fi
fi
exit "$rc"
