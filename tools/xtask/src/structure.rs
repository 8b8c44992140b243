//! `cargo xtask structure`: two rules of the source tree, checked by reading
//! the sources as text (nothing is compiled).
//!
//! 1. No import cycle between the modules of `kernel/src`. The module tree is
//!    followed from `lib.rs` through its `mod` declarations (`#[path]`
//!    honoured); every `crate::…` path in a module's file (in `use` trees,
//!    expressions, types and `$crate::` macro bodies; comments and string
//!    literals skipped), and every `super::…` or `self::…` path resolved
//!    against the file's module (inline `mod x { .. }` blocks counted), is
//!    an edge to the deepest module it names. Items of the crate root
//!    (`lib.rs`) are no module's dependency: the root declares every
//!    module. A cycle is reported by the names of the modules in it (one
//!    strongly connected component of the graph), with one path through
//!    them; a component of one module and its own submodules only (a
//!    parent and the children that use its items) is no cycle.
//! 2. No Rust source file over [`MAX_LINES`] lines outside tests (a file
//!    under a `tests` directory, named `tests.rs` or `*_tests.rs`). Every
//!    `*.rs` under `kernel/`, `boards/` and `tools/` counts.
//!
//! Known offenders are listed in `tools/xtask/structure-allow.txt` (one per
//! line: `cycle A B ...` with the modules sorted, or `size PATH`). They are
//! reported but do not fail the check; anything not listed fails it, and so
//! does a listed offender that is gone (remove its line when it is fixed,
//! so that it cannot come back unnoticed).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// The longest source file allowed outside tests.
pub const MAX_LINES: usize = 800;

/// One rule broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Offence {
    /// Modules that import each other: sorted names, and one cycle through
    /// them (first name repeated at the end).
    Cycle {
        modules: Vec<String>,
        path: Vec<String>,
    },
    /// A source file over [`MAX_LINES`] lines (path relative to the root).
    Size { file: String, lines: usize },
}

impl Offence {
    /// The allow-list line that names this offence.
    pub fn key(&self) -> String {
        match self {
            Offence::Cycle { modules, .. } => format!("cycle {}", modules.join(" ")),
            Offence::Size { file, .. } => format!("size {file}"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Offence::Cycle { path, .. } => format!("import cycle: {}", path.join(" -> ")),
            Offence::Size { file, lines } => {
                format!("{file}: {lines} lines (over {MAX_LINES})")
            }
        }
    }
}

/// The outcome of one run.
pub struct Outcome {
    /// Offences not on the allow-list.
    pub new: Vec<Offence>,
    /// Offences on the allow-list.
    pub allowed: Vec<Offence>,
    /// Allow-list lines that match no offence any more.
    pub stale: Vec<String>,
    /// Problems reading the tree (a declared module without its file, ...).
    pub errors: Vec<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.new.is_empty() && self.stale.is_empty() && self.errors.is_empty()
    }

    /// The report printed by `cargo xtask structure`.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for e in &self.errors {
            let _ = writeln!(s, "error: {e}");
        }
        for o in &self.new {
            let _ = writeln!(s, "FAIL  {}", o.describe());
        }
        for k in &self.stale {
            let _ = writeln!(
                s,
                "FAIL  '{k}' is fixed: remove its line from tools/xtask/structure-allow.txt"
            );
        }
        for o in &self.allowed {
            let _ = writeln!(s, "known {} (allow-listed)", o.describe());
        }
        let _ = writeln!(
            s,
            "structure: {} new, {} known, {} stale allow-list lines, {} errors",
            self.new.len(),
            self.allowed.len(),
            self.stale.len(),
            self.errors.len()
        );
        s
    }
}

