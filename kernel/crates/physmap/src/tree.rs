//! A panic-free reader of the flattened device tree.
//!
//! The `fdt` crate checks the header (magic, total size); the structure
//! block is walked here because `fdt` 0.1.5's node iterators unwrap and
//! slice unchecked on malformed data, and this code must survive any blob.
//! Every read is bounds-checked; any inconsistency in the structure block
//! is a [`FatalError::Structure`] found once, by [`DeviceTree::new`].

use crate::arrayvec::ArrayVec;
use crate::{FatalError, PhysRange};

const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
const FDT_END: u32 = 0x9;

/// Size of the FDT header for version 17 (all fields this crate reads).
pub const FDT_HEADER_SIZE: usize = 40;
/// Deepest node nesting accepted (the root is depth 0).
pub const MAX_DEPTH: usize = 16;
/// How many `reg` entries a [`Device`] keeps (translated).
pub const MAX_DEVICE_REGS: usize = 4;

/// Reads a big-endian u32 at `offset`, if it is inside `bytes`.
pub(crate) fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let word = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes(word.try_into().ok()?))
}

/// Reads a number of `cells` (0, 1 or 2) 32-bit cells at the start of `bytes`.
pub(crate) fn read_cells(bytes: &[u8], cells: u32) -> Option<u64> {
    match cells {
        0 => Some(0),
        1 => be32(bytes, 0).map(u64::from),
        2 => Some((u64::from(be32(bytes, 0)?) << 32) | u64::from(be32(bytes, 4)?)),
        _ => None,
    }
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|n| n & !3)
}

/// The total size of the blob whose header starts at `header`, read from its
/// `totalsize` field. The kernel reads the 40-byte header first, then builds
/// the full slice with this length.
pub fn dtb_total_size(header: &[u8]) -> Result<usize, FatalError> {
    if header.len() < FDT_HEADER_SIZE {
        return Err(FatalError::Truncated {
            needed: FDT_HEADER_SIZE,
            available: header.len(),
        });
    }
    match fdt::Fdt::new(header) {
        Err(fdt::FdtError::BadMagic) => return Err(FatalError::BadMagic),
        Err(fdt::FdtError::BadPtr) => return Err(FatalError::BadMagic),
        // The header alone is shorter than totalsize: expected here.
        Err(fdt::FdtError::BufferTooSmall) | Ok(_) => {}
    }
    be32(header, 4)
        .map(|n| n as usize)
        .ok_or(FatalError::Truncated {
            needed: FDT_HEADER_SIZE,
            available: header.len(),
        })
}

/// One property: its name (from the strings block) and raw value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Property<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

impl<'a> Property<'a> {
    /// The value as one NUL-terminated string (the first, for a list).
    pub fn as_str(&self) -> Option<&'a str> {
        let end = self.value.iter().position(|&b| b == 0)?;
        core::str::from_utf8(self.value.get(..end)?).ok()
    }

    /// The value as a list of NUL-terminated strings.
    pub fn strings(&self) -> impl Iterator<Item = &'a str> + 'a {
        let value = self.value;
        let body = match value.last() {
            Some(0) => value.get(..value.len() - 1).unwrap_or(&[]),
            _ => &[],
        };
        body.split(|&b| b == 0)
            .filter_map(|s| core::str::from_utf8(s).ok())
            .filter(|s| !s.is_empty())
    }

    /// The value as a single u32 cell.
    pub fn as_u32(&self) -> Option<u32> {
        if self.value.len() == 4 {
            be32(self.value, 0)
        } else {
            None
        }
    }
}

/// The raw 32-bit cells of a property (for example `interrupts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cells<'a> {
    bytes: &'a [u8],
}

impl<'a> Cells<'a> {
    /// Number of whole cells.
    pub fn len(&self) -> usize {
        self.bytes.len() / 4
    }

