//! `cargo xtask real-dtbs`: every `.dtb` of Debian's arm64 linux-image
//! package (the one `tools/dtb/make-dtbs.sh` downloads into build/cache)
//! through physmap, and the one rule checked on each: no byte that a node
//! claims is usable.
//!
//! - The package is unpacked once (dpkg-deb | tar, only the `.dtb` files)
//!   into build/cache/<package>.dtbs/, reused while the .deb is unchanged.
//! - Each blob is read here by a small reader of its own (not physmap's
//!   walker): the claims are the `reg` entries (whole entries, the
//!   `/reserved-memory` node's cells) of every available `/reserved-memory`
//!   child and every `/memreserve/` entry.
//! - A tree that leaves RAM to the boot loader (no memory node with a
//!   non-zero `reg`) gets a `memory@...` node covering every claim, with
//!   1 GiB to spare for dynamic regions: every claim then lies in RAM.
//! - physmap parses it (a panic is caught and counted); the check fails on
//!   any panic, any fatal error, any claimed byte in a usable range, and
//!   any claimed byte inside an area that is not the claim's own region.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use physmap::{MemoryMap, PhysRange};

const GIB: u64 = 1 << 30;

/// The newest cached kernel package, as make-dtbs looks for it.
pub fn cached_deb(root: &Path) -> Option<PathBuf> {
    let mut debs: Vec<PathBuf> = fs::read_dir(root.join("build/cache"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("linux-image-") && name.ends_with("_arm64.deb")
        })
        .collect();
    debs.sort();
    debs.pop()
}