/// Checks the tree at `root` against the allow-list text `allow`.
pub fn check(root: &Path, allow: &str) -> Outcome {
    let mut errors = Vec::new();
    let mut offences = Vec::new();
    match module_graph(&root.join("kernel/src")) {
        Ok((graph, errs)) => {
            errors.extend(errs);
            offences.extend(cycles(&graph));
        }
        Err(e) => errors.push(e),
    }
    let mut files = Vec::new();
    for dir in ["kernel", "boards", "tools"] {
        rust_files(root, &root.join(dir), &mut files);
    }
    files.sort();
    for rel in files {
        if is_test_file(&rel) {
            continue;
        }
        match fs::read_to_string(root.join(&rel)) {
            Ok(text) => {
                let lines = text.lines().count();
                if lines > MAX_LINES {
                    offences.push(Offence::Size { file: rel, lines });
                }
            }
            Err(e) => errors.push(format!("{rel}: {e}")),
        }
    }
    let listed: BTreeSet<String> = allow
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").split_whitespace())
        .map(|words| words.collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    let (allowed, new): (Vec<_>, Vec<_>) = offences
        .into_iter()
        .partition(|o| listed.contains(&o.key()));
    let found: BTreeSet<String> = allowed.iter().map(Offence::key).collect();
    let stale = listed.into_iter().filter(|k| !found.contains(k)).collect();
    Outcome {
        new,
        allowed,
        stale,
        errors,
    }
}

/// `cargo xtask structure --graph`: the module graph, one line per module.
pub fn print_graph(root: &Path) -> bool {
    match module_graph(&root.join("kernel/src")) {
        Ok((graph, errors)) => {
            for (m, uses) in &graph {
                let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
                println!("{m}: {}", uses.join(" "));
            }
            for e in &errors {
                println!("error: {e}");
            }
            errors.is_empty()
        }
        Err(e) => {
            println!("error: {e}");
            false
        }
    }
}

/// `cargo xtask structure`: prints the report; true if the check passes.
pub fn run(root: &Path) -> bool {
    let allow_file = root.join("tools/xtask/structure-allow.txt");
    let allow = fs::read_to_string(&allow_file).unwrap_or_default();
    let outcome = check(root, &allow);
    print!("{}", outcome.report());
    outcome.ok()
}

/// Every `*.rs` below `dir` (paths relative to `root`, `/`-separated),
/// leaving out `target` and `build` directories and hidden ones.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "build") {
                rust_files(root, &path, out);
            }
        } else if name.ends_with(".rs")
            && let Ok(rel) = path.strip_prefix(root)
        {
            let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
            out.push(parts.join("/"));
        }
    }
}

/// A test file: under a `tests` directory, or named `tests.rs`/`*_tests.rs`.
pub fn is_test_file(rel: &str) -> bool {
    let mut parts: Vec<&str> = rel.split('/').collect();
    let name = parts.pop().unwrap_or("");
    parts.contains(&"tests") || name == "tests.rs" || name.ends_with("_tests.rs")
}

/// Module name (`a::b`) to the modules its file names through `crate::`.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Follows the `mod` declarations from `src/lib.rs` and collects the edges.
/// Returns the graph (the crate root left out) and the problems met.
fn module_graph(src: &Path) -> Result<(Graph, Vec<String>), String> {
    let lib = src.join("lib.rs");
    if !lib.exists() {
        return Err(format!("{}: no such file", lib.display()));
    }
    let mut errors = Vec::new();
    // (module path, file, directory its child modules live in)
    let mut todo = vec![(Vec::<String>::new(), lib.clone(), src.to_path_buf())];
    let mut texts = BTreeMap::new();
    while let Some((module, file, dir)) = todo.pop() {
        let text = match fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        for (name, path_attr) in mod_decls(&strip(&text, false)) {
            let mut child = module.clone();
            child.push(name.clone());
            let (child_file, child_dir) = match path_attr {
                // A #[path] file counts as a mod.rs: its children sit beside it.
                Some(p) => {
                    let f = file.parent().unwrap_or(src).join(p);
                    let d = f.parent().unwrap_or(src).to_path_buf();
                    (f, d)
                }
                None => {
                    let flat = dir.join(format!("{name}.rs"));
                    let nested = dir.join(&name).join("mod.rs");
                    if flat.exists() {
                        (flat, dir.join(&name))
                    } else if nested.exists() {
                        (nested, dir.join(&name))
                    } else {
                        errors.push(format!(
                            "module {}: neither {} nor {}",
                            child.join("::"),
                            flat.display(),
                            nested.display()
                        ));
                        continue;
                    }
                }
            };
            todo.push((child, child_file, child_dir));
        }
        texts.insert(module.join("::"), strip(&text, true));
    }
    let known: BTreeSet<String> = texts.keys().filter(|m| !m.is_empty()).cloned().collect();
    let mut graph = Graph::new();
    for (module, text) in &texts {
        if module.is_empty() {
            continue;
        }
        let edges = graph.entry(module.clone()).or_default();
        let segments: Vec<String> = module.split("::").map(str::to_string).collect();
        for path in crate_paths(text, &segments) {
            // The deepest module the path names (an item's path ends in the item).
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|m| known.contains(m));
            if let Some(t) = target
                && t != *module
            {
                edges.insert(t);
            }
        }
    }
    Ok((graph, errors))
}