    /// True when there is no cell.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell number `index`.
    pub fn get(&self, index: usize) -> Option<u32> {
        be32(self.bytes, index.checked_mul(4)?)
    }

    /// All cells in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        let bytes = self.bytes;
        (0..bytes.len() / 4).filter_map(move |i| be32(bytes, i * 4))
    }
}

/// The properties of one node (the property tokens before its first child).
#[derive(Clone, Copy, Debug, Default)]
pub struct Properties<'a> {
    block: &'a [u8],
    strings: &'a [u8],
}

impl<'a> Properties<'a> {
    /// Iterates the properties in order.
    pub fn iter(&self) -> PropertyIter<'a> {
        PropertyIter {
            block: self.block,
            strings: self.strings,
            pos: 0,
        }
    }

    /// The property called `name`.
    pub fn get(&self, name: &str) -> Option<Property<'a>> {
        self.iter().find(|p| p.name == name)
    }

    /// True when the property `name` exists (booleans such as `no-map`).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// `status` is absent, "okay" or "ok".
    pub fn is_available(&self) -> bool {
        match self.get("status") {
            None => true,
            Some(p) => matches!(p.as_str(), Some("okay") | Some("ok")),
        }
    }

    /// True when `compatible` lists `compatible`.
    pub fn is_compatible(&self, compatible: &str) -> bool {
        self.get("compatible")
            .is_some_and(|p| p.strings().any(|s| s == compatible))
    }

    fn cell_count(&self, name: &str, default: u32) -> u32 {
        match self.get(name) {
            None => default,
            // A malformed count makes every address below it unreadable.
            Some(p) => p.as_u32().unwrap_or(u32::MAX),
        }
    }
}

/// Iterator over [`Properties`].
pub struct PropertyIter<'a> {
    block: &'a [u8],
    strings: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for PropertyIter<'a> {
    type Item = Property<'a>;

    fn next(&mut self) -> Option<Property<'a>> {
        loop {
            match be32(self.block, self.pos)? {
                FDT_NOP => self.pos = self.pos.checked_add(4)?,
                FDT_PROP => {
                    let (property, next) =
                        parse_property(self.block, self.strings, self.pos).ok()?;
                    self.pos = next;
                    return Some(property);
                }
                _ => return None,
            }
        }
    }
}

/// Parses the property token at `pos`; returns it and the offset after it.
fn parse_property<'a>(
    block: &'a [u8],
    strings: &'a [u8],
    pos: usize,
) -> Result<(Property<'a>, usize), &'static str> {
    let len = be32(block, pos + 4).ok_or("truncated property header")? as usize;
    let name_offset = be32(block, pos + 8).ok_or("truncated property header")? as usize;
    let start = pos + 12;
    let end = start.checked_add(len).ok_or("property length overflows")?;
    let value = block
        .get(start..end)
        .ok_or("property value past the structure block")?;
    let name_bytes = strings
        .get(name_offset..)
        .ok_or("property name offset past the strings block")?;
    let name_len = name_bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or("property name not terminated")?;
    let name = core::str::from_utf8(name_bytes.get(..name_len).unwrap_or(&[]))
        .map_err(|_| "property name is not UTF-8")?;
    let next = align4(end).ok_or("property length overflows")?;
    Ok((Property { name, value }, next))
}

/// What the walker knows about an ancestor of the node being visited.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Frame<'a> {
    pub name: &'a str,
    pub props: Properties<'a>,
    /// `#address-cells` for this node's children (default 2).
    pub address_cells: u32,
    /// `#size-cells` for this node's children (default 1).
    pub size_cells: u32,
}

/// A node as the walker hands it to a visitor.
pub(crate) struct Node<'a, 'w> {
    pub name: &'a str,
    pub props: Properties<'a>,
    pub depth: usize,
    /// Root first, parent last.
    pub ancestors: &'w [Frame<'a>],
}

