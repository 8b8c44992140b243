//! Background pressure for the demo and the soak, each a low-priority task
//! that runs until [`stop`], on the cores its [`Placement`] names:
//! - file workload: reads files of the data set (a hot set reread often,
//!   the rest uniformly), so the page cache churns and evicted clean pages
//!   go to cleancache (GCMA setup) or CMA-lent frames fill (CMA setup);
//! - anonymous pressure: heap allocations touched page by page and freed;
//! - `odirect`: [`ODIRECT_TASKS`] readers, each reading whole files 1 MiB
//!   at a time, every request's page-cache pages pinned from the moment
//!   the request reaches them until the request completes, then released,
//!   continuously (O_DIRECT: the block layer pins the buffer's pages for
//!   each request), beside the file workload;
//! - `longpin`: [`LONGPIN_GROUPS`] groups of [`LONGPIN_PAGES`] random
//!   page-cache pages, each held [`LONGPIN_HOLD_MS`] ms; every
//!   `LONGPIN_HOLD_MS / LONGPIN_GROUPS` ms the oldest group is released and
//!   refilled (vmsplice into pipes that are read late), beside the file
//!   workload.
//!
//! Both pin patterns are the Linux reference's (`tools/linux-cma/cmaload.c`
//! `odirect` and `longpin`, same counts and times), made with the page
//! cache's `pin_page`/`unpin_page`: a pinned page can be neither migrated
//! nor dropped. Rule: every pin a worker takes is released before it ends,
//! each in its own page-cache lock hold (a pin never outlives `stop`).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use frames::PAGE_SIZE;
use testdata::Content;

use crate::memsys;
use crate::sched::{self, TaskId};
use crate::sync::IrqLock;

/// Priority of background tasks (below the camera and the boot context
/// that runs the demo or the soak, `PRIO_MAIN`).
pub const PRIO_BACKGROUND: u8 = 5;
/// Readers of the `odirect` condition (cmaload: the init script runs two).
pub const ODIRECT_TASKS: usize = 2;
/// Size of one `odirect` request: 1 MiB.
pub const ODIRECT_REQUEST: u64 = 1 << 20;
/// Groups (cmaload: pipes) of the `longpin` condition.
pub const LONGPIN_GROUPS: usize = 4;
/// Pages each `longpin` group holds.
pub const LONGPIN_PAGES: usize = 64;
/// How long a `longpin` page is held, ms.
pub const LONGPIN_HOLD_MS: u64 = 2000;

static STOP: AtomicBool = AtomicBool::new(false);
/// Bytes read by file workers since the last `start`.
pub static BYTES_READ: AtomicU64 = AtomicU64::new(0);
/// Files whose every byte was checked, and mismatches found.
pub static FILES_CHECKED: AtomicU64 = AtomicU64::new(0);
pub static MISMATCHES: AtomicU64 = AtomicU64::new(0);
/// Check every byte the workers read (the soak), not every fourth file.
pub static CHECK_ALL: AtomicBool = AtomicBool::new(false);
/// Bytes compared with their seeded content.
pub static BYTES_CHECKED: AtomicU64 = AtomicU64::new(0);
/// The first wrong byte or failed read a worker saw, in words.
pub static FIRST_PROBLEM: IrqLock<Option<String>> = IrqLock::new(None);

fn report_problem(what: impl FnOnce() -> String) {
    let mut p = FIRST_PROBLEM.lock();
    if p.is_none() {
        *p = Some(what());
    }
}

/// Compares `bytes`, read from `path` at offset `at`, with their seeded
/// content: counts them as checked and reports the first wrong byte
/// (`what` says how they were read, e.g. "pinned page 3, "). True if they
/// all match.
fn check_bytes(content: &Content, path: &str, what: &str, at: u64, bytes: &[u8]) -> bool {
    let bad = content.first_mismatch(at, bytes);
    if let Some(i) = bad {
        let off = at + i as u64;
        report_problem(|| {
            format!(
                "{path}: {what}byte at offset {off} is {:#04x}, its seeded content is {:#04x}",
                bytes[i],
                content.byte(off)
            )
        });
    }
    BYTES_CHECKED.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    bad.is_none()
}

fn check_all() -> bool {
    CHECK_ALL.load(Ordering::Relaxed)
}

/// The data set: (seed, [(size, path)]).
pub struct DataSet {
    pub seed: u64,
    pub files: Vec<(u64, String)>,
}

/// Which pressure to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Idle,
    PageCache,
    Anon,
    /// Short pins of every page of 1 MiB requests, continuously.
    Odirect,
    /// Pins held for seconds, turning over.
    Longpin,
}