/// `cargo xtask real-dtbs [--lines]` (`--lines`: every diagnostic line).
pub fn command(root: &Path, args: &[String]) -> ExitCode {
    let lines = args.iter().any(|a| a == "--lines");
    let Some(deb) = cached_deb(root) else {
        eprintln!(
            "real-dtbs: no linux-image-*_arm64.deb in build/cache (tools/dtb/make-dtbs.sh --board rpi4 downloads it)"
        );
        return ExitCode::from(2);
    };
    match check(&deb, lines) {
        Ok(s) => {
            print!("{}", s.table());
            if s.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("real-dtbs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// For `cargo xtask test`: `None` when no package is cached, else whether
/// every tree passed and a one-line detail (the table is printed).
pub fn check_if_cached(root: &Path) -> Option<(bool, String)> {
    let deb = cached_deb(root)?;
    super::step("host tests: real device trees (cargo xtask real-dtbs)");
    Some(match check(&deb, false) {
        Ok(s) => {
            print!("{}", s.table());
            (s.ok(), s.failures.first().cloned().unwrap_or_default())
        }
        Err(e) => (false, e),
    })
}

#[derive(Default)]
pub struct Summary {
    source: String,
    trees: usize,
    with_reserved: usize,
    ram_added: usize,
    static_ranges: usize,
    disabled_nodes: usize,
    memreserve: usize,
    claimed_bytes: u128,
    regions: usize,
    firmware: usize,
    refused: usize,
    diagnostics: usize,
    claimed_usable: u128,
    claimed_in_areas: u128,
    failures: Vec<String>,
}

impl Summary {
    fn ok(&self) -> bool {
        self.failures.is_empty() && self.trees > 0
    }

    fn table(&self) -> String {
        let rows: [(&str, String); 14] = [
            ("trees", self.trees.to_string()),
            ("with /reserved-memory", self.with_reserved.to_string()),
            ("RAM node added", self.ram_added.to_string()),
            (
                "reserved-memory reg entries",
                self.static_ranges.to_string(),
            ),
            (
                "disabled children (claim nothing)",
                self.disabled_nodes.to_string(),
            ),
            ("memreserve entries", self.memreserve.to_string()),
            ("claimed bytes", self.claimed_bytes.to_string()),
            ("areas (gcma, cma, carveout)", self.regions.to_string()),
            ("excluded: firmware", self.firmware.to_string()),
            ("excluded: refused", self.refused.to_string()),
            ("diagnostic lines", self.diagnostics.to_string()),
            ("claimed bytes usable", self.claimed_usable.to_string()),
            (
                "claimed bytes in other areas",
                self.claimed_in_areas.to_string(),
            ),
            ("trees failing", self.failures.len().to_string()),
        ];
        let mut out = format!("real device trees: {}\n", self.source);
        for (name, value) in rows {
            out.push_str(&format!("  {name:<34} {value:>14}\n"));
        }
        for failure in self.failures.iter().take(20) {
            out.push_str(&format!("FAIL {failure}\n"));
        }
        out.push_str(if self.ok() {
            "real-dtbs: pass\n"
        } else {
            "real-dtbs: FAIL\n"
        });
        out
    }
}

/// Unpacks (once) and checks every tree of `deb`.
fn check(deb: &Path, lines: bool) -> Result<Summary, String> {
    let dir = unpack(deb)?;
    let mut files = Vec::new();
    collect_dtbs(&dir, &mut files);
    files.sort();
    let mut s = Summary {
        source: format!("{} ({} .dtb files)", deb.display(), files.len()),
        ..Summary::default()
    };
    for file in &files {
        let name = file
            .strip_prefix(&dir)
            .unwrap_or(file)
            .display()
            .to_string();
        let blob = fs::read(file).map_err(|e| format!("{name}: {e}"))?;
        if let Err(e) = check_tree(&blob, &mut s, |l| {
            if lines {
                println!("{name}: {l}");
            }
        }) {
            s.failures.push(format!("{name}: {e}"));
        }
    }
    Ok(s)
}

fn unpack(deb: &Path) -> Result<PathBuf, String> {
    let stem = deb.file_stem().and_then(|s| s.to_str()).unwrap_or("deb");
    let dir = deb.with_file_name(format!("{stem}.dtbs"));
    let stamp = dir.join(".complete");
    let fresh = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if fresh(&stamp).is_some() && fresh(&stamp) >= fresh(deb) {
        return Ok(dir);
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    println!("real-dtbs: unpacking the .dtb files of {}", deb.display());
    let script = "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards '*.dtb'";
    let status = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(deb)
        .arg(&dir)
        .status()
        .map_err(|e| format!("dpkg-deb: {e}"))?;
    if !status.success() {
        return Err(format!("unpacking {} failed: {status}", deb.display()));
    }
    fs::write(&stamp, b"").map_err(|e| e.to_string())?;
    Ok(dir)
}

fn collect_dtbs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_dtbs(&path, out);
        } else if path.extension().is_some_and(|e| e == "dtb") {
            out.push(path);
        }
    }
}

/// One node of the blob as read here.
struct Node {
    depth: usize,
    name: String,
    props: Vec<(String, Vec<u8>)>,
    /// Index of the parent node.
    parent: Option<usize>,
}

impl Node {
    fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn cells(&self, name: &str, default: u32) -> u32 {
        match self.prop(name) {
            Some(v) if v.len() == 4 => be32(v, 0).unwrap_or(default),
            _ => default,
        }
    }

    fn available(&self) -> bool {
        match self.prop("status") {
            None => true,
            Some(v) => matches!(v, b"okay\0" | b"ok\0"),
        }
    }
}

/// The parts of a blob this check needs.
struct Blob {
    nodes: Vec<Node>,
    memreserve: Vec<(u64, u64)>,
    /// Offset (in the structure block) of the root's FDT_END_NODE.
    root_end: usize,
    off_struct: usize,
    size_struct: usize,
    off_strings: usize,
    size_strings: usize,
    off_rsvmap: usize,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn read(b: &[u8]) -> Option<Blob> {
    if be32(b, 0)? != 0xd00d_feed {
        return None;
    }
    let field = |i: usize| be32(b, 4 * i).map(|v| v as usize);
    let (off_struct, off_strings, off_rsvmap) = (field(2)?, field(3)?, field(4)?);
    let (size_strings, size_struct) = (field(8)?, field(9)?);
    let mut memreserve = Vec::new();
    let mut at = off_rsvmap;
    loop {
        let (base, size) = (be64(b, at)?, be64(b, at + 8)?);
        if base == 0 && size == 0 {
            break;
        }
        memreserve.push((base, size));
        at += 16;
    }
    let structs = b.get(off_struct..off_struct + size_struct)?;
    let strings = b.get(off_strings..off_strings + size_strings)?;
    let cstr = |bytes: &[u8], at: usize| -> Option<String> {
        let tail = bytes.get(at..)?;
        let end = tail.iter().position(|&c| c == 0)?;
        Some(String::from_utf8_lossy(&tail[..end]).into_owned())
    };
    let mut nodes: Vec<Node> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut pos = 0;
    let mut root_end = None;
    loop {
        let token = be32(structs, pos)?;
        pos += 4;
        match token {
            1 => {
                let name = cstr(structs, pos)?;
                pos = (pos + name.len() + 1 + 3) & !3;
                nodes.push(Node {
                    depth: stack.len(),
                    name,
                    props: Vec::new(),
                    parent: stack.last().copied(),
                });
                stack.push(nodes.len() - 1);
            }
            2 => {
                stack.pop()?;
                if stack.is_empty() {
                    root_end = Some(pos - 4);
                }
            }
            3 => {
                let len = be32(structs, pos)? as usize;
                let name = cstr(strings, be32(structs, pos + 4)? as usize)?;
                let value = structs.get(pos + 8..pos + 8 + len)?.to_vec();
                pos = (pos + 8 + len + 3) & !3;
                nodes.get_mut(*stack.last()?)?.props.push((name, value));
            }
            4 => {}
            9 => break,
            _ => return None,
        }
    }
    Some(Blob {
        nodes,
        memreserve,
        root_end: root_end?,
        off_struct,
        size_struct,
        off_strings,
        size_strings,
        off_rsvmap,
    })
}

/// `(address, size)` entries of a reg-like value (whole entries only).
fn entries(value: &[u8], ac: u32, sc: u32) -> Vec<(u64, u64)> {
    let cell = |chunk: &[u8], from: u32, n: u32| -> u64 {
        (0..n).fold(0u64, |acc, i| {
            (acc << 32) | u64::from(be32(chunk, 4 * (from + i) as usize).unwrap_or(0))
        })
    };
    if !(1..=2).contains(&ac) || sc > 2 {
        return Vec::new();
    }
    value
        .chunks_exact(4 * (ac + sc) as usize)
        .map(|c| (cell(c, 0, ac), cell(c, ac, sc)))
        .collect()
}

/// Appends to `blob` a root child `memory@BASE` with `reg` covering
/// `ram`, in the root's cells; returns the new blob.
fn with_memory_node(b: &[u8], t: &Blob, ram: PhysRange, ac: u32, sc: u32) -> Vec<u8> {
    let strings = &b[t.off_strings..t.off_strings + t.size_strings];
    let mut new_strings = strings.to_vec();
    let off_device_type = new_strings.len() as u32;
    new_strings.extend_from_slice(b"device_type\0");
    let off_reg = new_strings.len() as u32;
    new_strings.extend_from_slice(b"reg\0");

    let push_cells = |out: &mut Vec<u8>, v: u64, n: u32| {
        for i in (0..n).rev() {
            out.extend_from_slice(&((v >> (32 * i)) as u32).to_be_bytes());
        }
    };
    // Entries of at most 2 GiB, so that one size cell holds them.
    let mut reg = Vec::new();
    let mut base = ram.base;
    while base < ram.end() {
        let size = (ram.end() - base).min(2 * GIB);
        push_cells(&mut reg, base, ac);
        push_cells(&mut reg, size, sc);
        base += size;
    }
    let pad = |v: &mut Vec<u8>| v.resize(v.len().next_multiple_of(4), 0);
    let mut node = Vec::new();
    node.extend_from_slice(&1u32.to_be_bytes());
    node.extend_from_slice(format!("memory@{:x}\0", ram.base).as_bytes());
    pad(&mut node);
    for (name_off, value) in [(off_device_type, &b"memory\0"[..]), (off_reg, &reg[..])] {
        node.extend_from_slice(&3u32.to_be_bytes());
        node.extend_from_slice(&(value.len() as u32).to_be_bytes());
        node.extend_from_slice(&name_off.to_be_bytes());
        node.extend_from_slice(value);
        pad(&mut node);
    }
    node.extend_from_slice(&2u32.to_be_bytes());

    let structs = &b[t.off_struct..t.off_struct + t.size_struct];
    let mut new_struct = structs[..t.root_end].to_vec();
    new_struct.extend_from_slice(&node);
    new_struct.extend_from_slice(&structs[t.root_end..]);
    let rsvmap_len = 16 * (t.memreserve.len() + 1);
    let rsvmap = &b[t.off_rsvmap..t.off_rsvmap + rsvmap_len];

    let header = 40;
    let off_struct = header + rsvmap_len;
    let off_strings = off_struct + new_struct.len();
    let total = off_strings + new_strings.len();
    let mut out = b[..header].to_vec();
    let mut set =
        |i: usize, v: usize| out[4 * i..4 * i + 4].copy_from_slice(&(v as u32).to_be_bytes());
    set(1, total);
    set(2, off_struct);
    set(3, off_strings);
    set(4, header);
    set(8, new_strings.len());
    set(9, new_struct.len());
    out.extend_from_slice(rsvmap);
    out.extend_from_slice(&new_struct);
    out.extend_from_slice(&new_strings);
    out
}

fn overlap(a: &PhysRange, b: &PhysRange) -> u128 {
    let start = a.base.max(b.base);
    let end = a.end().min(b.end());
    u128::from(end.saturating_sub(start))
}

fn check_tree(blob: &[u8], s: &mut Summary, mut line: impl FnMut(&str)) -> Result<(), String> {
    let t = read(blob).ok_or("this check's reader cannot read it")?;
    s.trees += 1;
    let root = t.nodes.first().ok_or("no root node")?;
    let (ac, sc) = (
        root.cells("#address-cells", 2),
        root.cells("#size-cells", 1),
    );

    // Claims: (node name, range).
    let mut claims: Vec<(String, PhysRange)> = Vec::new();
    for &(base, size) in &t.memreserve {
        s.memreserve += 1;
        claims.push(("/memreserve/".into(), PhysRange::new(base, size)));
    }
    let reserved = t
        .nodes
        .iter()
        .position(|n| n.depth == 1 && n.name == "reserved-memory");
    if let Some(r) = reserved {
        s.with_reserved += 1;
        let parent = &t.nodes[r];
        let (rac, rsc) = (
            parent.cells("#address-cells", 2),
            parent.cells("#size-cells", 1),
        );
        for child in t.nodes.iter().filter(|n| n.parent == Some(r)) {
            if !child.available() {
                s.disabled_nodes += 1;
                continue;
            }
            for (base, size) in entries(child.prop("reg").unwrap_or(&[]), rac, rsc) {
                s.static_ranges += 1;
                let range = PhysRange::from_bounds(base, base.saturating_add(size));
                claims.push((child.name.clone(), range));
            }
        }
    }
    s.claimed_bytes += claims.iter().map(|(_, r)| u128::from(r.size)).sum::<u128>();

    // RAM left to the boot loader: add a node covering every claim.
    let has_ram = t.nodes.iter().any(|n| {
        n.depth == 1
            && n.prop("device_type") == Some(b"memory\0")
            && n.available()
            && entries(n.prop("reg").unwrap_or(&[]), ac, sc)
                .iter()
                .any(|&(_, size)| size != 0)
    });
    let patched;
    let blob = if has_ram {
        blob
    } else {
        s.ram_added += 1;
        let limit = if ac == 1 { 1u64 << 32 } else { u64::MAX };
        let sized = claims.iter().filter(|(_, r)| r.size != 0 && r.base < limit);
        let low = sized.clone().map(|(_, r)| r.base).min().unwrap_or(GIB);
        let high = sized.map(|(_, r)| r.end()).max().unwrap_or(2 * GIB);
        let base = low & !(GIB - 1);
        let end = high.saturating_add(GIB - 1).saturating_add(GIB).min(limit) & !(GIB - 1);
        patched = with_memory_node(blob, &t, PhysRange::from_bounds(base, end), ac, sc);
        &patched[..]
    };

    let parsed = panic::catch_unwind(|| {
        MemoryMap::parse(blob, PhysRange::default(), PhysRange::default()).map(|map| {
            let regions: Vec<(String, PhysRange)> = map
                .reserved
                .iter()
                .map(|r| (r.name.to_string(), r.range))
                .collect();
            let count = |kind| map.excluded.iter().filter(|e| e.kind == kind).count();
            let lines: Vec<String> = map.diagnostics.iter().map(|d| d.to_string()).collect();
            (
                map.usable.to_vec(),
                regions,
                count(physmap::ExcludedKind::Firmware),
                count(physmap::ExcludedKind::Refused),
                map.diagnostics.len() + map.diagnostics_dropped,
                lines,
            )
        })
    });
    let (usable, regions, firmware, refused, diagnostics, lines) = match parsed {
        Err(_) => return Err("physmap panicked".into()),
        Ok(Err(e)) => return Err(format!("physmap: {e}")),
        Ok(Ok(m)) => m,
    };
    s.regions += regions.len();
    s.firmware += firmware;
    s.refused += refused;
    s.diagnostics += diagnostics;
    lines.iter().for_each(|l| line(l));
    let mut problems = Vec::new();
    for (name, claim) in &claims {
        let in_usable: u128 = usable.iter().map(|u| overlap(u, claim)).sum();
        let in_areas: u128 = regions
            .iter()
            .filter(|(n, r)| !(n == name && r == claim))
            .map(|(_, r)| overlap(r, claim))
            .sum();
        s.claimed_usable += in_usable;
        s.claimed_in_areas += in_areas;
        if in_usable != 0 || in_areas != 0 {
            problems.push(format!(
                "{name} {claim}: {in_usable} bytes usable, {in_areas} in other areas"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
