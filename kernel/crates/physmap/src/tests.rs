//! Host tests: device trees are built here with `vm-fdt`.

extern crate std;

use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use crate::*;

const MIB: u64 = 1 << 20;

/// A property of a test node.
pub(crate) enum P {
    U32(&'static str, u32),
    Str(&'static str, &'static str),
    Strs(&'static str, &'static [&'static str]),
    Cells(&'static str, Vec<u32>),
    Flag(&'static str),
    Raw(&'static str, Vec<u8>),
}

/// A test node.
pub(crate) struct N {
    pub name: String,
    pub props: Vec<P>,
    pub children: Vec<N>,
}

pub(crate) fn node(name: &str, props: Vec<P>, children: Vec<N>) -> N {
    N {
        name: name.to_string(),
        props,
        children,
    }
}

/// (address, size) pairs as 2+2 cells.
fn pairs64(pairs: &[(u64, u64)]) -> Vec<u32> {
    pairs
        .iter()
        .flat_map(|&(a, s)| [(a >> 32) as u32, a as u32, (s >> 32) as u32, s as u32])
        .collect()
}

/// A 2-cell value.
fn val64(v: u64) -> Vec<u32> {
    vec![(v >> 32) as u32, v as u32]
}

fn write_node(w: &mut vm_fdt::FdtWriter, n: &N) {
    let handle = w.begin_node(&n.name).unwrap();
    for p in &n.props {
        match p {
            P::U32(name, v) => w.property_u32(name, *v).unwrap(),
            P::Str(name, v) => w.property_string(name, v).unwrap(),
            P::Strs(name, v) => w
                .property_string_list(name, v.iter().map(|s| s.to_string()).collect())
                .unwrap(),
            P::Cells(name, v) => w.property_array_u32(name, v).unwrap(),
            P::Flag(name) => w.property_null(name).unwrap(),
            P::Raw(name, v) => w.property(name, v).unwrap(),
        }
    }
    for child in &n.children {
        write_node(w, child);
    }
    w.end_node(handle).unwrap();
}

pub(crate) fn build(memreserve: &[(u64, u64)], root: &N) -> Vec<u8> {
    let entries: Vec<_> = memreserve
        .iter()
        .map(|&(a, s)| vm_fdt::FdtReserveEntry::new(a, s).unwrap())
        .collect();
    let mut w = vm_fdt::FdtWriter::new_with_mem_reserv(&entries).unwrap();
    write_node(&mut w, root);
    w.finish().unwrap()
}

// ---- the QEMU-virt-like tree ------------------------------------------

const VIRT_RAM: PhysRange = PhysRange::new(0x4000_0000, 1 << 30);
const VIRT_DTB: PhysRange = PhysRange::new(0x4000_0000, 0x1234);
const VIRT_KERNEL: PhysRange = PhysRange::from_bounds(0x4020_0000, 0x403f_0800);
const VIRT_MEMRESERVE: (u64, u64) = (0x7ff0_0000, 0x1_0000);

fn gcma_static() -> N {
    node(
        "gcma@50000000",
        vec![
            P::Str("compatible", "shared-dma-pool"),
            P::Cells("reg", pairs64(&[(0x5000_0000, 16 * MIB)])),
            P::Flag("reusable"),
            P::Flag("guarantee"),
        ],
        vec![],
    )
}

fn cma_dynamic() -> N {
    node(
        "linux,cma",
        vec![
            P::Str("compatible", "shared-dma-pool"),
            P::Cells("size", val64(16 * MIB)),
            P::Cells("alignment", val64(4 * MIB)),
            P::Cells("alloc-ranges", pairs64(&[(0x6000_0000, 0x1000_0000)])),
            P::Flag("reusable"),
        ],
        vec![],
    )
}

/// A `no-map` carveout: `shared-dma-pool` makes it a pool for a device
/// (without it, the node would be firmware's memory).
fn carveout_static() -> N {
    node(
        "carveout@58000000",
        vec![
            P::Str("compatible", "shared-dma-pool"),
            P::Cells("reg", pairs64(&[(0x5800_0000, 8 * MIB)])),
            P::Flag("no-map"),
        ],
        vec![],
    )
}

fn static_region(name: &str, base: u64, size: u64, flags: &[&'static str]) -> N {
    let mut props = vec![P::Cells("reg", pairs64(&[(base, size)]))];
    props.extend(flags.iter().map(|f| P::Flag(f)));
    node(name, props, vec![])
}

pub(crate) fn virt_root(reserved: Vec<N>) -> N {
    node(
        "",
        vec![
            P::U32("#address-cells", 2),
            P::U32("#size-cells", 2),
            P::Str("compatible", "linux,dummy-virt"),
        ],
        vec![
            node(
                "memory@40000000",
                vec![
                    P::Str("device_type", "memory"),
                    P::Cells("reg", pairs64(&[(VIRT_RAM.base, VIRT_RAM.size)])),
                ],
                vec![],
            ),
            node(
                "reserved-memory",
                vec![
                    P::U32("#address-cells", 2),
                    P::U32("#size-cells", 2),
                    P::Flag("ranges"),
                ],
                reserved,
            ),
            node(
                "chosen",
                vec![
                    P::Str("bootargs", "gcma.test=1 console=ttyAMA0"),
                    P::Str("stdout-path", "/pl011@9000000"),
                ],
                vec![],
            ),
            node(
                "pl011@8000000",
                vec![
                    P::Strs("compatible", &["arm,pl011", "arm,primecell"]),
                    P::Cells("reg", pairs64(&[(0x800_0000, 0x1000)])),
                    P::Str("status", "disabled"),
                ],
                vec![],
            ),
            node(
                "pl011@9000000",
                vec![
                    P::Strs("compatible", &["arm,pl011", "arm,primecell"]),
                    P::Cells("reg", pairs64(&[(0x900_0000, 0x1000)])),
                    P::Cells("interrupts", vec![0, 1, 4]),
                ],
                vec![],
            ),
            node(
                "intc@8000000",
                vec![
                    P::Str("compatible", "arm,cortex-a15-gic"),
                    P::Cells(
                        "reg",
                        pairs64(&[(0x800_0000, 0x1_0000), (0x801_0000, 0x1_0000)]),
                    ),
                ],
                vec![],
            ),
            node(
                "virtio_mmio@a000000",
                vec![
                    P::Str("compatible", "virtio,mmio"),
                    P::Cells("reg", pairs64(&[(0xa00_0000, 0x200)])),
                    P::Cells("interrupts", vec![0, 16, 1]),
                ],
                vec![],
            ),
            node(
                "virtio_mmio@a000200",
                vec![
                    P::Str("compatible", "virtio,mmio"),
                    P::Cells("reg", pairs64(&[(0xa00_0200, 0x200)])),
                    P::Cells("interrupts", vec![0, 17, 1]),
                ],
                vec![],
            ),
        ],
    )
}

fn virt_dtb(reserved: Vec<N>) -> Vec<u8> {
    build(&[VIRT_MEMRESERVE], &virt_root(reserved))
}

fn parse_virt(dtb: &[u8]) -> MemoryMap<'_> {
    let map = MemoryMap::parse(dtb, VIRT_KERNEL, VIRT_DTB).expect("virt tree parses");
    check_invariants(&map);
    check_claims_excluded(dtb, &map);
    map
}

/// Every byte an available `/reserved-memory` child claims with `reg`
/// (whole entries), and every memreserve entry, read straight from the
/// blob: none may be usable, and no area may hold another node's claim.
fn check_claims_excluded(dtb: &[u8], map: &MemoryMap<'_>) {
    let Ok(tree) = DeviceTree::new(dtb) else {
        return;
    };
    let mut claims: Vec<(String, PhysRange)> = tree
        .memreserve()
        .map(|r| ("/memreserve/".to_string(), r))
        .collect();
    let _ = tree.walk(|node| {
        let parent = node.parent().copied().unwrap_or_default();
        let in_reserved = node.depth == 2
            && node.ancestors.get(1).map(|f| f.name) == Some("reserved-memory")
            && node.props.is_available();
        let (ac, sc) = (parent.address_cells, parent.size_cells);
        if let (true, Some(reg), 1..=2, 0..=2) = (in_reserved, node.props.get("reg"), ac, sc) {
            let entry = ((ac + sc) * 4) as usize;
            for chunk in reg.value.chunks_exact(entry) {
                let base = crate::tree::read_cells(chunk, ac).unwrap();
                let size = crate::tree::read_cells(&chunk[(ac * 4) as usize..], sc).unwrap();
                let range = PhysRange::from_bounds(base, base.saturating_add(size));
                claims.push((node.name.to_string(), range));
            }
        }
        true
    });
    for (name, claim) in &claims {
        for usable in map.usable.iter() {
            assert!(
                !usable.overlaps(claim),
                "{name} {claim:?} usable in {usable:?}"
            );
        }
        for region in map.reserved.iter() {
            let own = region.name == name && region.range == *claim;
            assert!(
                own || !region.range.overlaps(claim),
                "area {region:?} holds {name} {claim:?}"
            );
        }
    }
}

/// What must hold for every map, whatever the input.
fn check_invariants(map: &MemoryMap<'_>) {
    for pair in map.usable.windows(2) {
        assert!(
            pair[0].end() <= pair[1].base,
            "usable sorted, disjoint: {pair:?}"
        );
    }
    for range in map.usable.iter() {
        assert!(range.size > 0);
        assert_eq!(range.base % PAGE_SIZE, 0, "{range:?}");
        assert_eq!(range.size % PAGE_SIZE, 0, "{range:?}");
        assert!(
            map.ram.iter().any(|ram| ram.contains(range)),
            "{range:?} in RAM"
        );
        for region in map.reserved.iter() {
            assert!(!range.overlaps(&region.range), "{range:?} vs {region:?}");
        }
        for excluded in map.excluded.iter() {
            assert!(
                !range.overlaps(&excluded.range),
                "{range:?} vs {excluded:?}"
            );
        }
    }
    for region in map.reserved.iter() {
        for excluded in map.excluded.iter() {
            assert!(
                !region.range.overlaps(&excluded.range),
                "{region:?} vs {excluded:?}"
            );
        }
    }
    for (i, a) in map.reserved.iter().enumerate() {
        for b in map.reserved.iter().skip(i + 1) {
            assert!(!a.range.overlaps(&b.range), "{a:?} vs {b:?}");
        }
        assert!(map.ram.iter().any(|ram| ram.contains(&a.range)));
        assert!(a.range.size > 0);
    }
}

fn diagnostics(map: &MemoryMap<'_>) -> Vec<String> {
    map.diagnostics.iter().map(|d| d.to_string()).collect()
}

fn region<'m>(map: &'m MemoryMap<'_>, name: &str) -> &'m ReservedRegion<'m> {
    map.reserved
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("region {name} missing from {:?}", map.reserved))
}

fn ranges(bounds: &[(u64, u64)]) -> Vec<PhysRange> {
    bounds
        .iter()
        .map(|&(s, e)| PhysRange::from_bounds(s, e))
        .collect()
}

/// No usable byte inside `range`.
fn assert_not_usable(map: &MemoryMap<'_>, range: PhysRange) {
    for usable in map.usable.iter() {
        assert!(
            !usable.overlaps(&range),
            "{usable:?} is usable inside {range:?}"
        );
    }
}

// ---- good trees --------------------------------------------------------

#[test]
fn virt_tree_gives_exact_regions_and_usable_ranges() {
    let dtb = virt_dtb(vec![gcma_static(), cma_dynamic(), carveout_static()]);
    let map = parse_virt(&dtb);

    assert!(map.diagnostics.is_empty(), "{:?}", diagnostics(&map));
    assert_eq!(map.ram.as_slice(), &[VIRT_RAM]);

    let gcma = region(&map, "gcma@50000000");
    assert_eq!(gcma.kind, RegionKind::Gcma);
    assert_eq!(gcma.range, PhysRange::new(0x5000_0000, 16 * MIB));
    assert!(gcma.reusable && gcma.guarantee && gcma.shared_dma_pool);
    assert!(!gcma.no_map && !gcma.dynamic);

    // Top-down inside 0x60000000..0x70000000, 4 MiB aligned.
    let cma = region(&map, "linux,cma");
    assert_eq!(cma.kind, RegionKind::Cma);
    assert_eq!(cma.range, PhysRange::new(0x6f00_0000, 16 * MIB));
    assert!(cma.dynamic && cma.reusable && !cma.guarantee && cma.shared_dma_pool);

    let carveout = region(&map, "carveout@58000000");
    assert_eq!(carveout.kind, RegionKind::Carveout);
    assert_eq!(carveout.range, PhysRange::new(0x5800_0000, 8 * MIB));
    assert!(carveout.no_map && !carveout.reusable && carveout.shared_dma_pool);

    // Statics first in tree order, then dynamics.
    let names: Vec<_> = map.reserved.iter().map(|r| r.name).collect();
    assert_eq!(names, ["gcma@50000000", "carveout@58000000", "linux,cma"]);

    assert_eq!(
        map.excluded.as_slice(),
        &[
            ExcludedRange {
                kind: ExcludedKind::KernelImage,
                range: VIRT_KERNEL,
                ..Default::default()
            },
            ExcludedRange {
                kind: ExcludedKind::Dtb,
                range: VIRT_DTB,
                ..Default::default()
            },
            ExcludedRange {
                kind: ExcludedKind::MemReserve,
                range: PhysRange::new(VIRT_MEMRESERVE.0, VIRT_MEMRESERVE.1),
                ..Default::default()
            },
        ]
    );

    assert_eq!(
        map.usable.as_slice(),
        ranges(&[
            (0x4000_2000, 0x4020_0000),
            (0x403f_1000, 0x5000_0000),
            (0x5100_0000, 0x5800_0000),
            (0x5880_0000, 0x6f00_0000),
            (0x7000_0000, 0x7ff0_0000),
            (0x7ff1_0000, 0x8000_0000),
        ])
    );
    assert_eq!(map.total_reserved(RegionKind::Gcma), 16 * MIB);
    assert_eq!(map.total_reserved(RegionKind::Cma), 16 * MIB);
    assert_eq!(map.total_reserved(RegionKind::Carveout), 8 * MIB);
    assert_eq!(map.regions(RegionKind::Gcma).count(), 1);

    assert_eq!(map.chosen.bootargs, Some("gcma.test=1 console=ttyAMA0"));
    assert_eq!(map.chosen.stdout_path, Some("/pl011@9000000"));
    assert_eq!(map.chosen.stdout_options(), None);
    let stdout = map.chosen.stdout.expect("stdout resolves");
    assert_eq!(stdout.name, "pl011@9000000");
    assert_eq!(stdout.reg(), Some(PhysRange::new(0x900_0000, 0x1000)));
}

#[test]
fn dynamic_region_without_alloc_ranges_goes_to_the_top_of_ram() {
    let dtb = virt_dtb(vec![node(
        "pool",
        vec![
            P::Cells("size", val64(MIB)),
            P::Cells("alignment", val64(2 * MIB)),
        ],
        vec![],
    )]);
    let map = parse_virt(&dtb);
    assert!(map.diagnostics.is_empty(), "{:?}", diagnostics(&map));
    // 0x7ff00000 is aligned down to 0x7fe00000, which ends just below the
    // memreserve entry at 0x7ff00000.
    assert_eq!(region(&map, "pool").range, PhysRange::new(0x7fe0_0000, MIB));
    assert_eq!(region(&map, "pool").kind, RegionKind::Carveout);
}

#[test]
fn dynamic_region_skips_taken_ranges_top_down() {
    // alloc-ranges 0x50000000..0x52000000: the GCMA region holds the
    // bottom 16 MiB, a carveout the top 8 MiB; 8 MiB remain in between.
    let dtb = virt_dtb(vec![
        gcma_static(),
        static_region("top@51800000", 0x5180_0000, 8 * MIB, &[]),
        node(
            "squeezed",
            vec![
                P::Cells("size", val64(4 * MIB)),
                P::Cells("alloc-ranges", pairs64(&[(0x5000_0000, 0x200_0000)])),
                P::Flag("reusable"),
            ],
            vec![],
        ),
    ]);
    let map = parse_virt(&dtb);
    assert!(map.diagnostics.is_empty(), "{:?}", diagnostics(&map));
    assert_eq!(
        region(&map, "squeezed").range,
        PhysRange::new(0x5140_0000, 4 * MIB)
    );
}

#[test]
fn second_alloc_range_is_used_when_the_first_is_full() {
    let dtb = virt_dtb(vec![
        gcma_static(),
        node(
            "second",
            vec![
                P::Cells("size", val64(MIB)),
                P::Cells(
                    "alloc-ranges",
                    pairs64(&[(0x5000_0000, 16 * MIB), (0x6000_0000, 4 * MIB)]),
                ),
            ],
            vec![],
        ),
    ]);
    let map = parse_virt(&dtb);
    assert_eq!(
        region(&map, "second").range,
        PhysRange::new(0x6030_0000, MIB)
    );
}

#[test]
fn disabled_reserved_node_is_ignored() {
    let mut disabled = static_region("off@60000000", 0x6000_0000, MIB, &[]);
    disabled.props.push(P::Str("status", "disabled"));
    let dtb = virt_dtb(vec![disabled, gcma_static()]);
    let map = parse_virt(&dtb);
    assert!(map.diagnostics.is_empty());
    assert_eq!(map.reserved.len(), 1);
}

pub(crate) fn pi_root() -> N {
    node(
        "",
        vec![
            P::U32("#address-cells", 2),
            P::U32("#size-cells", 1),
            P::Str("compatible", "raspberrypi,4-model-b"),
        ],
        vec![
            node(
                "aliases",
                vec![
                    P::Str("serial0", "/soc/serial@7e201000"),
                    P::Str("serial1", "/soc/serial@7e215040"),
                    P::Str("soc", "/soc"),
                ],
                vec![],
            ),
            node(
                "chosen",
                vec![
                    P::Str("stdout-path", "serial1:115200n8"),
                    P::Str("bootargs", "coherent_pool=1M"),
                ],
                vec![],
            ),
            node(
                "memory@0",
                vec![
                    P::Str("device_type", "memory"),
                    P::Cells("reg", vec![0, 0, 0x3b40_0000, 0, 0x4000_0000, 0xbc00_0000]),
                ],
                vec![],
            ),
            node(
                "memory@100000000",
                vec![
                    P::Str("device_type", "memory"),
                    P::Cells("reg", vec![1, 0, 0x8000_0000]),
                ],
                vec![],
            ),
            node(
                "reserved-memory",
                vec![
                    P::U32("#address-cells", 2),
                    P::U32("#size-cells", 1),
                    P::Flag("ranges"),
                ],
                vec![node(
                    "linux,cma",
                    vec![
                        P::Str("compatible", "shared-dma-pool"),
                        P::U32("size", 0x400_0000),
                        P::Flag("reusable"),
                        P::Flag("linux,cma-default"),
                        P::Cells("alloc-ranges", vec![0, 0, 0x3000_0000]),
                    ],
                    vec![],
                )],
            ),
            node(
                "soc",
                vec![
                    P::Str("compatible", "simple-bus"),
                    P::U32("#address-cells", 1),
                    P::U32("#size-cells", 1),
                    P::Cells(
                        "ranges",
                        vec![
                            0x7e00_0000,
                            0,
                            0xfe00_0000,
                            0x180_0000, //
                            0x7c00_0000,
                            0,
                            0xfc00_0000,
                            0x200_0000, //
                            0x4000_0000,
                            0,
                            0xff80_0000,
                            0x80_0000,
                        ],
                    ),
                ],
                vec![
                    node(
                        "serial@7e201000",
                        vec![
                            P::Strs("compatible", &["arm,pl011", "arm,primecell"]),
                            P::Cells("reg", vec![0x7e20_1000, 0x200]),
                            P::Cells("interrupts", vec![0, 121, 4]),
                        ],
                        vec![],
                    ),
                    node(
                        "serial@7e215040",
                        vec![
                            P::Str("compatible", "brcm,bcm2835-aux-uart"),
                            P::Cells("reg", vec![0x7e21_5040, 0x40]),
                        ],
                        vec![],
                    ),
                    node(
                        "interrupt-controller@40041000",
                        vec![
                            P::Str("compatible", "arm,gic-400"),
                            P::Cells("reg", vec![0x4004_1000, 0x1000, 0x4004_2000, 0x2000]),
                        ],
                        vec![],
                    ),
                ],
            ),
        ],
    )
}

const PI_KERNEL: PhysRange = PhysRange::from_bounds(0x8_0000, 0x28_0000);
const PI_DTB: PhysRange = PhysRange::new(0x800_0000, 0xc000);

#[test]
fn pi_tree_with_hole_high_ram_and_soc_ranges() {
    let dtb = build(&[(0, 0x1000)], &pi_root());
    let map = MemoryMap::parse(&dtb, PI_KERNEL, PI_DTB).unwrap();
    check_invariants(&map);
    assert!(map.diagnostics.is_empty(), "{:?}", diagnostics(&map));
    assert_eq!(
        map.ram.as_slice(),
        ranges(&[
            (0, 0x3b40_0000),
            (0x4000_0000, 0xfc00_0000),
            (0x1_0000_0000, 0x1_8000_0000),
        ])
    );
    let cma = region(&map, "linux,cma");
    assert_eq!(cma.kind, RegionKind::Cma);
    assert_eq!(cma.range, PhysRange::new(0x2c00_0000, 64 * MIB));
    assert_eq!(
        map.usable.as_slice(),
        ranges(&[
            (0x1000, 0x8_0000),
            (0x28_0000, 0x800_0000),
            (0x800_c000, 0x2c00_0000),
            (0x3000_0000, 0x3b40_0000),
            (0x4000_0000, 0xfc00_0000),
            (0x1_0000_0000, 0x1_8000_0000),
        ])
    );

    // stdout-path is an alias with options: the mini UART.
    assert_eq!(map.chosen.stdout_options(), Some("115200n8"));
    let stdout = map.chosen.stdout.unwrap();
    assert_eq!(stdout.name, "serial@7e215040");
    assert_eq!(stdout.reg(), Some(PhysRange::new(0xfe21_5040, 0x40)));

    let tree = DeviceTree::new(&dtb).unwrap();
    let pl011 = tree.find_compatible("arm,pl011").unwrap();
    assert_eq!(pl011.reg(), Some(PhysRange::new(0xfe20_1000, 0x200)));
    assert_eq!(pl011.interrupts.iter().collect::<Vec<_>>(), [0, 121, 4]);
    let gic = tree.find_compatible("arm,gic-400").unwrap();
    assert_eq!(
        gic.regs.as_slice(),
        &[
            PhysRange::new(0xff84_1000, 0x1000),
            PhysRange::new(0xff84_2000, 0x2000)
        ]
    );
    assert!(gic.interrupts.is_empty());
    let serial0 = tree.resolve_path("serial0").unwrap();
    assert_eq!(serial0.reg().unwrap().base, 0xfe20_1000);
    let via_alias_path = tree.resolve_path("soc/serial@7e201000:115200").unwrap();
    assert_eq!(via_alias_path.name, "serial@7e201000");
    assert!(tree.resolve_path("serial7").is_none());
    assert_eq!(
        tree.property_at("/soc/serial@7e201000", "reg")
            .map(|p| p.value.len()),
        Some(8)
    );
    assert_eq!(
        tree.property_at("/chosen", "bootargs")
            .and_then(|p| p.as_str()),
        Some("coherent_pool=1M")
    );
    assert_eq!(tree.find_by_path("/").unwrap().name, "");
    assert_eq!(
        tree.find_by_path("/soc/serial").unwrap().name,
        "serial@7e201000"
    );
    assert!(tree.resolve_path("/soc/serial@7e000000").is_none());
}

#[test]
fn bus_without_ranges_is_not_translated() {
    let mut root = pi_root();
    let soc = root.children.iter_mut().find(|n| n.name == "soc").unwrap();
    soc.props.retain(|p| !matches!(p, P::Cells("ranges", _)));
    let dtb = build(&[], &root);
    let tree = DeviceTree::new(&dtb).unwrap();
    let pl011 = tree.find_compatible("arm,pl011").unwrap();
    assert_eq!(pl011.reg(), None);
    assert_eq!(pl011.interrupts.len(), 3);
}

#[test]
fn virt_devices_are_found_by_compatible() {
    let dtb = virt_dtb(vec![]);
    let tree = DeviceTree::new(&dtb).unwrap();
    // The disabled pl011@8000000 comes first in tree order and is skipped.
    let pl011 = tree.find_compatible("arm,pl011").unwrap();
    assert_eq!(pl011.name, "pl011@9000000");
    assert_eq!(pl011.reg(), Some(PhysRange::new(0x900_0000, 0x1000)));
    assert_eq!(pl011.interrupts.get(1), Some(1));
    let gic = tree.find_compatible("arm,cortex-a15-gic").unwrap();
    assert_eq!(gic.regs.len(), 2);
    assert_eq!(gic.regs[1], PhysRange::new(0x801_0000, 0x1_0000));
    let mut virtio = Vec::new();
    tree.for_each_compatible("virtio,mmio", |d| {
        virtio.push((d.reg().unwrap().base, d.interrupts.get(1).unwrap()));
        true
    });
    assert_eq!(virtio, [(0xa00_0000, 16), (0xa00_0200, 17)]);
    assert!(tree.find_compatible("arm,gic-v3").is_none());
}

#[test]
fn console_pl011_prefers_stdout_then_falls_back() {
    let dtb = virt_dtb(vec![]);
    let tree = DeviceTree::new(&dtb).unwrap();
    assert_eq!(
        tree.console_pl011().unwrap().reg().unwrap().base,
        0x900_0000
    );

    // stdout-path names the disabled PL011: fall back to the available one.
    let mut root = virt_root(vec![]);
    let chosen = root
        .children
        .iter_mut()
        .find(|n| n.name == "chosen")
        .unwrap();
    chosen.props[1] = P::Str("stdout-path", "/pl011@8000000:115200n8");
    let dtb = build(&[], &root);
    let map = MemoryMap::parse(&dtb, VIRT_KERNEL, VIRT_DTB).unwrap();
    let stdout = map.chosen.stdout.unwrap();
    assert_eq!(stdout.name, "pl011@8000000");
    assert!(!stdout.available);
    let tree = DeviceTree::new(&dtb).unwrap();
    assert_eq!(tree.console_pl011().unwrap().name, "pl011@9000000");

    // Pi: stdout-path is the mini UART; the PL011 is found behind /soc.
    let dtb = build(&[], &pi_root());
    let tree = DeviceTree::new(&dtb).unwrap();
    let console = tree.console_pl011().unwrap();
    assert!(console.is_compatible("arm,primecell"));
    assert_eq!(console.reg(), Some(PhysRange::new(0xfe20_1000, 0x200)));

    // No PL011 at all.
    let mut root = virt_root(vec![]);
    root.children.retain(|n| !n.name.starts_with("pl011"));
    let dtb = build(&[], &root);
    assert_eq!(DeviceTree::new(&dtb).unwrap().console_pl011(), None);
}

#[test]
fn dynamic_gcma_region_is_typed_gcma() {
    let dtb = virt_dtb(vec![node(
        "gcma",
        vec![
            P::Cells("size", val64(32 * MIB)),
            P::Flag("reusable"),
            P::Flag("guarantee"),
        ],
        vec![],
    )]);
    let map = parse_virt(&dtb);
    let gcma = region(&map, "gcma");
    assert_eq!(gcma.kind, RegionKind::Gcma);
    assert!(gcma.dynamic && !gcma.shared_dma_pool);
    // Top of RAM, below the memreserve entry at 0x7ff00000.
    assert_eq!(gcma.range, PhysRange::new(0x7df0_0000, 32 * MIB));
}

#[test]
fn too_many_memreserve_entries_are_reported() {
    let entries: Vec<(u64, u64)> = (0..MAX_MEMRESERVE as u64 + 1)
        .map(|i| (0x7000_0000 + i * 0x10_0000, 0x1000))
        .collect();
    let dtb = build(&entries, &virt_root(vec![]));
    let map = MemoryMap::parse(&dtb, VIRT_KERNEL, VIRT_DTB).unwrap();
    check_invariants(&map);
    let memreserve = map
        .excluded
        .iter()
        .filter(|e| e.kind == ExcludedKind::MemReserve)
        .count();
    assert_eq!(memreserve, MAX_MEMRESERVE);
    assert_eq!(
        diagnostics(&map),
        [
            "memreserve: node '/memreserve/': more than 16 memreserve entries: still excluded from usable RAM, not listed"
        ]
    );
    // The entry beyond the list is excluded all the same.
    let last = entries[MAX_MEMRESERVE];
    assert_not_usable(&map, PhysRange::new(last.0, last.1));
}

// ---- bad regions: diagnostic, skipped, the rest still parses -----------

/// Parses a virt tree with the good GCMA region plus `extra`; checks that
/// the GCMA region survived and returns the diagnostics.
fn virt_with(extra: Vec<N>) -> (Vec<u8>, Vec<String>) {
    let mut reserved = vec![gcma_static()];
    reserved.extend(extra);
    let dtb = virt_dtb(reserved);
    let lines = {
        let map = parse_virt(&dtb);
        assert_eq!(
            region(&map, "gcma@50000000").range,
            PhysRange::new(0x5000_0000, 16 * MIB)
        );
        diagnostics(&map)
    };
    (dtb, lines)
}

fn only_problem(extra: N) -> Problem<'static> {
    let name = extra.name.clone();
    let dtb = virt_dtb(vec![gcma_static(), extra]);
    let map = parse_virt(&dtb);
    assert_eq!(region(&map, "gcma@50000000").kind, RegionKind::Gcma);
    assert!(
        map.reserved.iter().all(|r| r.name != name),
        "{name} should be skipped"
    );
    assert_eq!(map.diagnostics.len(), 1, "{:?}", diagnostics(&map));
    let d = map.diagnostics[0];
    assert_eq!(d.node, name);
    assert_eq!(d.area, Area::ReservedMemory);
    // Problems borrow only names, which are compared above.
    match d.problem {
        Problem::Overlaps { .. } => panic!("use virt_with for overlaps"),
        Problem::MissingRegAndSize => Problem::MissingRegAndSize,
        Problem::MalformedProperty {
            property,
            len,
            expected,
            multiple,
        } => Problem::MalformedProperty {
            property,
            len,
            expected,
            multiple,
        },
        Problem::UnsupportedCells {
            address_cells,
            size_cells,
        } => Problem::UnsupportedCells {
            address_cells,
            size_cells,
        },
        Problem::ZeroSize => Problem::ZeroSize,
        Problem::Wraps { base, size } => Problem::Wraps { base, size },
        Problem::AlignmentNotPowerOfTwo { alignment } => {
            Problem::AlignmentNotPowerOfTwo { alignment }
        }
        Problem::Misaligned { base, alignment } => Problem::Misaligned { base, alignment },
        Problem::PartialPage { end } => Problem::PartialPage { end },
        Problem::NoMapWithReusable => Problem::NoMapWithReusable,
        Problem::OutsideRam { region, partly } => Problem::OutsideRam { region, partly },
        Problem::OverlapsExcluded {
            region,
            what,
            excluded,
        } => Problem::OverlapsExcluded {
            region,
            what,
            excluded,
        },
        Problem::CannotPlace { size, alignment } => Problem::CannotPlace { size, alignment },
        Problem::TooMany { what, capacity } => Problem::TooMany { what, capacity },
        Problem::GuaranteeWithoutReusable => Problem::GuaranteeWithoutReusable,
    }
}

/// Two lent regions overlap: neither is an area (each would lend the
/// other's bytes), and both stay out of usable RAM. The old rule kept the
/// first and handed the second's pages back as usable RAM.
#[test]
fn overlapping_lent_regions_are_both_excluded() {
    let dtb = virt_dtb(vec![
        static_region(
            "gcma@47800000",
            0x4780_0000,
            16 * MIB,
            &["reusable", "guarantee"],
        ),
        static_region("cma@48000000", 0x4800_0000, 16 * MIB, &["reusable"]),
        static_region("carveout@60000000", 0x6000_0000, MIB, &[]),
    ]);
    let map = parse_virt(&dtb);
    assert_eq!(
        diagnostics(&map),
        [
            "reserved-memory: node 'gcma@47800000': region 0x47800000..0x48800000 overlaps 'cma@48000000': excluded from usable RAM, not used as an area",
            "reserved-memory: node 'cma@48000000': region 0x48000000..0x49000000 overlaps 'gcma@47800000': excluded from usable RAM, not used as an area"
        ]
    );
    assert_eq!(
        map.diagnostics[1].problem,
        Problem::Overlaps {
            region: PhysRange::new(0x4800_0000, 16 * MIB),
            other: "gcma@47800000"
        }
    );
    let names: Vec<_> = map.reserved.iter().map(|r| r.name).collect();
    assert_eq!(names, ["carveout@60000000"]);
    // Both are listed as excluded, with their reason, and nothing of
    // 0x47800000..0x49000000 is usable.
    let refused: Vec<_> = map
        .excluded
        .iter()
        .filter(|e| e.kind == ExcludedKind::Refused)
        .map(|e| (e.name, e.range, e.reason))
        .collect();
    assert_eq!(
        refused,
        [
            (
                "gcma@47800000",
                PhysRange::new(0x4780_0000, 16 * MIB),
                Some(Problem::Overlaps {
                    region: PhysRange::new(0x4780_0000, 16 * MIB),
                    other: "cma@48000000"
                })
            ),
            (
                "cma@48000000",
                PhysRange::new(0x4800_0000, 16 * MIB),
                Some(map.diagnostics[1].problem)
            ),
        ]
    );
    assert_not_usable(&map, PhysRange::from_bounds(0x4780_0000, 0x4900_0000));
}

/// A carveout overlapping a firmware region is refused as well: the demo
/// would hand the firmware's bytes to its user. The firmware region stays
/// firmware's, both are excluded.
#[test]
fn carveout_overlapping_anything_is_excluded() {
    let dtb = virt_dtb(vec![
        static_region("tz@60000000", 0x6000_0000, 2 * MIB, &["no-map"]),
        static_region("pool@60100000", 0x6010_0000, 2 * MIB, &[]),
        static_region("ok@70000000", 0x7000_0000, MIB, &[]),
    ]);
    let map = parse_virt(&dtb);
    assert_eq!(
        diagnostics(&map),
        [
            "reserved-memory: node 'pool@60100000': region 0x60100000..0x60300000 overlaps 'tz@60000000': excluded from usable RAM, not used as an area"
        ]
    );
    let names: Vec<_> = map.reserved.iter().map(|r| r.name).collect();
    assert_eq!(names, ["ok@70000000"]);
    let kinds: Vec<_> = map
        .excluded
        .iter()
        .skip(3)
        .map(|e| (e.name, e.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("tz@60000000", ExcludedKind::Firmware),
            ("pool@60100000", ExcludedKind::Refused)
        ]
    );
    assert_not_usable(&map, PhysRange::from_bounds(0x6000_0000, 0x6030_0000));
}

#[test]
fn region_outside_ram_is_skipped() {
    assert_eq!(
        only_problem(static_region("far@90000000", 0x9000_0000, MIB, &[])),
        Problem::OutsideRam {
            region: PhysRange::new(0x9000_0000, MIB),
            partly: false
        }
    );
    assert_eq!(
        only_problem(static_region("edge@7fc00000", 0x7fc0_0000, 8 * MIB, &[])),
        Problem::OutsideRam {
            region: PhysRange::new(0x7fc0_0000, 8 * MIB),
            partly: true
        }
    );
    let (_, lines) = virt_with(vec![static_region(
        "edge@7fc00000",
        0x7fc0_0000,
        8 * MIB,
        &[],
    )]);
    assert_eq!(
        lines,
        [
            "reserved-memory: node 'edge@7fc00000': region 0x7fc00000..0x80400000 is partly outside RAM: excluded from usable RAM, not used as an area"
        ]
    );
    // The part inside RAM stays excluded (the old rule handed it out).
    let dtb = virt_dtb(vec![static_region(
        "edge@7fc00000",
        0x7fc0_0000,
        8 * MIB,
        &[],
    )]);
    let map = parse_virt(&dtb);
    assert_not_usable(&map, PhysRange::from_bounds(0x7fc0_0000, 0x8000_0000));
    let edge = map
        .excluded
        .iter()
        .find(|e| e.name == "edge@7fc00000")
        .unwrap();
    assert_eq!(edge.kind, ExcludedKind::Refused);
    assert_eq!(edge.range, PhysRange::new(0x7fc0_0000, 8 * MIB));
}

#[test]
fn zero_size_is_skipped() {
    assert_eq!(
        only_problem(static_region("empty@60000000", 0x6000_0000, 0, &[])),
        Problem::ZeroSize
    );
    assert_eq!(
        only_problem(node("empty", vec![P::Cells("size", val64(0))], vec![])),
        Problem::ZeroSize
    );
}

/// `alignment` matters for dynamic regions only: Linux ignores it for
/// static ones (the old rule skipped `odd` and `under` below and handed
/// their memory out). A static base or end off a page boundary refuses the
/// region and excludes every page it touches.
#[test]
fn bad_alignment_is_skipped() {
    let mut odd = static_region("odd@60000000", 0x6000_0000, MIB, &[]);
    odd.props.push(P::Cells("alignment", val64(0x3000)));
    let mut short = static_region("short@60200000", 0x6020_0000, MIB, &[]);
    short.props.push(P::Raw("alignment", vec![0, 0x10, 0]));
    let mut under = static_region("under@60100000", 0x6010_0000, MIB, &[]);
    under.props.push(P::Cells("alignment", val64(2 * MIB)));
    let (dtb, lines) = virt_with(vec![odd, short, under]);
    assert!(lines.is_empty(), "{lines:?}");
    let map = parse_virt(&dtb);
    for name in ["odd@60000000", "short@60200000", "under@60100000"] {
        assert_eq!(region(&map, name).kind, RegionKind::Carveout);
    }
    assert_eq!(
        only_problem(node(
            "dyn-odd",
            vec![
                P::Cells("size", val64(MIB)),
                P::Cells("alignment", val64(0x3000))
            ],
            vec![]
        )),
        Problem::AlignmentNotPowerOfTwo { alignment: 0x3000 }
    );
    assert_eq!(
        only_problem(static_region("unpaged@60000800", 0x6000_0800, MIB, &[])),
        Problem::Misaligned {
            base: 0x6000_0800,
            alignment: PAGE_SIZE
        }
    );
    let dtb = virt_dtb(vec![
        gcma_static(),
        static_region("unpaged@60000800", 0x6000_0800, MIB, &[]),
        static_region("ragged@61000000", 0x6100_0000, MIB + 1, &[]),
    ]);
    let map = parse_virt(&dtb);
    assert_eq!(
        diagnostics(&map),
        [
            "reserved-memory: node 'unpaged@60000800': base 0x60000800 is not aligned to 0x1000: excluded from usable RAM, not used as an area",
            "reserved-memory: node 'ragged@61000000': end 0x61100001 is not aligned to 0x1000: excluded from usable RAM, not used as an area"
        ]
    );
    assert_not_usable(&map, PhysRange::from_bounds(0x6000_0000, 0x6010_1000));
    assert_not_usable(&map, PhysRange::from_bounds(0x6100_0000, 0x6110_1000));
    assert!(map.usable.iter().any(|u| u.end() == 0x6000_0000));
    assert!(map.usable.iter().any(|u| u.base == 0x6010_1000));
    assert!(map.usable.iter().any(|u| u.base == 0x6110_1000));
}

#[test]
fn no_map_with_reusable_is_skipped() {
    assert_eq!(
        only_problem(static_region(
            "both@60000000",
            0x6000_0000,
            MIB,
            &["no-map", "reusable"]
        )),
        Problem::NoMapWithReusable
    );
    let (_, lines) = virt_with(vec![node(
        "dyn-both",
        vec![
            P::Cells("size", val64(MIB)),
            P::Flag("no-map"),
            P::Flag("reusable"),
        ],
        vec![],
    )]);
    assert_eq!(
        lines,
        ["reserved-memory: node 'dyn-both': 'no-map' and 'reusable' both set: skipped"]
    );
    // The static one is not an area, but its memory stays excluded, listed
    // with its reason, and out of the MMU's map (the old rule handed it out).
    let dtb = virt_dtb(vec![static_region(
        "both@60000000",
        0x6000_0000,
        MIB,
        &["no-map", "reusable"],
    )]);
    let map = parse_virt(&dtb);
    assert_not_usable(&map, PhysRange::new(0x6000_0000, MIB));
    let both = map
        .excluded
        .iter()
        .find(|e| e.name == "both@60000000")
        .unwrap();
    assert_eq!(
        (both.kind, both.no_map, both.reason),
        (
            ExcludedKind::Refused,
            true,
            Some(Problem::NoMapWithReusable)
        )
    );
    assert!(
        map.no_map_ranges()
            .any(|r| r == PhysRange::new(0x6000_0000, MIB))
    );
}

/// `no-map` without `shared-dma-pool` is memory firmware owns: excluded and
/// listed as such, unmapped, never a carveout (the old rule made it one),
/// with no warning. Fifty of them, as Qualcomm trees have, all fit.
#[test]
fn firmware_regions_are_excluded_not_carveouts() {
    let mut nodes: Vec<N> = (0..50u64)
        .map(|i| {
            let base = 0x6000_0000 + i * 2 * MIB;
            static_region(&std::format!("fw@{base:x}"), base, MIB, &["no-map"])
        })
        .collect();
    // Firmware regions may overlap one another (Linux reserves both).
    nodes.push(static_region(
        "fw-all@60000000",
        0x6000_0000,
        4 * MIB,
        &["no-map"],
    ));
    nodes.push(node(
        "fw-dynamic",
        vec![P::Cells("size", val64(MIB)), P::Flag("no-map")],
        vec![],
    ));
    nodes.push(gcma_static());
    let dtb = virt_dtb(nodes);
    let map = parse_virt(&dtb);
    assert!(map.diagnostics.is_empty(), "{:?}", diagnostics(&map));
    let names: Vec<_> = map.reserved.iter().map(|r| r.name).collect();
    assert_eq!(names, ["gcma@50000000"]);
    let firmware: Vec<_> = map
        .excluded
        .iter()
        .filter(|e| e.kind == ExcludedKind::Firmware)
        .collect();
    assert_eq!(firmware.len(), 52);
    assert!(firmware.iter().all(|e| e.no_map && e.reason.is_none()));
    assert_eq!(firmware[50].range, PhysRange::new(0x6000_0000, 4 * MIB));
    // The dynamic one is placed at the top of free RAM, below memreserve.
    assert_eq!(firmware[51].range, PhysRange::new(0x7fe0_0000, MIB));
    for fw in &firmware {
        assert_not_usable(&map, fw.range);
    }
    assert!(
        map.usable
            .iter()
            .any(|u| *u == PhysRange::new(0x6070_0000, MIB))
    );
    assert_eq!(map.no_map_ranges().count(), 52);
    assert_eq!(map.total_reserved(RegionKind::Carveout), 0);
    let machine = MachineLines(&map).to_string();
    assert!(
        machine.lines().any(|l| l
            == "@excluded name=fw@60000000 kind=firmware base=0x60000000 size=0x100000 no-map=1")
    );
    let table = Table(&map).to_string();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("  fw@60000000 ") && l.ends_with("  firmware (no-map)"))
    );
}

/// A `reg` whose length is not a whole number of entries: the whole
/// entries are still excluded (not areas), the line says so.
#[test]
fn partial_reg_still_excludes_its_whole_entries() {
    let mut cells = pairs64(&[(0x6000_0000, MIB)]);
    cells.extend([0, 0x6100_0000]);
    let dtb = virt_dtb(vec![node(
        "ragged@60000000",
        vec![P::Cells("reg", cells)],
        vec![],
    )]);
    let map = parse_virt(&dtb);
    assert_eq!(
        diagnostics(&map),
        [
            "reserved-memory: node 'ragged@60000000': property 'reg' is 24 bytes, expected a non-zero multiple of 16: excluded from usable RAM, not used as an area"
        ]
    );
    assert_not_usable(&map, PhysRange::new(0x6000_0000, MIB));
}

#[test]
fn unplaceable_dynamic_region_is_skipped() {
    assert_eq!(
        only_problem(node("huge", vec![P::Cells("size", val64(2 << 30))], vec![])),
        Problem::CannotPlace {
            size: 2 << 30,
            alignment: PAGE_SIZE
        }
    );
    // alloc-ranges entirely outside RAM.
    assert_eq!(
        only_problem(node(
            "nowhere",
            vec![
                P::Cells("size", val64(MIB)),
                P::Cells("alloc-ranges", pairs64(&[(0x1000_0000, 0x1000_0000)])),
            ],
            vec![]
        )),
        Problem::CannotPlace {
            size: MIB,
            alignment: PAGE_SIZE
        }
    );
    // alloc-ranges fully taken by the GCMA region.
    assert_eq!(
        only_problem(node(
            "taken",
            vec![
                P::Cells("size", val64(MIB)),
                P::Cells("alignment", val64(MIB)),
                P::Cells("alloc-ranges", pairs64(&[(0x5000_0000, 16 * MIB)])),
            ],
            vec![]
        )),
        Problem::CannotPlace {
            size: MIB,
            alignment: MIB
        }
    );
}

#[test]
fn overlapping_kernel_dtb_or_memreserve_is_skipped() {
    assert_eq!(
        only_problem(static_region("onkernel@40300000", 0x4030_0000, MIB, &[])),
        Problem::OverlapsExcluded {
            region: PhysRange::new(0x4030_0000, MIB),
            what: ExcludedKind::KernelImage,
            excluded: VIRT_KERNEL
        }
    );
    assert_eq!(
        only_problem(static_region("ondtb@40000000", 0x4000_0000, MIB, &[])),
        Problem::OverlapsExcluded {
            region: PhysRange::new(0x4000_0000, MIB),
            what: ExcludedKind::Dtb,
            excluded: VIRT_DTB
        }
    );
    let (_, lines) = virt_with(vec![static_region(
        "onrsv@7fe00000",
        0x7fe0_0000,
        2 * MIB,
        &[],
    )]);
    assert_eq!(
        lines,
        [
            "reserved-memory: node 'onrsv@7fe00000': region 0x7fe00000..0x80000000 overlaps the memreserve at 0x7ff00000..0x7ff10000: excluded from usable RAM, not used as an area"
        ]
    );
    let dtb = virt_dtb(vec![static_region(
        "onkernel@40300000",
        0x4030_0000,
        MIB,
        &[],
    )]);
    let map = parse_virt(&dtb);
    assert_not_usable(&map, PhysRange::new(0x4030_0000, MIB));
}

/// Past a capacity, a region is no longer an area but its memory stays
/// excluded (the old rule handed it out).
#[test]
fn too_many_regions_are_skipped() {
    // Real trees (Qualcomm) have up to 50 reserved-memory children.
    const { assert!(MAX_RESERVED_NODES >= 128 && MAX_RESERVED_REGIONS >= 128) };
    // One node with more reg entries than MAX_RESERVED_REGIONS.
    let entries: Vec<(u64, u64)> = (0..MAX_RESERVED_REGIONS as u64 + 3)
        .map(|i| (0x6000_0000 + i * MIB, 0x1000))
        .collect();
    let many = node(
        "many@60000000",
        vec![P::Cells("reg", pairs64(&entries))],
        vec![],
    );
    let dtb = virt_dtb(vec![many]);
    let map = parse_virt(&dtb);
    assert_eq!(map.reserved.len(), MAX_RESERVED_REGIONS);
    assert_eq!(map.diagnostics.len(), 3);
    assert_eq!(
        map.diagnostics[0].to_string(),
        std::format!(
            "reserved-memory: node 'many@60000000': more than {MAX_RESERVED_REGIONS} reserved regions: excluded from usable RAM, not used as an area"
        )
    );
    for &(base, size) in &entries[MAX_RESERVED_REGIONS..] {
        assert_not_usable(&map, PhysRange::new(base, size));
        assert!(map.excluded.iter().any(|e| e.range.base == base));
    }

    // More nodes than MAX_RESERVED_NODES.
    let names: Vec<String> = (0..MAX_RESERVED_NODES + 2)
        .map(|i| std::format!("r@{:x}", 0x6000_0000 + i as u64 * MIB))
        .collect();
    let nodes: Vec<N> = names
        .iter()
        .enumerate()
        .map(|(i, name)| static_region(name, 0x6000_0000 + i as u64 * MIB, 0x1000, &[]))
        .collect();
    let dtb = virt_dtb(nodes);
    let map = parse_virt(&dtb);
    assert_eq!(map.reserved.len(), MAX_RESERVED_NODES);
    assert_eq!(map.diagnostics.len(), 2);
    assert_eq!(map.diagnostics[1].node, names[MAX_RESERVED_NODES + 1]);
    assert_eq!(
        map.diagnostics[1].problem,
        Problem::TooMany {
            what: "reserved-memory nodes",
            capacity: MAX_RESERVED_NODES
        }
    );
    assert_eq!(map.diagnostics[1].outcome, Outcome::Excluded);
    for (i, name) in names.iter().enumerate().skip(MAX_RESERVED_NODES) {
        let base = 0x6000_0000 + i as u64 * MIB;
        assert_not_usable(&map, PhysRange::new(base, 0x1000));
        let listed = map.excluded.iter().find(|e| e.name == name).unwrap();
        assert_eq!(listed.range, PhysRange::new(base, 0x1000));
    }
}

/// Every list full at once (a hostile tree): more static entries than can
/// be compared for overlaps, than regions, than excluded ranges, than
/// diagnostics. No static range becomes an area and every one stays out of
/// usable RAM.
#[test]
fn full_lists_never_release_memory() {
    let count = 2 * MAX_RESERVED_REGIONS + 1;
    let entries: Vec<(u64, u64)> = (0..count as u64)
        .map(|i| (0x6000_0000 + i * 0x2000, 0x1000))
        .collect();
    let many = node(
        "many@60000000",
        vec![P::Cells("reg", pairs64(&entries))],
        vec![],
    );
    let dtb = virt_dtb(vec![gcma_static(), many, cma_dynamic()]);
    let map = parse_virt(&dtb);
    // The dynamic CMA region is still placed; no static one is an area.
    let names: Vec<_> = map.reserved.iter().map(|r| r.name).collect();
    assert_eq!(names, ["linux,cma"]);
    for &(base, size) in &entries {
        assert_not_usable(&map, PhysRange::new(base, size));
    }
    assert_not_usable(&map, PhysRange::new(0x5000_0000, 16 * MIB));
    assert!(map.excluded.is_full());
    assert_eq!(
        map.diagnostics[0].to_string(),
        std::format!(
            "reserved-memory: node 'gcma@50000000': more than {} static ranges to compare: excluded from usable RAM, not used as an area",
            2 * MAX_RESERVED_REGIONS
        )
    );
    // One line per range: the later ones (the excluded list full among
    // them) are counted, not kept.
    assert_eq!(map.diagnostics.len(), MAX_DIAGNOSTICS);
    assert!(map.diagnostics_dropped > 0);
    assert!(Table(&map).to_string().contains("more problems not kept"));
}

/// 150 firmware nodes: the 22 beyond MAX_RESERVED_NODES are excluded by
/// a second walk, and those that no longer fit the excluded list are
/// excluded all the same, each with a line that says so.
#[test]
fn excluded_list_full_still_excludes() {
    let nodes: Vec<N> = (0..150u64)
        .map(|i| {
            let base = 0x6000_0000 + i * 2 * MIB;
            static_region(&std::format!("fw@{base:x}"), base, MIB, &["no-map"])
        })
        .collect();
    let dtb = virt_dtb(nodes);
    let map = parse_virt(&dtb);
    for i in 0..150u64 {
        assert_not_usable(&map, PhysRange::new(0x6000_0000 + i * 2 * MIB, MIB));
    }
    assert_eq!(map.excluded.len(), MAX_EXCLUDED);
    let outcomes: Vec<Outcome> = map.diagnostics.iter().map(|d| d.outcome).collect();
    let unlisted = 3 + 150 - MAX_EXCLUDED;
    assert_eq!(outcomes.len(), 150 - MAX_RESERVED_NODES + unlisted);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::ExcludedUnlisted)
            .count(),
        unlisted
    );
    assert_eq!(
        map.diagnostics[0].to_string(),
        std::format!(
            "reserved-memory: node 'fw@{:x}': more than {MAX_RESERVED_NODES} reserved-memory nodes: excluded from usable RAM, not used as an area",
            0x6000_0000 + MAX_RESERVED_NODES as u64 * 2 * MIB
        )
    );
    let last = map.diagnostics.last().unwrap().to_string();
    assert_eq!(
        last,
        std::format!(
            "reserved-memory: node 'fw@{:x}': more than {MAX_EXCLUDED} excluded ranges: still excluded from usable RAM, not listed",
            0x6000_0000 + 149 * 2 * MIB
        )
    );
}

