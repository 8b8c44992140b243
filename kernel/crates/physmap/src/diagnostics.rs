//! Diagnostics: a [`Diagnostic`] names the node, the [`Problem`] found in
//! it and the [`Outcome`] (what became of its memory), and prints as one
//! line. Parsing never stops on one: anything wrong short of a
//! [`FatalError`](crate::FatalError) is a diagnostic, and a full list only
//! counts the ones it drops ([`MemoryMap::diagnostics_dropped`]).
//!
//! [`MemoryMap::diagnostics_dropped`]: crate::MemoryMap::diagnostics_dropped

use core::fmt;

use crate::tree::RegError;
use crate::{ExcludedKind, PAGE_SIZE, PhysRange};

/// Where in the tree a diagnostic comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Area {
    Memory,
    #[default]
    ReservedMemory,
    MemReserve,
}

impl Area {
    fn as_str(&self) -> &'static str {
        match self {
            Area::Memory => "memory",
            Area::ReservedMemory => "reserved-memory",
            Area::MemReserve => "memreserve",
        }
    }
}

/// What is wrong with a node or range. [`Diagnostic::outcome`] says what
/// became of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Problem<'a> {
    /// Neither `reg` nor `size`.
    #[default]
    MissingRegAndSize,
    /// The property's length is wrong (`expected` bytes, or a multiple of
    /// it when `multiple`).
    MalformedProperty {
        property: &'static str,
        len: usize,
        expected: usize,
        multiple: bool,
    },
    /// `#address-cells` / `#size-cells` outside 1..=2 / 0..=2.
    UnsupportedCells {
        address_cells: u32,
        size_cells: u32,
    },
    ZeroSize,
    /// base + size does not fit 64 bits.
    Wraps {
        base: u64,
        size: u64,
    },
    AlignmentNotPowerOfTwo {
        alignment: u64,
    },
    /// A static base not aligned to 4 KiB.
    Misaligned {
        base: u64,
        alignment: u64,
    },
    /// A static region whose end is not aligned to 4 KiB.
    PartialPage {
        end: u64,
    },
    NoMapWithReusable,
    /// A static region outside RAM, wholly or `partly`.
    OutsideRam {
        region: PhysRange,
        partly: bool,
    },
    /// Overlaps another `/reserved-memory` range (`other` names its node).
    Overlaps {
        region: PhysRange,
        other: &'a str,
    },
    /// Overlaps the kernel image, the DTB or a memreserve entry.
    OverlapsExcluded {
        region: PhysRange,
        what: ExcludedKind,
        excluded: PhysRange,
    },
    /// No free aligned range of this size in RAM / `alloc-ranges`.
    CannotPlace {
        size: u64,
        alignment: u64,
    },
    /// A fixed capacity is full.
    TooMany {
        what: &'static str,
        capacity: usize,
    },
    /// `guarantee` without `reusable`: kept as a static carveout.
    GuaranteeWithoutReusable,
}

impl fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Problem::MissingRegAndSize => write!(f, "neither 'reg' nor 'size'"),
            Problem::MalformedProperty {
                property,
                len,
                expected,
                multiple,
            } => {
                let how = if multiple {
                    "a non-zero multiple of "
                } else {
                    ""
                };
                write!(
                    f,
                    "property '{property}' is {len} bytes, expected {how}{expected}"
                )
            }
            Problem::UnsupportedCells {
                address_cells,
                size_cells,
            } => write!(
                f,
                "unsupported #address-cells={address_cells} #size-cells={size_cells}"
            ),
            Problem::ZeroSize => write!(f, "size is zero"),
            Problem::Wraps { base, size } => {
                write!(f, "base {base:#x} + size {size:#x} wraps past 2^64")
            }
            Problem::AlignmentNotPowerOfTwo { alignment } => {
                write!(f, "alignment {alignment:#x} is not a power of two")
            }
            Problem::Misaligned { base, alignment } => {
                write!(f, "base {base:#x} is not aligned to {alignment:#x}")
            }
            Problem::PartialPage { end } => {
                write!(f, "end {end:#x} is not aligned to {PAGE_SIZE:#x}")
            }
            Problem::NoMapWithReusable => write!(f, "'no-map' and 'reusable' both set"),
            Problem::OutsideRam { region, partly } => {
                let how = if partly { "partly outside" } else { "outside" };
                write!(f, "region {region} is {how} RAM")
            }
            Problem::Overlaps { region, other } => {
                write!(f, "region {region} overlaps '{other}'")
            }
            Problem::OverlapsExcluded {
                region,
                what,
                excluded,
            } => write!(
                f,
                "region {region} overlaps the {} at {excluded}",
                what.as_str()
            ),
            Problem::CannotPlace { size, alignment } => write!(
                f,
                "cannot place {size:#x} bytes aligned to {alignment:#x}: no free range"
            ),
            Problem::TooMany { what, capacity } => write!(f, "more than {capacity} {what}"),
            Problem::GuaranteeWithoutReusable => write!(f, "'guarantee' without 'reusable'"),
        }
    }
}

/// What became of the node or range a [`Diagnostic`] is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing of it is used or excluded (it claims no memory in RAM).
    #[default]
    Skipped,
    /// Its memory is excluded from usable RAM and listed as excluded; it is
    /// not an area.
    Excluded,
    /// Its memory is excluded from usable RAM but not listed (a list is
    /// full); it is not an area.
    ExcludedUnlisted,
    /// Usable memory given up because the usable list is full.
    Dropped,
    /// Kept as a static carveout.
    KeptAsCarveout,
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Skipped => "skipped",
            Outcome::Excluded => "excluded from usable RAM, not used as an area",
            Outcome::ExcludedUnlisted => "still excluded from usable RAM, not listed",
            Outcome::Dropped => "the smaller piece is left out of usable RAM",
            Outcome::KeptAsCarveout => "kept as a static carveout",
        }
    }
}

/// One problem found while building the map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Diagnostic<'a> {
    pub area: Area,
    /// Node name ("/memreserve/" for header entries).
    pub node: &'a str,
    pub problem: Problem<'a>,
    pub outcome: Outcome,
}

impl fmt::Display for Diagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: node '{}': {}: {}",
            self.area.as_str(),
            self.node,
            self.problem,
            self.outcome.as_str()
        )
    }
}

pub(crate) fn sized_problem(
    property: &'static str,
    len: usize,
    size_cells: u32,
) -> Problem<'static> {
    if (1..=2).contains(&size_cells) {
        Problem::MalformedProperty {
            property,
            len,
            expected: (size_cells * 4) as usize,
            multiple: false,
        }
    } else {
        Problem::UnsupportedCells {
            address_cells: 0,
            size_cells,
        }
    }
}

pub(crate) fn reg_problem(
    error: RegError,
    property: &'static str,
    len: usize,
    address_cells: u32,
    size_cells: u32,
) -> Problem<'static> {
    match error {
        RegError::UnsupportedCells => Problem::UnsupportedCells {
            address_cells,
            size_cells,
        },
        RegError::BadLength { entry } => Problem::MalformedProperty {
            property,
            len,
            expected: entry,
            multiple: true,
        },
    }
}