impl Condition {
    pub const ALL: [Condition; 5] = [
        Condition::Idle,
        Condition::PageCache,
        Condition::Anon,
        Condition::Odirect,
        Condition::Longpin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Condition::Idle => "idle",
            Condition::PageCache => "pagecache",
            Condition::Anon => "anon",
            Condition::Odirect => "odirect",
            Condition::Longpin => "longpin",
        }
    }
}

/// xorshift64*: deterministic choices from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Where the load tasks run. The camera (and the boot context that runs
/// the demo or the soak) is on core 0 either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Every load task on core 0, beside the camera: the one-core
    /// comparison (what a single-core system does; the other cores idle).
    OneCore,
    /// The load tasks spread over cores 1..N-1, round robin, the camera
    /// alone on core 0; on a one-core system the same as `OneCore`.
    Spread,
}

impl Placement {
    /// The cores the run's tasks use (the `cores=` of the demo's lines).
    pub fn cores(self) -> usize {
        match self {
            Placement::OneCore => 1,
            Placement::Spread => sched::cores_online().max(1),
        }
    }

    /// The core of the `k`-th load task.
    fn core_for(self, k: usize) -> usize {
        match self.cores() {
            1 => 0,
            n => 1 + k % (n - 1),
        }
    }
}

/// Starts the tasks for `cond`, placed by `placement`; returns their ids
/// for [`stop`].
pub fn start(
    cond: Condition,
    data: &'static DataSet,
    seed: u64,
    placement: Placement,
) -> Vec<TaskId> {
    STOP.store(false, Ordering::Relaxed);
    BYTES_READ.store(0, Ordering::Relaxed);
    let mut tasks = Vec::new();
    let mut spawn = |name, prio, f: alloc::boxed::Box<dyn FnOnce() + Send>| {
        let core = placement.core_for(tasks.len());
        tasks.push(sched::spawn_on(core, name, prio, f));
    };
    match cond {
        Condition::Idle => {}
        Condition::PageCache => spawn(
            "files",
            PRIO_BACKGROUND,
            alloc::boxed::Box::new(move || file_worker(data, seed)),
        ),
        Condition::Anon => spawn(
            "anon",
            PRIO_BACKGROUND,
            alloc::boxed::Box::new(move || anon_worker(seed)),
        ),
        Condition::Odirect => {
            spawn(
                "files",
                PRIO_BACKGROUND,
                alloc::boxed::Box::new(move || file_worker(data, seed)),
            );
            for k in 0..ODIRECT_TASKS as u64 {
                spawn(
                    "odirect",
                    PRIO_BACKGROUND,
                    alloc::boxed::Box::new(move || odirect_worker(data, seed ^ (0x0d1 + k))),
                );
            }
        }
        Condition::Longpin => {
            spawn(
                "files",
                PRIO_BACKGROUND,
                alloc::boxed::Box::new(move || file_worker(data, seed)),
            );
            spawn(
                "longpin",
                PRIO_BACKGROUND + 1,
                alloc::boxed::Box::new(move || longpin_worker(data, seed ^ 0x55)),
            );
        }
    }
    tasks
}

/// Lets `read_file` run again after a `stop` (for work done inline).
pub fn resume() {
    STOP.store(false, Ordering::Relaxed);
}

/// Stops and joins the tasks `start` returned.
pub fn stop(tasks: Vec<TaskId>) {
    STOP.store(true, Ordering::Relaxed);
    for t in tasks {
        sched::join(t);
    }
}

fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// The longest page-cache step a file worker took since the last
/// [`take_longest_step`], and what it did: its lock hold (µs) and the
/// page-cache counters it moved (pages read from the device, of them by
/// readahead, cleancache restores, evictions).
#[derive(Clone, Copy, Debug, Default)]
pub struct Step {
    pub hold_us: u64,
    pub pages_read: u64,
    pub ra_pages: u64,
    pub cc_restores: u64,
    pub evictions: u64,
}

static LONGEST_STEP: IrqLock<Step> = IrqLock::new(Step {
    hold_us: 0,
    pages_read: 0,
    ra_pages: 0,
    cc_restores: 0,
    evictions: 0,
});

/// The longest step since the last call, and starts a new period.
pub fn take_longest_step() -> Step {
    core::mem::take(&mut *LONGEST_STEP.lock())
}

/// Runs one page-cache step (inside the memory lock) and keeps it if it
/// is the longest so far.
fn timed_step<R>(pc: &mut memsys::Pc, f: impl FnOnce(&mut memsys::Pc) -> R) -> R {
    let before = *pc.stats();
    let t0 = crate::arch::timer::ticks();
    let r = f(pc);
    let hold_us = crate::arch::timer::ticks_to_ns(crate::arch::timer::ticks() - t0) / 1000;
    let mut l = LONGEST_STEP.lock();
    if hold_us > l.hold_us {
        let a = pc.stats();
        *l = Step {
            hold_us,
            pages_read: a.pages_read - before.pages_read,
            ra_pages: a.ra_pages_read - before.ra_pages_read,
            cc_restores: (a.cc_demand_restores + a.cc_ra_restores)
                - (before.cc_demand_restores + before.cc_ra_restores),
            evictions: a.evictions - before.evictions,
        };
    }
    r
}