#[test]
fn malformed_properties_are_skipped() {
    assert_eq!(
        only_problem(node(
            "shortreg@60000000",
            vec![P::Cells("reg", vec![0, 0x6000_0000, 0])],
            vec![]
        )),
        Problem::MalformedProperty {
            property: "reg",
            len: 12,
            expected: 16,
            multiple: true
        }
    );
    assert_eq!(
        only_problem(node(
            "shortsize",
            vec![P::Cells("size", vec![0x10_0000])],
            vec![]
        )),
        Problem::MalformedProperty {
            property: "size",
            len: 4,
            expected: 8,
            multiple: false
        }
    );
    assert_eq!(
        only_problem(node(
            "badalign",
            vec![
                P::Cells("size", val64(MIB)),
                P::Raw("alignment", vec![0, 0x10, 0])
            ],
            vec![]
        )),
        Problem::MalformedProperty {
            property: "alignment",
            len: 3,
            expected: 8,
            multiple: false
        }
    );
    assert_eq!(
        only_problem(node(
            "badranges",
            vec![
                P::Cells("size", val64(MIB)),
                P::Cells("alloc-ranges", vec![0, 0x6000_0000, 0x100_0000])
            ],
            vec![]
        )),
        Problem::MalformedProperty {
            property: "alloc-ranges",
            len: 12,
            expected: 16,
            multiple: true
        }
    );
    assert_eq!(
        only_problem(node("nothing", vec![P::Flag("reusable")], vec![])),
        Problem::MissingRegAndSize
    );
    let (_, lines) = virt_with(vec![node(
        "shortsize",
        vec![P::Cells("size", vec![1])],
        vec![],
    )]);
    assert_eq!(
        lines,
        ["reserved-memory: node 'shortsize': property 'size' is 4 bytes, expected 8: skipped"]
    );
}