impl<'a> Node<'a, '_> {
    pub fn parent(&self) -> Option<&Frame<'a>> {
        self.ancestors.last()
    }

    /// The translated `reg` entries (up to [`MAX_DEVICE_REGS`]).
    pub fn translated_regs(&self) -> ArrayVec<PhysRange, MAX_DEVICE_REGS> {
        let mut out = ArrayVec::new();
        let Some(parent) = self.parent() else {
            return out;
        };
        let Some(reg) = self.props.get("reg") else {
            return out;
        };
        let Ok(entries) = RegIter::new(reg.value, parent.address_cells, parent.size_cells) else {
            return out;
        };
        for (address, size) in entries {
            if let Some(base) = translate(address, self.ancestors)
                && out.try_push(PhysRange { base, size }).is_err()
            {
                break;
            }
        }
        out
    }
}

/// Translates a bus address through the `ranges` of every ancestor bus
/// (parent first) up to the root. A bus without `ranges` cannot be
/// translated; an empty `ranges` is the identity.
fn translate(mut address: u64, ancestors: &[Frame<'_>]) -> Option<u64> {
    // ancestors[0] is the root, which has no parent bus to translate into.
    let mut level = ancestors.len();
    while level > 1 {
        level -= 1;
        let bus = ancestors.get(level)?;
        let above = ancestors.get(level - 1)?;
        let ranges = bus.props.get("ranges")?;
        if ranges.value.is_empty() {
            continue;
        }
        let child_cells = bus.address_cells;
        let parent_cells = above.address_cells;
        let size_cells = bus.size_cells;
        if child_cells > 2 || parent_cells > 2 || size_cells > 2 {
            return None;
        }
        let entry = ((child_cells + parent_cells + size_cells) * 4) as usize;
        if entry == 0 || !ranges.value.len().is_multiple_of(entry) {
            return None;
        }
        let mut mapped = None;
        for chunk in ranges.value.chunks_exact(entry) {
            let child = read_cells(chunk, child_cells)?;
            let parent = read_cells(chunk.get((child_cells * 4) as usize..)?, parent_cells)?;
            let size = read_cells(
                chunk.get(((child_cells + parent_cells) * 4) as usize..)?,
                size_cells,
            )?;
            if address >= child && address - child < size {
                mapped = parent.checked_add(address - child);
                break;
            }
        }
        address = mapped?;
    }
    Some(address)
}

/// Iterates `(address, size)` pairs of a `reg`-like property.
pub(crate) struct RegIter<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
    address_cells: u32,
    size_cells: u32,
}

/// Why a `reg`-like property cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RegError {
    /// `#address-cells` / `#size-cells` outside what fits a u64.
    UnsupportedCells,
    /// Length is not a multiple of the entry size (given, in bytes).
    BadLength { entry: usize },
}

impl<'a> RegIter<'a> {
    pub fn new(value: &'a [u8], address_cells: u32, size_cells: u32) -> Result<Self, RegError> {
        if !(1..=2).contains(&address_cells) || size_cells > 2 {
            return Err(RegError::UnsupportedCells);
        }
        let entry = ((address_cells + size_cells) * 4) as usize;
        if value.is_empty() || !value.len().is_multiple_of(entry) {
            return Err(RegError::BadLength { entry });
        }
        Ok(Self {
            chunks: value.chunks_exact(entry),
            address_cells,
            size_cells,
        })
    }
}

impl Iterator for RegIter<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let chunk = self.chunks.next()?;
        let address = read_cells(chunk, self.address_cells)?;
        let size = read_cells(
            chunk.get((self.address_cells * 4) as usize..)?,
            self.size_cells,
        )?;
        Some((address, size))
    }
}