/// How long a reader sleeps while the device reads a page it needs.
const DEVICE_WAIT_NS: u64 = 20_000;

/// Reads one whole file in `buf`-sized steps (the lock is taken per step,
/// so a higher-priority task waits at most one step, and a step never waits
/// for the device under it: `read_nowait`, then a sleep outside the lock
/// while the device works); checks every byte if `check`. Returns false if
/// the page cache is gone.
pub fn read_file(data: &DataSet, path: &str, check: bool, buf: &mut [u8]) -> bool {
    let Some(Ok(id)) = memsys::with(|pc| pc.open(path)) else {
        return false;
    };
    let size = memsys::with(|pc| pc.file_size(id).unwrap_or(0)).unwrap_or(0);
    let content = Content::new(data.seed, path);
    let mut off = 0u64;
    let mut ok = true;
    while off < size && !stopped() {
        let n = (size - off).min(buf.len() as u64) as usize;
        let got =
            match memsys::with(|pc| timed_step(pc, |pc| pc.read_nowait(id, off, &mut buf[..n]))) {
                Some(Ok(g)) if g > 0 => g,
                Some(Err(pagecache::Error::InFlight)) => {
                    // The device is reading the page: wait outside the memory
                    // lock, so an allocation on another core does not wait
                    // behind the device.
                    sched::sleep_ns(DEVICE_WAIT_NS);
                    continue;
                }
                Some(Err(e)) if check_all() => {
                    report_problem(|| format!("reading {path} at offset {off}: {e}"));
                    return false;
                }
                _ => return false,
            };
        if check && !check_bytes(&content, path, "", off, &buf[..got]) {
            ok = false;
        }
        BYTES_READ.fetch_add(got as u64, Ordering::Relaxed);
        off += got as u64;
    }
    if check && off >= size {
        FILES_CHECKED.fetch_add(1, Ordering::Relaxed);
        if !ok {
            MISMATCHES.fetch_add(1, Ordering::Relaxed);
        }
    }
    true
}

/// 70 % of reads from a hot set (an eighth of the files), 30 % uniform.
pub fn pick<'a>(data: &'a DataSet, rng: &mut Rng) -> &'a str {
    let n = data.files.len() as u64;
    let i = if rng.below(10) < 7 {
        rng.below(n.div_ceil(8))
    } else {
        rng.below(n)
    };
    &data.files[i as usize].1
}

fn file_worker(data: &'static DataSet, seed: u64) {
    let mut rng = Rng::new(seed);
    // 16 KiB steps: the page-cache lock is held for at most four pages.
    let mut buf = vec![0u8; 16 * 1024];
    let mut k = 0u64;
    while !stopped() {
        let path = pick(data, &mut rng);
        // Check every byte of every fourth file read (of every one: soak).
        if !read_file(data, path, k.is_multiple_of(4) || check_all(), &mut buf) {
            sched::sleep_ns(1_000_000);
        }
        k += 1;
    }
}

fn anon_worker(seed: u64) {
    let mut rng = Rng::new(seed);
    while !stopped() {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let target = 16 + rng.below(48) as usize; // 16..64 MiB
        for _ in 0..target {
            if stopped() {
                break;
            }
            let mut c = vec![0u8; 1 << 20];
            for page in c.chunks_mut(PAGE_SIZE as usize) {
                page[0] = 1;
            }
            chunks.push(c);
            sched::sleep_ns(200_000);
        }
        drop(chunks);
    }
}

/// Pins page `index` of file `id` (`path`), reading it in if needed, and,
/// in the soak, reads and checks the page's bytes while it is pinned. None:
/// the page cache is gone or the page could not be had (nothing is pinned
/// then).
fn pin_one(
    data: &DataSet,
    id: pagecache::FileId,
    path: &str,
    index: u32,
    page: &mut [u8],
) -> Option<pagecache::Frame> {
    let at = index as u64 * PAGE_SIZE;
    // As `read_file`: the device is never waited for under the lock.
    let frame = loop {
        match memsys::with(|pc| pc.pin_page_nowait(id, index))? {
            Ok(f) => break f,
            Err(pagecache::Error::InFlight) => sched::sleep_ns(DEVICE_WAIT_NS),
            Err(_) => return None,
        }
    };
    // The page is pinned and up to date: this read waits for nothing.
    let got = if check_all() {
        memsys::with(|pc| pc.read(id, at, page).unwrap_or(0)).unwrap_or(0)
    } else {
        0
    };
    if got > 0 {
        let content = Content::new(data.seed, path);
        let what = format!("pinned page {index}, ");
        check_bytes(&content, path, &what, at, &page[..got]);
    }
    Some(frame)
}