/// The source without comments and, if `blank_strings`, with the contents
/// of string and char literals blanked out (line breaks kept).
fn strip(src: &str, blank_strings: bool) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, ch: char| {
        out.push(if ch == '\n' || !blank_strings {
            ch
        } else {
            ' '
        })
    };
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(if c[i] == '\n' { '\n' } else { ' ' });
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (next == Some('"') || next == Some('#'))
            && !(i > 0 && is_ident(c[i - 1]))
        {
            // r"..." or r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            out.push('"');
            j += 1;
            while j < c.len() {
                if c[j] == '"' && (1..=hashes).all(|h| c.get(j + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                blank(&mut out, c[j]);
                j += 1;
            }
            out.push('"');
            i = j;
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '\u{..}'), else a lifetime or label.
            let end = if next == Some('\\') {
                (i + 2..c.len()).find(|&j| c[j] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    if blank_strings {
                        out.push_str("' '");
                    } else {
                        out.extend(&c[i..=e]);
                    }
                    i = e + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// Tokens enough for paths: identifiers, `::`, and single punctuation.
fn tokens(text: &str) -> Vec<String> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if is_ident(c[i]) {
            let start = i;
            while i < c.len() && is_ident(c[i]) {
                i += 1;
            }
            out.push(c[start..i].iter().collect());
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else if c[i].is_whitespace() {
            i += 1;
        } else {
            out.push(c[i].to_string());
            i += 1;
        }
    }
    out
}

/// `mod name;` declarations (not inline `mod name { .. }`), each with the
/// value of its `#[path = "..."]` if it has one. `text` has its comments
/// stripped but its strings kept.
fn mod_decls(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut pending_path: Option<String> = None;
    for line in text.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("#[path") {
            pending_path = rest.split('"').nth(1).map(str::to_string);
            continue;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "mod") else {
            if !l.starts_with("#[") && !l.is_empty() {
                pending_path = None;
            }
            continue;
        };
        let declaration = words[..at]
            .iter()
            .all(|w| w.starts_with("pub") || w.starts_with("#["));
        if declaration && let Some(name) = words.get(at + 1).and_then(|w| w.strip_suffix(';')) {
            out.push((name.to_string(), pending_path.take()));
        }
        pending_path = None;
    }
    out
}

/// Every path that starts with `crate::` or `$crate::`, or with `super::`
/// or `self::` (resolved against `module`, the file's module, and any
/// inline `mod name { .. }` around the path), as a path from the crate
/// root without the `crate` segment; use trees expanded (`crate::{a::b, c}`
/// gives `a::b` and `c`).
fn crate_paths(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let t = tokens(text);
    let mut out = Vec::new();
    // Inline modules open around the current token: (name, brace depth
    // outside their body).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let word = |k: usize| t.get(k).map(String::as_str);
    while i < t.len() {
        match t[i].as_str() {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|&(_, d)| d == depth) {
                    inline.pop();
                }
            }
            "mod" if word(i + 2) == Some("{") => {
                inline.push((t[i + 1].clone(), depth));
            }
            _ => {}
        }
        let starts_path = i == 0 || word(i - 1) != Some("::");
        let base = match t[i].as_str() {
            "crate" if word(i + 1) == Some("::") => Some((Vec::new(), i + 2)),
            "self" | "super" if starts_path && word(i + 1) == Some("::") => {
                let mut here: Vec<String> = module.to_vec();
                here.extend(inline.iter().map(|(n, _)| n.clone()));
                let mut j = i;
                if t[j] == "self" {
                    j += 2;
                }
                while word(j) == Some("super") && word(j + 1) == Some("::") {
                    here.pop();
                    j += 2;
                }
                Some((here, j))
            }
            _ => None,
        };
        match base {
            Some((prefix, mut j)) => {
                use_tree(&t, &mut j, prefix, &mut out);
                i = j.max(i + 1);
            }
            None => i += 1,
        }
    }
    out
}

