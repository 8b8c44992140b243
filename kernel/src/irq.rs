//! Interrupt dispatch: the GIC found in the device tree and a table of
//! handlers by interrupt ID.
//!
//! Handlers run with IRQs masked on the interrupted task's stack; they must
//! be short and must not sleep. After every interrupt has been ended (EOI),
//! the hook given to [`init`] runs, still masked: the boot code gives the
//! scheduler's preemption point, which may switch to a task the handlers
//! made ready. This module knows no handler and no scheduler by name: the
//! boot code registers them.

use physmap::Gicv2;
use spin::Once;

use crate::drivers::gic::Gic;
use crate::sync::IrqLock;

/// Interrupt IDs with a slot in the handler table.
const MAX_HANDLERS: usize = 256;

/// The GIC priority of every registered interrupt: the middle of the range
/// (lower is more urgent), all equal since handlers never nest.
pub const IRQ_PRIORITY: u8 = 0x80;

static GIC: Once<Gic> = Once::new();
/// Runs after every batch of handled interrupts (see [`init`]).
static AFTER_IRQ: Once<fn()> = Once::new();
/// Handlers by interrupt ID.
type HandlerTable = [Option<fn()>; MAX_HANDLERS];

static HANDLERS: IrqLock<HandlerTable> = IrqLock::new([None; MAX_HANDLERS]);

/// Brings up the GIC and installs the IRQ entry point; `after_irq` runs
/// once every pending interrupt has been handled and ended.
///
/// # Safety
/// `info` must come from the device tree: GICv2 distributor and CPU
/// interface windows, below 4 GiB and outside RAM (device memory).
pub unsafe fn init(info: &Gicv2, after_irq: fn()) {
    // SAFETY: forwarded contract.
    let gic = GIC.call_once(|| unsafe { Gic::new(info.dist as usize, info.cpu as usize) });
    AFTER_IRQ.call_once(|| after_irq);
    gic.init();
    crate::arch::exception::set_irq_handler(handle);
    log::info!(
        "GICv2 distributor {:#x}, CPU interface {:#x}, {} lines; timer interrupt {}",
        info.dist,
        info.cpu,
        gic.lines(),
        info.timer_intid
    );
}

/// On a secondary core: enables its CPU interface and its own (banked)
/// interrupt `ppi` (below 32) at the kernel's priority, and returns the GIC
/// for it to acknowledge and end its interrupts. Neither the handler table
/// nor its lock is used: a secondary core dispatches its own interrupts
/// (arch::smp). None without a GIC or for an interrupt that is not banked.
pub fn init_secondary_core(ppi: u32) -> Option<&'static Gic> {
    let gic = GIC.get()?;
    if ppi >= 32 {
        return None;
    }
    gic.init_this_core();
    gic.enable(ppi, IRQ_PRIORITY);
    Some(gic)
}

/// Routes `intid` to `handler` and enables it.
pub fn register(intid: u32, handler: fn()) {
    let Some(gic) = GIC.get() else {
        log::error!("no interrupt controller; interrupt {intid} not enabled");
        return;
    };
    if (intid as usize) < MAX_HANDLERS {
        HANDLERS.lock()[intid as usize] = Some(handler);
        gic.enable(intid, IRQ_PRIORITY);
    } else {
        log::error!("interrupt {intid} beyond the handler table ({MAX_HANDLERS})");
    }
}

/// The IRQ entry (from the exception vectors).
fn handle() {
    let Some(gic) = GIC.get() else { return };
    while let Some(irq) = gic.acknowledge() {
        let intid = irq.intid();
        let handler = HANDLERS.lock().get(intid as usize).copied().flatten();
        match handler {
            Some(h) => h(),
            None => {
                gic.disable(intid);
                log::warn!("unexpected interrupt {intid}; disabled");
            }
        }
        gic.end(irq);
    }
    if let Some(after) = AFTER_IRQ.get() {
        after();
    }
}
