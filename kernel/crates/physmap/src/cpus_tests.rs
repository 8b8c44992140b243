//! Host tests of [`DeviceTree::cpus`] on trees shaped like QEMU virt's and
//! the Raspberry Pi 4's, and on malformed ones.

extern crate std;

use std::format;
use std::vec;
use std::vec::Vec;

use crate::tests::{N, P, build, node, pi_root, virt_root};
use crate::*;

/// A `/cpus` node with `#address-cells = address_cells` and `cpus`.
fn cpus_node(address_cells: u32, extra: Vec<P>, cpus: Vec<N>) -> N {
    let mut props = vec![
        P::U32("#address-cells", address_cells),
        P::U32("#size-cells", 0),
    ];
    props.extend(extra);
    node("cpus", props, cpus)
}

fn psci_cpu(reg: u32) -> N {
    node(
        &format!("cpu@{reg:x}"),
        vec![
            P::Str("device_type", "cpu"),
            P::Str("compatible", "arm,cortex-a72"),
            P::Cells("reg", vec![reg]),
            P::Str("enable-method", "psci"),
        ],
        vec![],
    )
}

fn spin_cpu(reg: u32, release: u64) -> N {
    node(
        &format!("cpu@{reg:x}"),
        vec![
            P::Str("device_type", "cpu"),
            P::Cells("reg", vec![reg]),
            P::Str("enable-method", "spin-table"),
            P::Cells(
                "cpu-release-addr",
                vec![(release >> 32) as u32, release as u32],
            ),
        ],
        vec![],
    )
}

fn with_cpus(mut root: N, cpus: N) -> Vec<u8> {
    root.children.push(cpus);
    build(&[], &root)
}

fn cpus_of(dtb: &[u8]) -> Cpus<'_> {
    DeviceTree::new(dtb).expect("tree parses").cpus()
}

#[test]
fn virt_cpus_are_psci_with_their_mpidr() {
    // QEMU virt -smp 2: a cpu-map beside the cores, which is not a core.
    let map = node(
        "cpu-map",
        vec![],
        vec![node(
            "cluster0",
            vec![],
            vec![node("core0", vec![], vec![])],
        )],
    );
    let dtb = with_cpus(
        virt_root(vec![]),
        cpus_node(1, vec![], vec![map, psci_cpu(0), psci_cpu(1)]),
    );
    let cpus = cpus_of(&dtb);
    assert_eq!(cpus.dropped, 0);
    assert_eq!(cpus.duplicate, None);
    let got: Vec<_> = cpus
        .list
        .iter()
        .map(|c| (c.name, c.mpidr, c.enable))
        .collect();
    assert_eq!(
        got,
        vec![
            ("cpu@0", Some(0), EnableMethod::Psci),
            ("cpu@1", Some(1), EnableMethod::Psci),
        ]
    );
    assert!(cpus.list.iter().all(|c| c.available));
    assert_eq!(cpus.by_mpidr(1).map(|c| c.name), Some("cpu@1"));
    assert!(cpus.by_mpidr(2).is_none());
}

#[test]
fn pi_cpus_are_spin_table_with_release_addresses() {
    // As in bcm2711-rpi-4-b.dtb: /cpus has a 32-bit enable-method that an
    // arm64 kernel ignores; each core has its own spin-table release word.
    let cores = (0..4).map(|i| spin_cpu(i, 0xd8 + 8 * i as u64)).collect();
    let dtb = with_cpus(
        pi_root(),
        cpus_node(1, vec![P::Str("enable-method", "brcm,bcm2836-smp")], cores),
    );
    let cpus = cpus_of(&dtb);
    assert_eq!(cpus.list.len(), 4);
    for (i, c) in cpus.list.iter().enumerate() {
        assert_eq!(c.mpidr, Some(i as u64));
        assert_eq!(
            c.enable,
            EnableMethod::SpinTable {
                release_addr: 0xd8 + 8 * i as u64
            }
        );
    }
}