#[test]
fn wrapping_region_is_skipped() {
    assert_eq!(
        only_problem(static_region(
            "wrap@fffff000",
            u64::MAX - 0xfff,
            0x2000,
            &[]
        )),
        Problem::Wraps {
            base: u64::MAX - 0xfff,
            size: 0x2000
        }
    );
}

#[test]
fn guarantee_without_reusable_is_kept_as_carveout() {
    let dtb = virt_dtb(vec![static_region(
        "odd@60000000",
        0x6000_0000,
        MIB,
        &["guarantee"],
    )]);
    let map = parse_virt(&dtb);
    assert_eq!(region(&map, "odd@60000000").kind, RegionKind::Carveout);
    assert_eq!(
        diagnostics(&map),
        [
            "reserved-memory: node 'odd@60000000': 'guarantee' without 'reusable': kept as a static carveout"
        ]
    );
}

#[test]
fn malformed_memory_node_is_skipped_and_others_used() {
    let mut root = virt_root(vec![]);
    root.children.push(node(
        "memory@c0000000",
        vec![
            P::Str("device_type", "memory"),
            P::Cells("reg", vec![0, 0xc000_0000, 0]),
        ],
        vec![],
    ));
    let dtb = build(&[], &root);
    let map = MemoryMap::parse(&dtb, PhysRange::default(), PhysRange::default()).unwrap();
    assert_eq!(map.ram.as_slice(), &[VIRT_RAM]);
    assert_eq!(
        diagnostics(&map),
        [
            "memory: node 'memory@c0000000': property 'reg' is 12 bytes, expected a non-zero multiple of 16: skipped"
        ]
    );
    // No exclusions: the whole of RAM is usable.
    assert_eq!(map.usable.as_slice(), &[VIRT_RAM]);
}

