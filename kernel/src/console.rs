//! The serial console: `print!`/`println!`, the `log` backend, fatal output.
//!
//! One PL011 behind an IRQ-masking lock (so a line is never cut by a task
//! switch). Until `init` runs, output is dropped.
//! Fatal paths (exceptions, panics) must print even if the lock is held by
//! the code that failed, so `fatal_print` takes the UART without the lock:
//! at that point nothing else will run again.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::arch::timer;
use crate::drivers::pl011::Pl011;
use crate::sync::IrqLock;

struct Console {
    uart: Option<Pl011>,
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(uart) = &self.uart {
            for b in s.bytes() {
                if b == b'\n' {
                    uart.put(b'\r');
                }
                uart.put(b);
            }
        }
        Ok(())
    }
}

static CONSOLE: IrqLock<Console> = IrqLock::new(Console { uart: None });
static FATAL: AtomicBool = AtomicBool::new(false);

/// Uses the PL011 at `base` from now on.
///
/// # Safety
/// `base` must be a PL011 mapped as device memory for the kernel's lifetime.
pub unsafe fn init(base: usize, clock_hz: Option<u32>) {
    // SAFETY: forwarded contract of this function.
    let uart = unsafe { Pl011::new(base) };
    uart.init(clock_hz, 115_200);
    CONSOLE.lock().uart = Some(uart);
}

/// MMIO base of the console UART, if set.
pub fn uart_base() -> Option<usize> {
    CONSOLE.lock().uart.as_ref().map(|u| u.base())
}

/// A `fmt::Write` that prints to the console (for code that writes to a
/// `&mut dyn Write`).
pub struct Writer;

impl Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        _print(format_args!("{s}"));
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    if FATAL.load(Ordering::Relaxed) {
        return fatal_print(args);
    }
    let _ = CONSOLE.lock().write_fmt(args);
}

/// Prints on a fatal path, without waiting for the console lock.
pub fn fatal_print(args: fmt::Arguments) {
    FATAL.store(true, Ordering::Relaxed);
    // SAFETY: on a fatal path the kernel stops right after printing; breaking
    // the lock can at worst interleave with a line being printed by the code
    // that failed, which never resumes.
    unsafe { CONSOLE.force_unlock() };
    let _ = CONSOLE.lock().write_fmt(args);
}

/// Waits until the UART has sent everything queued.
pub fn flush() {
    if let Some(u) = CONSOLE.lock().uart.as_ref() {
        u.flush()
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::_print(format_args!($($arg)*)));
}

#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::_print(format_args!("{}\n", format_args!($($arg)*))));
}

/// `log` backend: `[   secs.micros] LEVEL target: message`.
struct Logger;

static LOGGER: Logger = Logger;
static MAX_LEVEL: AtomicU8 = AtomicU8::new(log::LevelFilter::Info as u8);

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        (metadata.level() as u8) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ns = timer::now_ns();
        crate::println!(
            "[{:>5}.{:06}] {:<5} {}: {}",
            ns / 1_000_000_000,
            (ns / 1000) % 1_000_000,
            record.level(),
            record.target().trim_start_matches("kernel::"),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Installs the logger at `level`.
pub fn init_logger(level: log::LevelFilter) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