#[test]
fn two_cell_reg_carries_aff3() {
    let core = node(
        "cpu@100000000",
        vec![
            P::Str("device_type", "cpu"),
            P::Cells("reg", vec![0x1, 0x0000_0102]),
            P::Str("enable-method", "psci"),
        ],
        vec![],
    );
    let dtb = with_cpus(virt_root(vec![]), cpus_node(2, vec![], vec![core]));
    assert_eq!(cpus_of(&dtb).list[0].mpidr, Some(0x1_0000_0102));
}

#[test]
fn malformed_cores_are_listed_with_what_is_wrong() {
    let cores = vec![
        // reg of the wrong length for #address-cells = 1
        node(
            "cpu@0",
            vec![
                P::Str("device_type", "cpu"),
                P::Cells("reg", vec![0, 0]),
                P::Str("enable-method", "psci"),
            ],
            vec![],
        ),
        // spin-table with a 32-bit release address
        node(
            "cpu@1",
            vec![
                P::Str("device_type", "cpu"),
                P::Cells("reg", vec![1]),
                P::Str("enable-method", "spin-table"),
                P::U32("cpu-release-addr", 0xe0),
            ],
            vec![],
        ),
        // spin-table with no release address at all
        node(
            "cpu@2",
            vec![
                P::Str("device_type", "cpu"),
                P::Cells("reg", vec![2]),
                P::Str("enable-method", "spin-table"),
            ],
            vec![],
        ),
        // an unknown method, disabled
        node(
            "cpu@3",
            vec![
                P::Str("device_type", "cpu"),
                P::Cells("reg", vec![3]),
                P::Str("enable-method", "brcm,bcm2836-smp"),
                P::Str("status", "disabled"),
            ],
            vec![],
        ),
        // no enable-method, no reg
        node("cpu@4", vec![P::Str("device_type", "cpu")], vec![]),
        // not a core (no device_type)
        node("l2-cache0", vec![P::Str("compatible", "cache")], vec![]),
        // an enable-method that is not a string
        node(
            "cpu@5",
            vec![
                P::Str("device_type", "cpu"),
                P::Cells("reg", vec![5]),
                P::Raw("enable-method", vec![0xff, 0xfe]),
            ],
            vec![],
        ),
    ];
    let dtb = with_cpus(virt_root(vec![]), cpus_node(1, vec![], cores));
    let cpus = cpus_of(&dtb);
    let got: Vec<_> = cpus
        .list
        .iter()
        .map(|c| (c.name, c.mpidr, c.enable, c.available))
        .collect();
    assert_eq!(
        got,
        vec![
            ("cpu@0", None, EnableMethod::Psci, true),
            ("cpu@1", Some(1), EnableMethod::SpinTableNoReleaseAddr, true),
            ("cpu@2", Some(2), EnableMethod::SpinTableNoReleaseAddr, true),
            (
                "cpu@3",
                Some(3),
                EnableMethod::Unknown("brcm,bcm2836-smp"),
                false
            ),
            ("cpu@4", None, EnableMethod::Missing, true),
            ("cpu@5", Some(5), EnableMethod::Unknown(""), true),
        ]
    );
}

#[test]
fn duplicates_are_named_and_overflow_is_counted() {
    let mut cores: Vec<N> = (0..MAX_CPUS as u32).map(psci_cpu).collect();
    cores.push(psci_cpu(3)); // a second cpu with MPIDR 3: beyond the list
    cores.push(psci_cpu(9));
    let dtb = with_cpus(virt_root(vec![]), cpus_node(1, vec![], cores));
    let cpus = cpus_of(&dtb);
    assert_eq!(cpus.list.len(), MAX_CPUS);
    assert_eq!(cpus.dropped, 2);
    assert_eq!(cpus.duplicate, Some(3));
}

#[test]
fn a_tree_without_cpus_lists_none() {
    let dtb = build(&[], &virt_root(vec![]));
    let cpus = cpus_of(&dtb);
    assert!(cpus.list.is_empty());
    assert_eq!((cpus.dropped, cpus.duplicate), (0, None));
    // A `cpus` node below another node is not /cpus.
    let mut root = virt_root(vec![]);
    root.children.push(node(
        "soc",
        vec![],
        vec![cpus_node(1, vec![], vec![psci_cpu(0)])],
    ));
    assert!(cpus_of(&build(&[], &root)).list.is_empty());
}
