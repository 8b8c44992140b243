# shellcheck shell=bash
# shellcheck disable=SC2034 # QEMU_MACHINE is read by the scripts that source this.
# The QEMU machine options for each board, in one place.
#
# Sourced by qemu-run.sh (to boot) and tools/dtb/make-dtbs.sh (to dump QEMU's
# own device tree for virt). QEMU does not check that a tree given with -dtb
# matches the machine, so both must use exactly these options: the number of
# CPUs, the GIC version and the RAM size all appear in the tree.
#
# After sourcing, call qemu_machine_args BOARD [CORES] to fill the array
# QEMU_MACHINE. CORES is how many cores the kernel will start (its smp=); it
# only matters on rpi4, see there.
#
# `-nic none` on every board: the kernel has no network driver, and without
# it QEMU virt creates a virtio-net-pci card whose option ROM
# (efi-virtio.rom, Debian's ipxe-qemu) a minimal install does not have.

# The QEMU binary; override with QEMU=/path/to/qemu-system-aarch64.
QEMU="${QEMU:-qemu-system-aarch64}"

# qemu_machine_args virt|rpi4 [CORES]: set QEMU_MACHINE to the machine options.
qemu_machine_args() {
    case "$1" in
        virt)
            # 1 GiB at 0x4000_0000, GICv2, 2 CPUs (the second one is off
            # until PSCI CPU_ON), PL011 at 0x0900_0000, 32 virtio-mmio slots;
            # no network card (the kernel drives none, and QEMU would want
            # the ipxe-qemu option ROM for its default virtio-net-pci).
            # shellcheck disable=SC2054 # commas belong to the -machine value
            QEMU_MACHINE=(-machine virt,gic-version=2 -cpu cortex-a72 -m 1G -smp 2 -global virtio-mmio.force-legacy=false -nic none)
            ;;
        rpi4)
            # Raspberry Pi 4 B, 2 GiB (fixed by the machine: board revision
            # 0xb03115), 4 x Cortex-A72, PL011 UART0 at 0xFE20_1000.
            #
            # TCG threads: QEMU's boot stub parks cores 1-3 in a wfe loop,
            # and multi-threaded TCG's wfe does not sleep (it is a nop there),
            # so a core the kernel leaves parked spins a host thread for the
            # whole boot. Single-threaded TCG yields at a parked core's first
            # wfe, but it runs the four vCPUs in turn and switches only when
            # one halts or every 100 ms (QEMU's TCG_KICK_PERIOD), so a core
            # waiting for another that is busy waits in steps of 100 ms
            # (measured: GCMA's p99 200 ms on four cores, 0.3 ms on one).
            # So: a thread per vCPU when the kernel starts all four cores
            # (CORES empty or 4 and more), one thread when it leaves some
            # parked.
            if [[ -z "${2:-}" || "$2" -ge 4 ]]; then
                # shellcheck disable=SC2054 # commas belong to the -accel value
                QEMU_MACHINE=(-machine raspi4b -accel tcg,thread=multi -nic none)
            else
                # shellcheck disable=SC2054 # commas belong to the -accel value
                QEMU_MACHINE=(-machine raspi4b -accel tcg,thread=single -nic none)
            fi
            ;;
        *)
            echo "qemu_machine_args: unknown board '$1' (want virt or rpi4)" >&2
            return 2
            ;;
    esac
}
