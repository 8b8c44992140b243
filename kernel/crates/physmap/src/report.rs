//! Printing the memory map: an aligned table for people and `@`-prefixed
//! key=value lines for host tools. Both write to any `core::fmt::Write`
//! through `Display`, so the kernel can print them to its UART.

use core::fmt::{self, Write};

use crate::{ExcludedKind, ExcludedRange, MemoryMap, PhysRange, RegionKind, ReservedRegion};

/// A byte count in binary units: "16 MiB", "1 GiB", "4.5 KiB", "512 B".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanSize(pub u64);

impl fmt::Display for HumanSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u32); 6] = [
            ("EiB", 60),
            ("PiB", 50),
            ("TiB", 40),
            ("GiB", 30),
            ("MiB", 20),
            ("KiB", 10),
        ];
        let bytes = self.0;
        for (name, shift) in UNITS {
            let unit = 1u64 << shift;
            if bytes >= unit {
                let whole = bytes >> shift;
                let rest = bytes & (unit - 1);
                if rest == 0 {
                    return write!(f, "{whole} {name}");
                }
                // One decimal, truncated.
                let tenth = (u128::from(rest) * 10 / u128::from(unit)) as u64;
                return write!(f, "{whole}.{tenth} {name}");
            }
        }
        write!(f, "{bytes} B")
    }
}

/// A small stack buffer used to pad composite cells.
struct Cell {
    bytes: [u8; 96],
    len: usize,
}