#[test]
fn overlapping_and_touching_ram_ranges_merge() {
    let mut root = virt_root(vec![]);
    root.children.push(node(
        "memory@80000000",
        vec![
            P::Str("device_type", "memory"),
            P::Cells(
                "reg",
                pairs64(&[(0x8000_0000, 0x1000_0000), (0x7000_0000, 0x2000_0000)]),
            ),
        ],
        vec![],
    ));
    let dtb = build(&[], &root);
    let map = MemoryMap::parse(&dtb, PhysRange::default(), PhysRange::default()).unwrap();
    assert_eq!(map.ram.as_slice(), ranges(&[(0x4000_0000, 0x9000_0000)]));
}

// ---- fatal errors ------------------------------------------------------

#[test]
fn no_memory_node_is_fatal() {
    let mut root = virt_root(vec![gcma_static()]);
    root.children.retain(|n| !n.name.starts_with("memory"));
    let dtb = build(&[], &root);
    let error = MemoryMap::parse(&dtb, VIRT_KERNEL, VIRT_DTB).unwrap_err();
    assert_eq!(error, FatalError::NoMemory);
    assert!(error.to_string().contains("no usable memory node"));

    // A memory node whose only range is empty does not count either.
    let mut root = virt_root(vec![]);
    root.children[0].props[1] = P::Cells("reg", pairs64(&[(0x4000_0000, 0)]));
    let dtb = build(&[], &root);
    assert_eq!(
        MemoryMap::parse(&dtb, VIRT_KERNEL, VIRT_DTB).unwrap_err(),
        FatalError::NoMemory
    );
}

