//! The kinds of reserved area the workloads run on, and their names in
//! tables and `@` lines. Nothing here has state.

use contig::AreaKind;

/// The three kinds of area, one row each in the soak (which runs CMA with
/// Linux's policy only).
pub const AREA_KINDS: [AreaKind; 3] = [AreaKind::Gcma, AreaKind::Cma, AreaKind::Carveout];

/// Name of an area kind in tables and `@` lines.
pub fn kind_name(k: AreaKind) -> &'static str {
    match k {
        AreaKind::Gcma => "gcma",
        AreaKind::Cma => "cma",
        AreaKind::Carveout => "carveout",
    }
}
