//! The device-tree parser on any blob: `MemoryMap::parse` (what the kernel
//! calls at boot), the device lookups the kernel makes, and the console
//! tables. Nothing may panic, and the usable ranges it hands to the frame
//! allocator must be page-aligned, sorted, inside RAM and clear of every
//! excluded range and reserved region.
#![no_main]

use std::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use physmap::{DeviceTree, MachineLines, MemoryMap, PAGE_SIZE, PhysRange, Table};

fuzz_target!(|data: &[u8]| {
    // What the kernel reads first: the header's totalsize (not checked
    // against the buffer here; `DeviceTree::new` does that).
    let _ = physmap::dtb_total_size(data);
    let Ok(tree) = DeviceTree::new(data) else {
        assert!(MemoryMap::parse(data, PhysRange::new(0, 0), PhysRange::new(0, 0)).is_err());
        return;
    };
    // The lookups kernel/src/lib.rs makes (each walks the whole tree).
    let _ = tree.console_pl011();
    let _ = tree.property_at("/psci", "method").and_then(|p| p.as_str());
    let mut n = 0;
    tree.for_each_compatible("arm,pl011", |d| {
        let _ = d.reg();
        n += 1;
        n < 64
    });
    let _ = tree.memreserve().take(64).count();

    // As the kernel calls it on QEMU virt: image at 0x4008_0000, DTB at
    // 0x4800_0000.
    let kernel = PhysRange::new(0x4008_0000, 0xc_7000);
    let dtb = PhysRange::new(0x4800_0000, data.len() as u64);
    let Ok(map) = MemoryMap::from_tree(&tree, kernel, dtb) else {
        return;
    };
    let mut out = String::new();
    let _ = write!(out, "{}", Table(&map));
    let _ = write!(out, "{}", MachineLines(&map));
    for d in map.diagnostics.as_slice() {
        let _ = write!(out, "{d}");
    }
    let _ = map.chosen.stdout_options();

    let usable = map.usable.as_slice();
    for w in usable.windows(2) {
        assert!(
            w[0].end() <= w[1].base,
            "usable ranges unsorted or overlapping: {} {}",
            w[0],
            w[1]
        );
    }
    for u in usable {
        assert!(u.size > 0);
        assert!(
            u.base % PAGE_SIZE == 0 && u.size % PAGE_SIZE == 0,
            "usable {u} not page aligned"
        );
        assert!(
            map.ram.as_slice().iter().any(|r| r.contains(u)),
            "usable {u} outside RAM"
        );
        for x in map.excluded.as_slice() {
            assert!(
                !u.overlaps(&x.range),
                "usable {u} overlaps excluded {}",
                x.range
            );
        }
        for r in map.reserved.as_slice() {
            assert!(
                !u.overlaps(&r.range),
                "usable {u} overlaps reserved region {} {}",
                r.name,
                r.range
            );
        }
    }
    assert!(map.total_usable() <= map.total_ram());
});