#[test]
fn blobs_that_do_not_parse_are_fatal() {
    let good = virt_dtb(vec![gcma_static()]);
    assert_eq!(
        MemoryMap::parse(&good[..20], VIRT_KERNEL, VIRT_DTB).unwrap_err(),
        FatalError::Truncated {
            needed: 40,
            available: 20
        }
    );
    let short = &good[..good.len() - 1];
    assert!(matches!(
        MemoryMap::parse(short, VIRT_KERNEL, VIRT_DTB),
        Err(FatalError::Truncated { .. })
    ));
    let mut magic = good.clone();
    magic[0] = 0;
    let error = MemoryMap::parse(&magic, VIRT_KERNEL, VIRT_DTB).unwrap_err();
    assert_eq!(error, FatalError::BadMagic);
    assert_eq!(
        error.to_string(),
        "not a device tree: bad magic (expected 0xd00dfeed)"
    );
    // An unknown token where the root node should begin.
    let mut token = good.clone();
    let off_struct = u32::from_be_bytes(good[8..12].try_into().unwrap()) as usize;
    token[off_struct..off_struct + 4].copy_from_slice(&7u32.to_be_bytes());
    let error = MemoryMap::parse(&token, VIRT_KERNEL, VIRT_DTB).unwrap_err();
    assert_eq!(
        error,
        FatalError::Structure {
            offset: 0,
            what: "unknown token"
        }
    );
    assert_eq!(
        error.to_string(),
        "device tree does not parse: unknown token (structure offset 0x0)"
    );
}

