//! The devices the kernel needs before anything else (the console PL011 and
//! the GICv2) and the one placement rule they must meet: every register
//! below [`DEVICE_LIMIT`], which the kernel maps as device memory.
//!
//! A Raspberry Pi 4 booted in "high peripheral" mode (`arm_peri_high=1` in
//! config.txt) moves its peripherals to 0x4_7C00_0000 and up: the tree's
//! `ranges` then translate the UART and the GIC above 4 GiB.
//! [`first_above_limit`] finds such a device so the kernel refuses the tree
//! with one line ([`HighDevice`]'s `Display`) instead of faulting on its
//! first access.

use core::fmt;

use crate::DeviceTree;

/// Highest address (exclusive) the kernel maps device registers below.
pub const DEVICE_LIMIT: u64 = 4 << 30;

/// Compatibles of the devices the kernel drives from the start, and what
/// each is called in the message.
pub const BOOT_DEVICES: [(&str, &str); 3] = [
    ("arm,pl011", "UART"),
    ("arm,gic-400", "GIC"),
    ("arm,cortex-a15-gic", "GIC"),
];

/// A boot device whose registers end above [`DEVICE_LIMIT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HighDevice<'a> {
    /// "UART" or "GIC".
    pub what: &'static str,
    /// Node name with unit address.
    pub node: &'a str,
    /// The translated base of the offending register range.
    pub base: u64,
}

/// The first available boot device ([`BOOT_DEVICES`], in that order) with a
/// translated `reg` range that ends above [`DEVICE_LIMIT`].
pub fn first_above_limit<'a>(tree: &DeviceTree<'a>) -> Option<HighDevice<'a>> {
    let mut found = None;
    for (compatible, what) in BOOT_DEVICES {
        tree.for_each_compatible(compatible, |d| {
            if let Some(r) = d.regs.as_slice().iter().find(|r| r.end() > DEVICE_LIMIT) {
                found = Some(HighDevice {
                    what,
                    node: d.name,
                    base: r.base,
                });
            }
            found.is_none()
        });
        if found.is_some() {
            break;
        }
    }
    found
}

impl fmt::Display for HighDevice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "boot: the device tree puts the {} '{}' at {:#x}, above 4 GiB (high-peripheral mode): \
             this kernel needs its devices below 4 GiB; remove arm_peri_high from config.txt",
            self.what, self.node, self.base
        )
    }
}
