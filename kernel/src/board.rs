//! What a board crate tells the kernel.
//!
//! A board crate (boards/<name>) is a thin binary: it picks the linker
//! script (load address), supplies the facts below and hands control to the
//! kernel with [`board_entry!`](crate::board_entry). Everything else (RAM,
//! reserved memory, the UART, PSCI) comes from the device tree.

/// Facts about one board that the device tree does not give.
pub trait Board: Sync {
    /// Short name, as in `boards/<name>` and the `board=` boot argument.
    fn name(&self) -> &'static str;
    /// PL011 base used before the device tree is parsed (and if it names none).
    fn early_uart_base(&self) -> usize;
    /// Reference clock of the PL011, if the kernel should program the baud
    /// rate (None keeps the firmware's settings).
    fn uart_clock_hz(&self) -> Option<u32>;
    /// Routes the early UART to its pins before the first output, on boards
    /// whose firmware may leave the pins to another function. Runs once,
    /// with the boot map on. Default: nothing to do.
    fn setup_uart_pins(&self) {}
}

/// Defines the board entry: `board_entry!(MyBoard)` where `MyBoard` is a
/// `static` implementing [`Board`].
#[macro_export]
macro_rules! board_entry {
    ($board:path) => {
        #[unsafe(no_mangle)]
        fn __kernel_board() -> &'static dyn $crate::board::Board {
            &$board
        }
        /// boot.rs calls this when the image does not run at its link
        /// address (statically dispatched: vtables hold link addresses).
        #[unsafe(no_mangle)]
        extern "C" fn __kernel_wrong_address(runs_at: usize, linked_at: usize) -> ! {
            $crate::board::wrong_address(&$board, runs_at, linked_at)
        }
    };
}

unsafe extern "Rust" {
    fn __kernel_board() -> &'static dyn Board;
}

/// The board this kernel was linked for.
pub fn board() -> &'static dyn Board {
    // SAFETY: every kernel binary is a board crate that defines
    // `__kernel_board` with this exact signature through `board_entry!`.
    unsafe { __kernel_board() }
}

/// Says on the board's early UART that the image runs at `runs_at` instead
/// of its link address `linked_at`, then stops the core.
///
/// Runs before `kernel_entry`, MMU off, at whatever address the loader chose:
/// only PC-relative code is safe there, so no `dyn` call (vtables and
/// `core::fmt` hold link-time addresses) and no formatting machinery; the
/// board is a concrete type and the line is put together byte by byte.
pub fn wrong_address<B: Board>(board: &B, runs_at: usize, linked_at: usize) -> ! {
    board.setup_uart_pins();
    // SAFETY: the board's early UART, MMU off (device memory); nothing else
    // runs: the other cores are parked and this one stops below.
    let uart = unsafe { crate::drivers::pl011::Pl011::new(board.early_uart_base()) };
    uart.init(board.uart_clock_hz(), 115_200);
    let hex = |v: usize| {
        uart.put(b'0');
        uart.put(b'x');
        let digits = (usize::BITS - v.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            uart.put(b"0123456789abcdef"[(v >> (4 * i)) & 0xf]);
        }
    };
    let text = |s: &[u8]| {
        for &b in s {
            uart.put(b);
        }
    };
    text(b"\r\nboot: the kernel image runs at ");
    hex(runs_at);
    text(b" but is linked at ");
    hex(linked_at);
    text(b": load it there (Raspberry Pi: kernel_address=");
    hex(linked_at);
    text(b" in config.txt, or none); stopped\r\n");
    uart.flush();
    crate::arch::cpu::wait_forever()
}
