//! The device-tree step of boot: one call ([`read`]) that checks the blob
//! the loader passed in x0 and returns everything the kernel takes from it.
//!
//! Rules:
//! - Runs once, on core 0, after the early console and before the final
//!   MMU map and the heap: nothing here allocates; lists are physmap's
//!   fixed-capacity [`ArrayVec`]s.
//! - Reads only. It starts no device and changes no kernel state except
//!   the one place the [`MemoryMap`] is kept (`MAP`): every device is
//!   handed to its driver by value (a [`Platform`] field) by
//!   `kernel_entry`, and nothing else queries the tree.
//! - The queries are physmap's ([`MemoryMap::from_tree`],
//!   [`DeviceTree::console_pl011`], [`DeviceTree::gicv2`],
//!   [`DeviceTree::find_compatible`]) and the SD driver's
//!   `SdhciInfo::from_tree`; nothing else in the kernel reads the tree.
//! - A blob that is missing, not a device tree or without RAM ends the boot
//!   with one console line (`boot: ...`) and `@exit status=boot-failed`.
//!   It runs before the logger (the boot arguments it returns set the log
//!   level), so a device it cannot use is left out with its reason as data
//!   ([`NoGic`]), which the step that would start it prints.

use core::ops::Range;

use physmap::{ArrayVec, Cpus, DeviceTree, Gicv2, HighDevice, MemoryMap, NoGic, PhysRange};
use spin::Once;

use crate::arch::firmware::PsciConduit;
use crate::drivers::sdhci::SdhciInfo;
use crate::exit::{ExitStatus, exit};
use crate::println;

/// The most virtio-mmio windows kept (QEMU virt lists 32).
pub const MAX_VIRTIO_MMIO: usize = 64;

/// Everything the kernel takes from the device tree.
pub struct Platform {
    /// Where the blob lies (kept out of every allocator).
    pub dtb: Range<u64>,
    /// RAM, reserved regions, excluded ranges, usable RAM, `/chosen`.
    pub map: &'static MemoryMap<'static>,
    /// `/chosen/bootargs` ("" if none).
    pub bootargs: &'static str,
    /// `/psci` `method`: how to call the firmware, if it has PSCI.
    pub psci: Option<PsciConduit>,
    /// The console's PL011 ([`DeviceTree::console_pl011`]).
    pub console: Option<PhysRange>,
    /// The GICv2 and the EL1 physical timer's interrupt, or why not.
    pub gic: Result<Gicv2, NoGic<'static>>,
    /// virtio-mmio transport windows, in tree order.
    pub virtio_mmio: ArrayVec<u64, MAX_VIRTIO_MMIO>,
    /// The SD host controller (Raspberry Pi 4 EMMC2) and its mailbox.
    pub sdhci: Option<SdhciInfo>,
    /// The BCM2835/BCM2711 power-management watchdog's window.
    pub pm_wdt: Option<PhysRange>,
    /// The cores of `/cpus` ([`DeviceTree::cpus`]).
    pub cpus: Cpus<'static>,
    /// A boot device (UART, GIC) above 4 GiB, which the kernel refuses
    /// ([`physmap::first_above_limit`]).
    pub high_device: Option<HighDevice<'static>>,
}

/// The memory map, built once by [`read`]: in a static rather than on the
/// boot stack (up to 32 KiB), since the self-tests read it to the end.
static MAP: Once<MemoryMap<'static>> = Once::new();

/// Checks the device tree at `dtb_addr` and reads it, `kernel` being the
/// running image (excluded from the map, like the blob).
pub fn read(dtb_addr: u64, kernel: Range<u64>) -> Platform {
    let blob = blob(dtb_addr);
    let dtb = dtb_addr..dtb_addr + blob.len() as u64;
    let tree = match DeviceTree::new(blob) {
        Ok(t) => t,
        Err(e) => {
            println!("boot: device tree at {dtb_addr:#x} does not parse: {e}");
            exit(ExitStatus::BootFailed);
        }
    };
    let map = match MemoryMap::from_tree(
        &tree,
        PhysRange::from_bounds(kernel.start, kernel.end),
        PhysRange::from_bounds(dtb.start, dtb.end),
    ) {
        Ok(m) => MAP.call_once(|| m),
        Err(e) => {
            println!("boot: device tree: {e}");
            exit(ExitStatus::BootFailed);
        }
    };
    Platform {
        dtb,
        map,
        bootargs: map.chosen.bootargs.unwrap_or(""),
        psci: psci(&tree),
        console: tree.console_pl011().and_then(|d| d.reg()),
        gic: tree.gicv2(),
        virtio_mmio: virtio_mmio(&tree),
        sdhci: SdhciInfo::from_tree(&tree),
        pm_wdt: tree
            .find_compatible("brcm,bcm2835-pm-wdt")
            .or_else(|| tree.find_compatible("brcm,bcm2711-pm"))
            .and_then(|d| d.reg()),
        cpus: tree.cpus(),
        high_device: physmap::first_above_limit(&tree),
    }
}

/// The whole blob at `dtb_addr`, its size from the header.
fn blob(dtb_addr: u64) -> &'static [u8] {
    if dtb_addr == 0 || !dtb_addr.is_multiple_of(8) {
        println!(
            "boot: no device tree (x0 = {dtb_addr:#x}); boot an arm64 Image with a DTB (qemu-run.sh passes -dtb)"
        );
        exit(ExitStatus::BootFailed);
    }
    // SAFETY: x0 points at the DTB the loader placed in RAM, mapped by the
    // boot map; the header is 40 bytes and is only read.
    let header =
        unsafe { core::slice::from_raw_parts(dtb_addr as *const u8, physmap::FDT_HEADER_SIZE) };
    let size = match physmap::dtb_total_size(header) {
        Ok(s) => s,
        Err(e) => {
            println!("boot: no valid device tree at {dtb_addr:#x}: {e}");
            exit(ExitStatus::BootFailed);
        }
    };
    // SAFETY: the header says the blob is `size` bytes; the loader copied all
    // of it there, it is never written, and the frame table marks it
    // Reserved so nothing reuses it: a 'static shared borrow is sound.
    unsafe { core::slice::from_raw_parts(dtb_addr as *const u8, size) }
}

/// `/psci` `method`: "hvc" or "smc".
fn psci(tree: &DeviceTree) -> Option<PsciConduit> {
    match tree.property_at("/psci", "method")?.as_str()? {
        "hvc" => Some(PsciConduit::Hvc),
        "smc" => Some(PsciConduit::Smc),
        _ => None,
    }
}

/// Every available virtio-mmio window; more than [`MAX_VIRTIO_MMIO`] is
/// one line, and the first ones are kept.
fn virtio_mmio(tree: &DeviceTree) -> ArrayVec<u64, MAX_VIRTIO_MMIO> {
    let mut windows = ArrayVec::new();
    let mut dropped = 0usize;
    tree.for_each_compatible("virtio,mmio", |d| {
        if let Some(r) = d.reg()
            && windows.try_push(r.base).is_err()
        {
            dropped += 1;
        }
        true
    });
    if dropped > 0 {
        println!(
            "devtree: {dropped} virtio-mmio windows beyond the first {MAX_VIRTIO_MMIO} left out"
        );
    }
    windows
}