impl Cell {
    fn new() -> Self {
        Self {
            bytes: [0; 96],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(self.bytes.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl Write for Cell {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn size_cell(size: u64) -> Cell {
    let mut cell = Cell::new();
    let _ = write!(cell, "{size:#x} ({})", HumanSize(size));
    cell
}

fn flags_cell(region: &ReservedRegion<'_>) -> Cell {
    let mut cell = Cell::new();
    let flags = [
        (region.no_map, "no-map"),
        (region.reusable, "reusable"),
        (region.guarantee, "guarantee"),
        (region.dynamic, "dynamic"),
        (region.shared_dma_pool, "shared-dma-pool"),
    ];
    let mut first = true;
    for (set, name) in flags {
        if set {
            let _ = write!(cell, "{}{name}", if first { "" } else { "," });
            first = false;
        }
    }
    if first {
        let _ = cell.write_str("-");
    }
    cell
}

const SIZE_WIDTH: usize = 28;

fn write_range_row(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    width: usize,
    range: &PhysRange,
) -> fmt::Result {
    writeln!(
        f,
        "  {label:<width$}  {:#018x}  {:#018x}  {}",
        range.base,
        range.end(),
        size_cell(range.size).as_str()
    )
}

/// A kernel image, DTB or memreserve row as [`write_range_row`]; a
/// `/reserved-memory` range that is not an area is named by its node and
/// followed by what it is: firmware's (`no-map`), or refused and why.
fn write_excluded_row(
    f: &mut fmt::Formatter<'_>,
    width: usize,
    excluded: &ExcludedRange<'_>,
) -> fmt::Result {
    let range = &excluded.range;
    let why = match (excluded.kind, excluded.reason) {
        (ExcludedKind::Firmware, _) => "firmware (no-map)",
        (ExcludedKind::Refused, Some(_)) => "refused: ",
        (ExcludedKind::Refused, None) => "refused",
        _ => return write_range_row(f, excluded.kind.as_str(), width, range),
    };
    write!(
        f,
        "  {:<width$}  {:#018x}  {:#018x}  {:<SIZE_WIDTH$}  {why}",
        excluded.name,
        range.base,
        range.end(),
        size_cell(range.size).as_str()
    )?;
    if let (ExcludedKind::Refused, Some(reason)) = (excluded.kind, excluded.reason) {
        write!(f, "{reason}")?;
    }
    writeln!(f)
}

/// The memory map as an aligned table (`Display`).
pub struct Table<'m, 'a>(pub &'m MemoryMap<'a>);

impl fmt::Display for Table<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.0;
        let width = map
            .reserved
            .iter()
            .map(|r| r.name.len())
            .chain(map.excluded.iter().map(|e| e.name.len()))
            .chain(core::iter::once("kernel image".len()))
            .max()
            .unwrap_or(0);
        let header = |f: &mut fmt::Formatter<'_>, title: &str, first: &str| {
            writeln!(f, "{title}")?;
            writeln!(f, "  {first:<width$}  {:<18}  {:<18}  size", "base", "end")
        };

        header(f, "RAM", "")?;
        for range in map.ram.iter() {
            write_range_row(f, "", width, range)?;
        }

        writeln!(f, "reserved regions")?;
        writeln!(
            f,
            "  {:<width$}  {:<8}  {:<18}  {:<18}  {:<SIZE_WIDTH$}  flags",
            "name", "kind", "base", "end", "size"
        )?;
        for region in map.reserved.iter() {
            writeln!(
                f,
                "  {:<width$}  {:<8}  {:#018x}  {:#018x}  {:<SIZE_WIDTH$}  {}",
                region.name,
                region.kind.as_str(),
                region.range.base,
                region.range.end(),
                size_cell(region.range.size).as_str(),
                flags_cell(region).as_str()
            )?;
        }

        header(f, "excluded", "what")?;
        for excluded in map.excluded.iter() {
            write_excluded_row(f, width, excluded)?;
        }

        header(f, "usable", "")?;
        for range in map.usable.iter() {
            write_range_row(f, "", width, range)?;
        }

        writeln!(
            f,
            "totals: RAM {}, gcma {}, cma {}, carveout {}, excluded {}, usable {}",
            HumanSize(map.total_ram()),
            HumanSize(map.total_reserved(RegionKind::Gcma)),
            HumanSize(map.total_reserved(RegionKind::Cma)),
            HumanSize(map.total_reserved(RegionKind::Carveout)),
            HumanSize(map.total_excluded()),
            HumanSize(map.total_usable()),
        )?;
        for diagnostic in map.diagnostics.iter() {
            writeln!(f, "warning: {diagnostic}")?;
        }
        if map.diagnostics_dropped != 0 {
            writeln!(
                f,
                "warning: {} more problems not kept",
                map.diagnostics_dropped
            )?;
        }
        Ok(())
    }
}

/// One line per RAM range, reserved region, `/reserved-memory` range that
/// is not an area, and usable range, for host tools:
/// `@ram base=0x40000000 size=0x40000000`,
/// `@region name=gcma@50000000 kind=gcma base=0x50000000 size=0x1000000 flags=reusable,guarantee`,
/// `@excluded name=tz@60000000 kind=firmware base=0x60000000 size=0x100000 no-map=1`,
/// `@usable base=0x40000000 size=0x1000000`.
pub struct MachineLines<'m, 'a>(pub &'m MemoryMap<'a>);

impl fmt::Display for MachineLines<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.0;
        for range in map.ram.iter() {
            writeln!(f, "@ram base={:#x} size={:#x}", range.base, range.size)?;
        }
        for region in map.reserved.iter() {
            writeln!(
                f,
                "@region name={} kind={} base={:#x} size={:#x} flags={}",
                region.name,
                region.kind.as_str(),
                region.range.base,
                region.range.size,
                flags_cell(region).as_str()
            )?;
        }
        let reserved_memory = map
            .excluded
            .iter()
            .filter(|e| matches!(e.kind, ExcludedKind::Firmware | ExcludedKind::Refused));
        for excluded in reserved_memory {
            writeln!(
                f,
                "@excluded name={} kind={} base={:#x} size={:#x} no-map={}",
                excluded.name,
                excluded.kind.as_str(),
                excluded.range.base,
                excluded.range.size,
                u8::from(excluded.no_map)
            )?;
        }
        for range in map.usable.iter() {
            writeln!(f, "@usable base={:#x} size={:#x}", range.base, range.size)?;
        }
        Ok(())
    }
}
