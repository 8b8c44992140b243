//! Background pressure for the demo, each a low-priority task that runs
//! until [`stop`]:
//! - file workload: reads files of the data set (a hot set reread often,
//!   the rest uniformly), so the page cache churns and evicted clean pages
//!   go to cleancache (GCMA setup) or CMA-lent frames fill (CMA setup);
//! - anonymous pressure: heap allocations touched page by page and freed;
//! - pinned pages: a reader that keeps up to [`MAX_PINS`] cached pages
//!   pinned for a few milliseconds each (a reader holding pages, or DMA).

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

/// Priority of background tasks (below the camera and the demo's main).
pub const PRIO_BACKGROUND: u8 = 5;
/// Pins the pinning task holds at most.
pub const MAX_PINS: usize = 256;

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
    Pinned,
}

impl Condition {
    pub const ALL: [Condition; 4] = [
        Condition::Idle,
        Condition::PageCache,
        Condition::Anon,
        Condition::Pinned,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Condition::Idle => "idle",
            Condition::PageCache => "pagecache",
            Condition::Anon => "anon",
            Condition::Pinned => "pinned",
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

/// Starts the tasks for `cond`; returns their ids for [`stop`].
pub fn start(cond: Condition, data: &'static DataSet, seed: u64) -> Vec<TaskId> {
    STOP.store(false, Ordering::Relaxed);
    BYTES_READ.store(0, Ordering::Relaxed);
    let mut tasks = Vec::new();
    match cond {
        Condition::Idle => {}
        Condition::PageCache => tasks.push(sched::spawn("files", PRIO_BACKGROUND, move || {
            file_worker(data, seed)
        })),
        Condition::Anon => {
            tasks.push(sched::spawn("anon", PRIO_BACKGROUND, move || {
                anon_worker(seed)
            }));
        }
        Condition::Pinned => {
            tasks.push(sched::spawn("files", PRIO_BACKGROUND, move || {
                file_worker(data, seed)
            }));
            tasks.push(sched::spawn("pinner", PRIO_BACKGROUND + 1, move || {
                pin_worker(data, seed ^ 0x55)
            }));
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

/// Reads one whole file in `buf`-sized steps (the lock is taken per step,
/// so a higher-priority task waits at most one step); checks every byte if
/// `check`. Returns false if the page cache is gone.
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
        let got = match memsys::with(|pc| pc.read(id, off, &mut buf[..n])) {
            Some(Ok(g)) if g > 0 => g,
            Some(Err(e)) if check_all() => {
                report_problem(|| format!("reading {path} at offset {off}: {e}"));
                return false;
            }
            _ => return false,
        };
        if check {
            if let Some(at) = content.first_mismatch(off, &buf[..got]) {
                ok = false;
                let at = off + at as u64;
                report_problem(|| {
                    format!(
                        "{path}: byte at offset {at} is {:#04x}, its seeded content is {:#04x}",
                        buf[(at - off) as usize],
                        content.byte(at)
                    )
                });
            }
            BYTES_CHECKED.fetch_add(got as u64, Ordering::Relaxed);
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

fn pin_worker(data: &'static DataSet, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut pins: Vec<pagecache::Frame> = Vec::new();
    let mut one = [0u8; 1];
    let mut page = vec![0u8; PAGE_SIZE as usize];
    while !stopped() {
        // A reader that reads a page and keeps holding it (as a DMA engine
        // or a reader copying out would): uniformly chosen, so the page is
        // usually new to the cache and lands wherever the cache grows.
        let (size, path) = &data.files[rng.below(data.files.len() as u64) as usize];
        let index = rng.below(size.div_ceil(PAGE_SIZE).max(1)) as u32;
        // The soak reads (and checks) the whole page it pins.
        let buf: &mut [u8] = if check_all() { &mut page } else { &mut one };
        let at = index as u64 * PAGE_SIZE;
        let pinned = memsys::with(|pc| {
            let id = pc.open(path).ok()?;
            let got = pc.read(id, at, buf).ok()?;
            Some((got, pc.pin_page(id, index).ok()))
        })
        .flatten();
        let pinned = match pinned {
            Some((got, f)) => {
                if check_all() {
                    let content = Content::new(data.seed, path);
                    if let Some(i) = content.first_mismatch(at, &buf[..got]) {
                        report_problem(|| {
                            format!(
                                "{path}: pinned page {index}, byte at offset {} is {:#04x}, its seeded content is {:#04x}",
                                at + i as u64,
                                buf[i],
                                content.byte(at + i as u64)
                            )
                        });
                    }
                    BYTES_CHECKED.fetch_add(got as u64, Ordering::Relaxed);
                }
                f
            }
            None => None,
        };
        if let Some(f) = pinned {
            pins.push(f);
        }
        while pins.len() > MAX_PINS {
            let f = pins.remove(0);
            memsys::with(|pc| pc.unpin_page(f));
        }
        sched::sleep_ns(500_000);
    }
    memsys::with(|pc| {
        for f in pins.drain(..) {
            let _ = pc.unpin_page(f);
        }
    });
}