/// A device node found by compatible string or path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Device<'a> {
    /// Node name with unit address, e.g. "pl011@9000000".
    pub name: &'a str,
    /// `reg` entries translated to CPU physical addresses through the
    /// parents' `ranges` (entries that cannot be translated are left out).
    pub regs: ArrayVec<PhysRange, MAX_DEVICE_REGS>,
    /// The raw `interrupts` cells (grouped by the interrupt parent's
    /// `#interrupt-cells`, 3 for the GIC).
    pub interrupts: Cells<'a>,
    /// The `compatible` property (empty when absent).
    pub compatible: Property<'a>,
    /// `status` is absent, "okay" or "ok" (path lookups return disabled
    /// nodes too; compatible lookups only available ones).
    pub available: bool,
}

impl Device<'_> {
    /// The first `reg` entry, translated.
    pub fn reg(&self) -> Option<PhysRange> {
        self.regs.first().copied()
    }

    /// True when `compatible` lists `compatible`.
    pub fn is_compatible(&self, compatible: &str) -> bool {
        self.compatible.strings().any(|s| s == compatible)
    }
}

/// A checked flattened device tree.
#[derive(Clone, Copy, Debug)]
pub struct DeviceTree<'a> {
    blob: &'a [u8],
    structs: &'a [u8],
    strings: &'a [u8],
    rsvmap: &'a [u8],
}

impl<'a> DeviceTree<'a> {
    /// Checks the header and walks the whole structure block once; after
    /// this, queries cannot meet malformed structure.
    pub fn new(blob: &'a [u8]) -> Result<Self, FatalError> {
        if blob.len() < FDT_HEADER_SIZE {
            return Err(FatalError::Truncated {
                needed: FDT_HEADER_SIZE,
                available: blob.len(),
            });
        }
        match fdt::Fdt::new(blob) {
            Ok(_) => {}
            Err(fdt::FdtError::BadMagic) | Err(fdt::FdtError::BadPtr) => {
                return Err(FatalError::BadMagic);
            }
            Err(fdt::FdtError::BufferTooSmall) => {
                return Err(FatalError::Truncated {
                    needed: be32(blob, 4).unwrap_or(0) as usize,
                    available: blob.len(),
                });
            }
        }
        let field = |index: usize| be32(blob, index * 4).unwrap_or(0) as usize;
        let total = field(1);
        let off_struct = field(2);
        let off_strings = field(3);
        let off_rsvmap = field(4);
        let version = field(5);
        let size_strings = field(8);
        let size_struct = field(9);
        if version < 17 {
            return Err(FatalError::UnsupportedVersion(version as u32));
        }
        let bad = |what| FatalError::Structure { offset: 0, what };
        let blob = blob.get(..total).ok_or(bad("totalsize past the buffer"))?;
        let section = |off: usize, size: usize| blob.get(off..off.checked_add(size)?);
        let structs =
            section(off_struct, size_struct).ok_or(bad("structure block out of bounds"))?;
        let strings =
            section(off_strings, size_strings).ok_or(bad("strings block out of bounds"))?;
        let rsvmap = blob
            .get(off_rsvmap..)
            .ok_or(bad("memory reservation block out of bounds"))?;
        let tree = Self {
            blob,
            structs,
            strings,
            rsvmap,
        };
        tree.walk(|_| true)?;
        Ok(tree)
    }

