//! What the Raspberry Pi firmware is told in config.txt and the kernel
//! relies on: stated here once. The board crate uses it, and `cargo xtask
//! sd-image` includes this same file (`#[path]`) to write config.txt, so the
//! two cannot disagree.

/// PL011 reference clock: config.txt's `init_uart_clock`, from which the
/// kernel programs 115200 baud.
pub const UART_CLOCK_HZ: u32 = 48_000_000;