/// Reads one use tree (or plain path) at `t[*j]`, appending full paths.
fn use_tree(t: &[String], j: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    loop {
        match t.get(*j).map(String::as_str) {
            Some("{") => {
                *j += 1;
                loop {
                    match t.get(*j).map(String::as_str) {
                        None => return,
                        Some("}") => {
                            *j += 1;
                            return;
                        }
                        Some(",") => *j += 1,
                        Some(_) => use_tree(t, j, prefix.clone(), out),
                    }
                }
            }
            Some("*") => {
                *j += 1;
                out.push(prefix);
                return;
            }
            Some("self") => {
                *j += 1;
                out.push(prefix);
                return;
            }
            Some(w) if w.chars().next().is_some_and(is_ident) => {
                prefix.push(w.to_string());
                *j += 1;
                if t.get(*j).map(String::as_str) == Some("::") {
                    *j += 1;
                    continue;
                }
                if t.get(*j).map(String::as_str) == Some("as") {
                    *j += 2;
                }
                out.push(prefix);
                return;
            }
            _ => {
                if !prefix.is_empty() {
                    out.push(prefix);
                }
                return;
            }
        }
    }
}

/// The strongly connected components of more than one module (Tarjan),
/// each with one cycle through all of its members' first-found order.
fn cycles(graph: &Graph) -> Vec<Offence> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        sccs: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                scc.push(w);
                if w == v {
                    break;
                }
            }
            s.sccs.push(scc);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        sccs: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    let mut out: Vec<Offence> = s
        .sccs
        .into_iter()
        .filter(|scc| scc.len() > 1 && !one_lineage(scc))
        .map(|scc| {
            let members: BTreeSet<&str> = scc.iter().copied().collect();
            let mut modules: Vec<String> = members.iter().map(|m| m.to_string()).collect();
            modules.sort();
            let path = cycle_path(graph, &members, &modules[0]);
            Offence::Cycle { modules, path }
        })
        .collect();
    out.sort_by_key(Offence::key);
    out
}

/// True when every module of `scc` is an ancestor or a descendant of every
/// other (`demo` and `demo::report`): a parent uses its children and a
/// child its parent's items (`super::Thing`), which is one unit, no cycle.
fn one_lineage(scc: &[&str]) -> bool {
    let related = |a: &str, b: &str| {
        a.strip_prefix(b).is_some_and(|r| r.starts_with("::"))
            || b.strip_prefix(a).is_some_and(|r| r.starts_with("::"))
    };
    scc.iter()
        .enumerate()
        .all(|(i, a)| scc[i + 1..].iter().all(|b| related(a, b)))
}

/// The shortest cycle from `start` back to itself inside `members` (BFS).
fn cycle_path(graph: &Graph, members: &BTreeSet<&str>, start: &str) -> Vec<String> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.to_string()]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(&v).into_iter().flatten() {
            if !members.contains(w.as_str()) {
                continue;
            }
            if w == start {
                // Back from v to start, then turned around and closed.
                let mut path = vec![v.clone()];
                while path.last().map(String::as_str) != Some(start) {
                    let at = path.last().expect("non-empty");
                    path.push(prev[at].clone());
                }
                path.reverse();
                path.push(start.to_string());
                return path;
            }
            if !prev.contains_key(w) && w != start {
                prev.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    vec![start.to_string()]
}

#[cfg(test)]
#[path = "structure_tests.rs"]
mod tests;
