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