    /// The blob (cut to `totalsize`).
    pub fn blob(&self) -> &'a [u8] {
        self.blob
    }

    /// The `/memreserve/` entries of the header, up to the terminating
    /// zero entry. Entries past the end of the blob end the list.
    pub fn memreserve(&self) -> impl Iterator<Item = PhysRange> + 'a {
        let rsvmap = self.rsvmap;
        let mut pos = 0usize;
        core::iter::from_fn(move || {
            let base = read_cells(rsvmap.get(pos..)?, 2)?;
            let size = read_cells(rsvmap.get(pos.checked_add(8)?..)?, 2)?;
            if base == 0 && size == 0 {
                return None;
            }
            pos = pos.checked_add(16)?;
            Some(PhysRange { base, size })
        })
    }

    /// Visits every node in tree order until `visit` returns false.
    pub(crate) fn walk(
        &self,
        mut visit: impl FnMut(&Node<'a, '_>) -> bool,
    ) -> Result<(), FatalError> {
        let structs = self.structs;
        let bad = |offset: usize, what: &'static str| FatalError::Structure { offset, what };
        let mut stack = [Frame::default(); MAX_DEPTH];
        let mut depth = 0usize;
        let mut seen_root = false;
        let mut pos = 0usize;
        loop {
            let token =
                be32(structs, pos).ok_or(bad(pos, "structure block ends without FDT_END"))?;
            let token_pos = pos;
            pos += 4;
            match token {
                FDT_NOP => {}
                FDT_BEGIN_NODE => {
                    if depth == 0 && seen_root {
                        return Err(bad(token_pos, "more than one root node"));
                    }
                    let rest = structs.get(pos..).unwrap_or(&[]);
                    let name_len = rest
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or(bad(pos, "node name not terminated"))?;
                    let name = core::str::from_utf8(rest.get(..name_len).unwrap_or(&[]))
                        .map_err(|_| bad(pos, "node name is not UTF-8"))?;
                    pos = align4(pos + name_len + 1).ok_or(bad(pos, "node name overflows"))?;
                    let props_start = pos;
                    loop {
                        match be32(structs, pos) {
                            Some(FDT_NOP) => pos += 4,
                            Some(FDT_PROP) => {
                                let (_, next) = parse_property(structs, self.strings, pos)
                                    .map_err(|what| bad(pos, what))?;
                                pos = next;
                            }
                            _ => break,
                        }
                    }
                    let props = Properties {
                        block: structs.get(props_start..pos).unwrap_or(&[]),
                        strings: self.strings,
                    };
                    let frame = Frame {
                        name,
                        props,
                        address_cells: props.cell_count("#address-cells", 2),
                        size_cells: props.cell_count("#size-cells", 1),
                    };
                    let node = Node {
                        name,
                        props,
                        depth,
                        ancestors: stack.get(..depth).unwrap_or(&[]),
                    };
                    if !visit(&node) {
                        return Ok(());
                    }
                    let slot = stack
                        .get_mut(depth)
                        .ok_or(bad(token_pos, "nodes nested too deep"))?;
                    *slot = frame;
                    depth += 1;
                    seen_root = true;
                }
                FDT_END_NODE => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or(bad(token_pos, "FDT_END_NODE without a node"))?;
                }
                FDT_PROP => return Err(bad(token_pos, "property after a child node")),
                FDT_END => {
                    if depth != 0 {
                        return Err(bad(token_pos, "FDT_END inside a node"));
                    }
                    if !seen_root {
                        return Err(bad(token_pos, "no root node"));
                    }
                    return Ok(());
                }
                _ => return Err(bad(token_pos, "unknown token")),
            }
        }
    }

    /// The first available node whose `compatible` lists `compatible`.
    pub fn find_compatible(&self, compatible: &str) -> Option<Device<'a>> {
        let mut found = None;
        self.for_each_compatible(compatible, |device| {
            found = Some(*device);
            false
        });
        found
    }

    /// Calls `f` for every available node whose `compatible` lists
    /// `compatible`, in tree order, until `f` returns false.
    pub fn for_each_compatible(&self, compatible: &str, mut f: impl FnMut(&Device<'a>) -> bool) {
        // The structure was checked by `new`: a walk cannot fail.
        let _ = self.walk(|node| {
            if node.props.is_available() && node.props.is_compatible(compatible) {
                f(&device_of(node))
            } else {
                true
            }
        });
    }

    /// The node at an absolute `path` ("/soc/serial@7e201000"). A path
    /// component without a unit address matches a node name without one
    /// or with any; the first match in tree order wins.
    pub fn find_by_path(&self, path: &str) -> Option<Device<'a>> {
        self.visit_path(path, |node| device_of(node))
    }

    /// The property `name` of the node at the absolute `path`.
    pub fn property_at(&self, path: &str, name: &str) -> Option<Property<'a>> {
        self.visit_path(path, |node| node.props.get(name)).flatten()
    }

    /// Applies `f` to the first node at the absolute `path`.
    fn visit_path<R>(&self, path: &str, mut f: impl FnMut(&Node<'a, '_>) -> R) -> Option<R> {
        let path = path.strip_prefix('/')?;
        let path = path.strip_suffix('/').unwrap_or(path);
        let wanted_depth = if path.is_empty() {
            0
        } else {
            path.split('/').count()
        };
        let mut found = None;
        let _ = self.walk(|node| {
            if node.depth != wanted_depth {
                return true;
            }
            let names = node
                .ancestors
                .iter()
                .skip(1)
                .map(|frame| frame.name)
                .chain(core::iter::once(node.name));
            let matches = path
                .split('/')
                .filter(|c| !path.is_empty() || !c.is_empty())
                .zip(names)
                .all(|(component, name)| name_matches(component, name));
            if matches {
                found = Some(f(node));
                false
            } else {
                true
            }
        });
        found
    }

    /// Resolves `stdout-path`-like text: an absolute path or an alias (from
    /// `/aliases`, optionally followed by "/more/path"), with any
    /// ":options" suffix stripped.
    pub fn resolve_path(&self, text: &str) -> Option<Device<'a>> {
        let text = text.split(':').next().unwrap_or(text);
        if text.starts_with('/') {
            return self.find_by_path(text);
        }
        let (alias, rest) = match text.find('/') {
            Some(i) => (text.get(..i)?, text.get(i..)?),
            None => (text, ""),
        };
        let target = self.property_at("/aliases", alias)?.as_str()?;
        if rest.is_empty() {
            self.find_by_path(target)
        } else {
            // Join without allocating: look the two halves up together.
            let mut buffer = [0u8; 256];
            let joined = join_path(&mut buffer, target, rest)?;
            self.find_by_path(joined)
        }
    }

    /// The PL011 to print on: the node `/chosen/stdout-path` names when it
    /// is an available "arm,pl011" with a translatable `reg`, or else the
    /// first available "arm,pl011" in tree order that has one. (On the
    /// Raspberry Pi 4 tree stdout-path names the mini UART, so this falls
    /// back to the PL011 at 0xfe201000.)
    pub fn console_pl011(&self) -> Option<Device<'a>> {
        const PL011: &str = "arm,pl011";
        let stdout = self
            .property_at("/chosen", "stdout-path")
            .and_then(|p| p.as_str())
            .and_then(|path| self.resolve_path(path));
        if let Some(device) = stdout
            && device.is_compatible(PL011)
            && device.reg().is_some()
            && device.available
        {
            return Some(device);
        }
        let mut found = None;
        self.for_each_compatible(PL011, |device| {
            if device.reg().is_some() {
                found = Some(*device);
                false
            } else {
                true
            }
        });
        found
    }
}

fn join_path<'b>(buffer: &'b mut [u8], first: &str, second: &str) -> Option<&'b str> {
    let total = first.len().checked_add(second.len())?;
    let out = buffer.get_mut(..total)?;
    let (a, b) = out.split_at_mut(first.len());
    a.copy_from_slice(first.as_bytes());
    b.copy_from_slice(second.as_bytes());
    core::str::from_utf8(out).ok()
}

fn name_matches(component: &str, name: &str) -> bool {
    if component.contains('@') {
        component == name
    } else {
        name.split('@').next() == Some(component)
    }
}

fn device_of<'a>(node: &Node<'a, '_>) -> Device<'a> {
    Device {
        name: node.name,
        regs: node.translated_regs(),
        interrupts: Cells {
            bytes: node.props.get("interrupts").map(|p| p.value).unwrap_or(&[]),
        },
        compatible: node.props.get("compatible").unwrap_or_default(),
        available: node.props.is_available(),
    }
}