#[test]
fn total_size_is_read_from_the_header() {
    let good = virt_dtb(vec![]);
    assert_eq!(dtb_total_size(&good[..FDT_HEADER_SIZE]), Ok(good.len()));
    assert_eq!(
        dtb_total_size(&good[..8]),
        Err(FatalError::Truncated {
            needed: 40,
            available: 8
        })
    );
    assert_eq!(dtb_total_size(&[0u8; 40]), Err(FatalError::BadMagic));
}

#[test]
fn memreserve_entries_are_read() {
    let dtb = build(&[(0x1000, 0x2000), (0x5000_0000, 0x10)], &virt_root(vec![]));
    let tree = DeviceTree::new(&dtb).unwrap();
    let entries: Vec<_> = tree.memreserve().collect();
    assert_eq!(
        entries,
        [
            PhysRange::new(0x1000, 0x2000),
            PhysRange::new(0x5000_0000, 0x10)
        ]
    );
}

/// xorshift64*: deterministic pseudo-random numbers for the mutation test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_mutations_never_panic() {
    let good = build(
        &[VIRT_MEMRESERVE],
        &virt_root(vec![gcma_static(), cma_dynamic(), carveout_static()]),
    );
    let pi = build(&[(0, 0x1000)], &pi_root());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut parsed, mut rejected) = (0, 0);
    for round in 0..6000 {
        let source = if round % 2 == 0 { &good } else { &pi };
        let mut blob = source.clone();
        for _ in 0..1 + rng.below(8) {
            let i = rng.below(blob.len());
            blob[i] = match rng.below(4) {
                0 => rng.next() as u8,
                1 => blob[i] ^ (1 << rng.below(8)),
                2 => 0,
                _ => 0xff,
            };
        }
        if rng.below(10) == 0 {
            blob.truncate(rng.below(blob.len()));
        }
        let mut out = String::new();
        match MemoryMap::parse(&blob, VIRT_KERNEL, VIRT_DTB) {
            Ok(map) => {
                parsed += 1;
                check_invariants(&map);
                check_claims_excluded(&blob, &map);
                use core::fmt::Write;
                write!(out, "{}{}", Table(&map), MachineLines(&map)).unwrap();
                for d in map.diagnostics.iter() {
                    write!(out, "{d}").unwrap();
                }
            }
            Err(error) => {
                rejected += 1;
                out = error.to_string();
            }
        }
        assert!(!out.is_empty());
        if let Ok(tree) = DeviceTree::new(&blob) {
            for compatible in ["arm,pl011", "arm,gic-400", "virtio,mmio"] {
                let _ = tree.find_compatible(compatible);
            }
            let _ = tree.resolve_path("serial1:115200n8");
            let _ = tree.resolve_path("/pl011@9000000");
            let _ = tree.memreserve().count();
        }
    }
    // Both outcomes must be exercised for the test to mean anything.
    assert!(
        parsed > 500 && rejected > 500,
        "parsed {parsed}, rejected {rejected}"
    );
}