/// Releases every pin in `pins`, one page-cache lock hold each.
fn unpin_all(pins: &mut Vec<pagecache::Frame>) {
    for f in pins.drain(..) {
        let _ = memsys::with(|pc| pc.unpin_page(f));
    }
}

/// One `odirect` reader: a uniformly chosen file read whole, 1 MiB request
/// after 1 MiB request. A request pins its pages one by one as it reaches
/// them (reading those not cached from the device), copies the request out
/// of the pinned pages in 64 KiB steps (checking the bytes as the file
/// workload does), then releases them all: each page is pinned from the
/// moment the request reaches it until the request completes.
fn odirect_worker(data: &'static DataSet, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut pins: Vec<pagecache::Frame> =
        Vec::with_capacity((ODIRECT_REQUEST / PAGE_SIZE) as usize);
    let mut buf = vec![0u8; 64 * 1024];
    let mut k = 0u64;
    while !stopped() {
        let (size, path) = &data.files[rng.below(data.files.len() as u64) as usize];
        let Some(Ok(id)) = memsys::with(|pc| pc.open(path)) else {
            sched::sleep_ns(1_000_000);
            continue;
        };
        let content = Content::new(data.seed, path);
        // Every byte of every fourth file read is checked (of every one:
        // soak), as the file workload does.
        let check = k.is_multiple_of(4) || check_all();
        k += 1;
        let mut file_ok = true;
        let mut off = 0u64;
        while off < *size && !stopped() {
            let end = (off + ODIRECT_REQUEST).min(*size);
            let mut ok = true;
            for index in (off / PAGE_SIZE) as u32..end.div_ceil(PAGE_SIZE) as u32 {
                match pin_one(data, id, path, index, &mut []) {
                    Some(f) => pins.push(f),
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            let mut at = off;
            while ok && at < end {
                let n = (end - at).min(buf.len() as u64) as usize;
                let got = memsys::with(|pc| pc.read(id, at, &mut buf[..n]).ok())
                    .flatten()
                    .unwrap_or(0);
                if got == 0 {
                    break;
                }
                if check && !check_bytes(&content, path, "direct read, ", at, &buf[..got]) {
                    file_ok = false;
                }
                BYTES_READ.fetch_add(got as u64, Ordering::Relaxed);
                at += got as u64;
            }
            unpin_all(&mut pins);
            if !ok || at < end {
                sched::sleep_ns(1_000_000);
                break;
            }
            off = end;
        }
        if check && off >= *size {
            FILES_CHECKED.fetch_add(1, Ordering::Relaxed);
            if !file_ok {
                MISMATCHES.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    unpin_all(&mut pins);
}

/// The `longpin` holder: [`LONGPIN_GROUPS`] groups of [`LONGPIN_PAGES`]
/// uniformly chosen page-cache pages; every `LONGPIN_HOLD_MS /
/// LONGPIN_GROUPS` ms the oldest group is released and refilled with new
/// pages, so each page is held [`LONGPIN_HOLD_MS`] ms and
/// `LONGPIN_GROUPS * LONGPIN_PAGES` pages are pinned at any time.
fn longpin_worker(data: &'static DataSet, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut groups: Vec<Vec<pagecache::Frame>> = (0..LONGPIN_GROUPS)
        .map(|_| Vec::with_capacity(LONGPIN_PAGES))
        .collect();
    let mut page = vec![0u8; PAGE_SIZE as usize];
    let turn_ns = LONGPIN_HOLD_MS * 1_000_000 / LONGPIN_GROUPS as u64;
    let mut turn = 0usize;
    while !stopped() {
        let group = &mut groups[turn % LONGPIN_GROUPS];
        unpin_all(group);
        while group.len() < LONGPIN_PAGES && !stopped() {
            let (size, path) = &data.files[rng.below(data.files.len() as u64) as usize];
            let index = rng.below(size.div_ceil(PAGE_SIZE).max(1)) as u32;
            let pinned = match memsys::with(|pc| pc.open(path)) {
                Some(Ok(id)) => pin_one(data, id, path, index, &mut page),
                _ => None,
            };
            match pinned {
                Some(f) => group.push(f),
                // No page cache, or no memory for the page: try later.
                None => sched::sleep_ns(1_000_000),
            }
        }
        turn += 1;
        // In steps, so that `stop` is not kept waiting for a whole turn.
        let until = crate::arch::timer::ticks() + crate::arch::timer::ns_to_ticks(turn_ns);
        while !stopped() && crate::arch::timer::ticks() < until {
            sched::sleep_ns(turn_ns.min(50_000_000));
        }
    }
    for g in &mut groups {
        unpin_all(g);
    }
}