// ---- printing ----------------------------------------------------------

#[test]
fn human_sizes() {
    let cases = [
        (0, "0 B"),
        (512, "512 B"),
        (4096, "4 KiB"),
        (0x1800, "6 KiB"),
        (0x1234, "4.5 KiB"),
        (16 * MIB, "16 MiB"),
        (1 << 30, "1 GiB"),
        (3 << 29, "1.5 GiB"),
        (u64::MAX, "15.9 EiB"),
    ];
    for (bytes, text) in cases {
        assert_eq!(HumanSize(bytes).to_string(), text, "{bytes:#x}");
    }
}

#[test]
fn table_and_machine_lines() {
    let dtb = virt_dtb(vec![gcma_static(), cma_dynamic(), carveout_static()]);
    let map = parse_virt(&dtb);
    let table = Table(&map).to_string();
    std::println!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "RAM");
    assert!(lines.contains(
        &"  gcma@50000000      gcma      0x0000000050000000  0x0000000051000000  0x1000000 (16 MiB)            reusable,guarantee,shared-dma-pool"
    ));
    assert!(lines.contains(
        &"  linux,cma          cma       0x000000006f000000  0x0000000070000000  0x1000000 (16 MiB)            reusable,dynamic,shared-dma-pool"
    ));
    assert!(lines.contains(
        &"  carveout@58000000  carveout  0x0000000058000000  0x0000000058800000  0x800000 (8 MiB)              no-map,shared-dma-pool"
    ));
    assert!(lines.contains(
        &"  memreserve         0x000000007ff00000  0x000000007ff10000  0x10000 (64 KiB)"
    ));
    assert!(lines.contains(
        &"                     0x0000000040000000  0x0000000080000000  0x40000000 (1 GiB)"
    ));
    assert_eq!(
        *lines.last().unwrap(),
        "totals: RAM 1 GiB, gcma 16 MiB, cma 16 MiB, carveout 8 MiB, excluded 2.0 MiB, usable 981.9 MiB"
    );
    // Every reserved-region row starts its base column at the same place.
    let start = lines.iter().position(|l| *l == "reserved regions").unwrap();
    let header = lines[start + 1];
    let base_column = header.find("base").unwrap();
    for row in &lines[start + 2..start + 5] {
        assert_eq!(row.find("0x"), Some(base_column), "{row}");
    }

    let machine = MachineLines(&map).to_string();
    let expected_regions = [
        "@region name=gcma@50000000 kind=gcma base=0x50000000 size=0x1000000 flags=reusable,guarantee,shared-dma-pool",
        "@region name=carveout@58000000 kind=carveout base=0x58000000 size=0x800000 flags=no-map,shared-dma-pool",
        "@region name=linux,cma kind=cma base=0x6f000000 size=0x1000000 flags=reusable,dynamic,shared-dma-pool",
    ];
    let got: Vec<&str> = machine
        .lines()
        .filter(|l| l.starts_with("@region "))
        .collect();
    assert_eq!(got, expected_regions);
    assert!(
        machine
            .lines()
            .any(|l| l == "@ram base=0x40000000 size=0x40000000")
    );
    assert_eq!(
        machine
            .lines()
            .filter(|l| l.starts_with("@usable "))
            .count(),
        6
    );
}

#[test]
fn table_lists_diagnostics() {
    let dtb = virt_dtb(vec![static_region("far@90000000", 0x9000_0000, MIB, &[])]);
    let map = parse_virt(&dtb);
    let table = Table(&map).to_string();
    assert!(table.lines().any(|l| l
        == "warning: reserved-memory: node 'far@90000000': region 0x90000000..0x90100000 is outside RAM: skipped"));
}

/// A real blob, by hand: `PHYSMAP_DTB=/tmp/x.dtb cargo test -p physmap
/// --target x86_64-unknown-linux-gnu -- --ignored --nocapture real_dtb`
/// (for example from `qemu-system-aarch64 -machine virt,dumpdtb=/tmp/x.dtb`
/// or Debian's bcm2711-rpi-4-b.dtb). Ignored because the file is not in the
/// repository.
#[test]
#[ignore = "needs PHYSMAP_DTB=<path to a .dtb>"]
fn real_dtb() {
    let path = std::env::var("PHYSMAP_DTB").expect("set PHYSMAP_DTB to a .dtb path");
    let blob = std::fs::read(&path).expect("readable dtb");
    let size = dtb_total_size(&blob).expect("header");
    let blob = &blob[..size];
    let map = MemoryMap::parse(blob, PhysRange::default(), PhysRange::default())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    check_invariants(&map);
    std::println!("{}{}", Table(&map), MachineLines(&map));
    std::println!("chosen: {:?}", map.chosen);
    let tree = DeviceTree::new(blob).unwrap();
    for compatible in [
        "arm,pl011",
        "virtio,mmio",
        "arm,gic-400",
        "arm,cortex-a15-gic",
        "arm,gic-v3",
    ] {
        std::println!("{compatible}: {:?}", tree.find_compatible(compatible));
    }
}

#[test]
fn memory_map_fits_a_boot_stack() {
    // The kernel builds the map on its boot stack, before any heap.
    let size = core::mem::size_of::<MemoryMap<'static>>();
    std::println!("size_of::<MemoryMap>() = {size}");
    // An eighth of the 256 KiB boot stack (linker/kernel.ld): 128 regions
    // and their exclusions do not fit the 8 KiB this test allowed before.
    assert!(size <= 32 * 1024, "{size} bytes");
}

/// The architected timer as QEMU virt lists it: secure, non-secure
/// physical (PPI 14), virtual and hypervisor timers, `<type num flags>`.
fn armv8_timer(physical: [u32; 3]) -> N {
    let mut cells = vec![1, 13, 0xf08];
    cells.extend(physical);
    cells.extend([1, 11, 0xf08, 1, 10, 0xf08]);
    node(
        "timer",
        vec![
            P::Strs("compatible", &["arm,armv8-timer", "arm,armv7-timer"]),
            P::Cells("interrupts", cells),
        ],
        vec![],
    )
}

#[test]
fn gicv2_and_the_physical_timer_ppi_are_found() {
    let mut root = virt_root(vec![]);
    root.children.push(armv8_timer([1, 14, 0xf08]));
    let dtb = build(&[], &root);
    let tree = DeviceTree::new(&dtb).unwrap();
    assert_eq!(
        tree.gicv2(),
        Ok(Gicv2 {
            dist: 0x800_0000,
            cpu: 0x801_0000,
            timer_intid: 30,
        })
    );

    // Pi: gic-400 behind /soc, its windows translated to CPU addresses.
    let mut root = pi_root();
    root.children.push(armv8_timer([1, 14, 0xf08]));
    let dtb = build(&[], &root);
    assert_eq!(
        DeviceTree::new(&dtb).unwrap().gicv2(),
        Ok(Gicv2 {
            dist: 0xff84_1000,
            cpu: 0xff84_2000,
            timer_intid: 30,
        })
    );
}

#[test]
fn no_usable_gicv2_says_why() {
    let with = |edit: &dyn Fn(&mut N)| {
        let mut root = virt_root(vec![]);
        root.children.push(armv8_timer([1, 14, 0xf08]));
        edit(&mut root);
        let dtb = build(&[], &root);
        let tree = DeviceTree::new(&dtb).unwrap();
        tree.gicv2().map_err(|e| (e.to_string(), e.is_problem()))
    };
    let intc = |root: &mut N| -> usize {
        root.children
            .iter()
            .position(|n| n.name.starts_with("intc"))
            .unwrap()
    };
    assert_eq!(
        with(&|r| {
            let i = intc(r);
            r.children.remove(i);
        }),
        Err(("gic: no GICv2 node".into(), false))
    );
    assert_eq!(
        with(&|r| {
            let i = intc(r);
            r.children[i].props[0] = P::Str("compatible", "arm,gic-v3");
        }),
        Err((
            "gic: GICv3 found; this kernel drives GICv2 (QEMU: -machine virt,gic-version=2)".into(),
            true
        ))
    );
    assert_eq!(
        with(&|r| {
            let i = intc(r);
            r.children[i].props[1] = P::Cells("reg", pairs64(&[(0x800_0000, 0x1_0000)]));
        }),
        Err((
            "gic: node 'intc@8000000' lacks distributor and CPU interface regs".into(),
            true
        ))
    );
    assert_eq!(
        with(&|r| r.children.retain(|n| n.name != "timer")),
        Err(("timer: no physical timer interrupt".into(), false))
    );
    assert_eq!(
        with(&|r| {
            let t = r.children.iter_mut().find(|n| n.name == "timer").unwrap();
            t.props[1] = P::Cells("interrupts", vec![1, 13, 0xf08]);
        }),
        Err(("timer: no physical timer interrupt".into(), false))
    );
    assert_eq!(
        with(&|r| {
            r.children.retain(|n| n.name != "timer");
            r.children.push(armv8_timer([0, 14, 4]));
        }),
        Err((
            "timer: physical timer interrupt is not a PPI (type 0)".into(),
            true
        ))
    );
}

/// `pi_root` with the `soc` node's `ranges` entry for `child` moved so it
/// translates to `parent` (2 cells), as the firmware's tree in
/// high-peripheral mode does.
fn pi_root_with_soc_range(child: u32, parent: u64) -> N {
    let mut root = pi_root();
    let soc = root.children.iter_mut().find(|n| n.name == "soc").unwrap();
    for p in &mut soc.props {
        if let P::Cells("ranges", cells) = p {
            for entry in cells.chunks_exact_mut(4) {
                if entry[0] == child {
                    entry[1] = (parent >> 32) as u32;
                    entry[2] = parent as u32;
                }
            }
        }
    }
    root
}

#[test]
fn boot_devices_below_4_gib_pass() {
    let dtb = build(&[], &pi_root());
    let tree = DeviceTree::new(&dtb).unwrap();
    assert_eq!(first_above_limit(&tree), None);
}

#[test]
fn high_peripheral_uart_is_named_in_one_line() {
    let dtb = build(&[], &pi_root_with_soc_range(0x7e00_0000, 0x4_7e00_0000));
    let tree = DeviceTree::new(&dtb).unwrap();
    let high = first_above_limit(&tree).unwrap();
    assert_eq!(
        high,
        HighDevice {
            what: "UART",
            node: "serial@7e201000",
            base: 0x4_7e20_1000
        }
    );
    let line = high.to_string();
    assert!(!line.contains('\n'));
    assert_eq!(
        line,
        "boot: the device tree puts the UART 'serial@7e201000' at 0x47e201000, above 4 GiB \
         (high-peripheral mode): this kernel needs its devices below 4 GiB; remove \
         arm_peri_high from config.txt"
    );
}

#[test]
fn high_peripheral_gic_alone_is_refused_too() {
    // Only the ARM-local window (GIC-400) moved.
    let dtb = build(&[], &pi_root_with_soc_range(0x4000_0000, 0x4_c000_0000));
    let tree = DeviceTree::new(&dtb).unwrap();
    let high = first_above_limit(&tree).unwrap();
    assert_eq!(high.what, "GIC");
    assert_eq!(high.base, 0x4_c004_1000);
    // The memory map itself still parses: refusing is the kernel's call.
    assert!(MemoryMap::parse(&dtb, PI_KERNEL, PI_DTB).is_ok());
}

#[test]
fn pi_firmware_nvram_no_map_node_is_excluded_not_typed() {
    // The Pi 4 firmware adds the bootloader's configuration as a no-map
    // reserved-memory node next to linux,cma.
    let mut root = pi_root();
    let rm = root
        .children
        .iter_mut()
        .find(|n| n.name == "reserved-memory")
        .unwrap();
    rm.children.push(node(
        "nvram@0",
        vec![
            P::Strs(
                "compatible",
                &["raspberrypi,bootloader-config", "nvmem-rmem"],
            ),
            P::Cells("reg", vec![0, 0x3ef6_6000, 0x1000]),
            P::Flag("no-map"),
            P::Str("status", "okay"),
        ],
        vec![],
    ));
    let dtb = build(&[], &root);
    let map = MemoryMap::parse(&dtb, PI_KERNEL, PI_DTB).unwrap();
    check_invariants(&map);
    assert!(map.diagnostics.is_empty(), "{:?}", diagnostics(&map));
    let nvram = PhysRange::new(0x3ef6_6000, 0x1000);
    assert_not_usable(&map, nvram);
    assert!(map.no_map_ranges().any(|r| r == nvram));
    assert!(
        map.reserved.as_slice().iter().all(|r| r.range != nvram),
        "nvram must not become an area"
    );
    // RAM and the CMA area as without it.
    assert_eq!(map.ram.len(), 3);
    assert_eq!(region(&map, "linux,cma").kind, RegionKind::Cma);
}

#[test]
fn pi_8gb_firmware_memory_node_merges_into_ram_up_to_8_gib() {
    // An 8 GB Pi 4: the firmware writes one memory node whose entries are
    // at most 4 GiB - 1 each (#size-cells = 1), so the RAM above 4 GiB
    // comes in pieces that touch.
    let mut root = pi_root();
    root.children.retain(|n| n.name != "memory@100000000");
    let mem = root
        .children
        .iter_mut()
        .find(|n| n.name == "memory@0")
        .unwrap();
    mem.props = vec![
        P::Str("device_type", "memory"),
        P::Cells(
            "reg",
            vec![
                0,
                0,
                0x3b40_0000, //
                0,
                0x4000_0000,
                0xbc00_0000, //
                1,
                0,
                0x8000_0000, //
                1,
                0x8000_0000,
                0x8000_0000,
            ],
        ),
    ];
    let dtb = build(&[(0, 0x1000)], &root);
    let map = MemoryMap::parse(&dtb, PI_KERNEL, PI_DTB).unwrap();
    check_invariants(&map);
    assert!(map.diagnostics.is_empty(), "{:?}", diagnostics(&map));
    assert_eq!(
        map.ram.as_slice(),
        ranges(&[
            (0, 0x3b40_0000),
            (0x4000_0000, 0xfc00_0000),
            (0x1_0000_0000, 0x2_0000_0000),
        ])
    );
    assert_eq!(
        map.usable.as_slice().last(),
        Some(&PhysRange::from_bounds(0x1_0000_0000, 0x2_0000_0000))
    );
}
