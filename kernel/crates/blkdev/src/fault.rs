//! `FaultyDisk`: the block layer's fault-injection wrapper. The kernel runs
//! its disk through it (no faults set) so that self-tests can make the real
//! device fail under the real page cache; host tests wrap a [`RamDisk`].
//!
//! # Faults (all off until set; [`FaultyDisk::clear`] ends every one)
//!
//! * Read errors ([`FaultyDisk::fail_read`]): a read covering a sector of
//!   the read-failure set moves the sectors before the first bad one (as a
//!   disk that fails part way through) and completes with
//!   [`BlockError::Io`] naming the bad sector (status 1, virtio's IOERR).
//!   The rest of the buffer is not touched.
//! * Write errors ([`FaultyDisk::fail_write`]): the same for writes: the
//!   sectors before the bad one reach the device, the request fails.
//! * A device that stops answering ([`FaultyDisk::stall`]): every request
//!   submitted from then on is accepted and never passed on, so it never
//!   completes by itself. The wrapper times it out: once it has waited the
//!   timeout by the clock ([`FaultyDisk::set_clock`]), `poll`/`wait`
//!   complete it with [`BlockError::Timeout`]; without a clock, as soon as a
//!   caller waits and nothing else is in flight (nothing else could ever
//!   complete it). [`FaultyDisk::resume`] lets new requests through again;
//!   swallowed ones still time out, since the device never saw them. Their
//!   buffers are never touched, so a caller may reuse them once the timeout
//!   has been reported.
//!
//! Every injected fault is reported once, when it happens, to the reporter
//! ([`FaultyDisk::set_reporter`]) as a [`Fault`], whose `Display` is the
//! console line the kernel prints.
//!
//! [`FaultyDisk::trace`] records every request (operation, sectors, buffer
//! address), so that a test can learn which sectors hold a cached page.
//!
//! # Rules
//!
//! * The tags of requests in flight must be distinct (the page cache's and
//!   [`QueueMux`](crate::QueueMux)'s are): a partial failure is matched to
//!   the inner device's completion of its prefix by tag.
//! * The inner device's own results pass unchanged; a prefix that the inner
//!   device itself failed keeps the inner device's error.
//! * No locking: owned like any device.
//!
//! [`RamDisk`]: crate::RamDisk

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::fmt;

use crate::{
    BlockDevice, BlockError, Completion, DevStats, Op, Request, SECTOR_SIZE, check_request,
};

/// Default timeout of a request the device does not answer: 5 s.
pub const DEFAULT_TIMEOUT_NS: u64 = 5_000_000_000;

/// What an injected fault did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The request failed at sector `at` after moving the sectors before it.
    Error {
        /// The first bad sector.
        at: u64,
    },
    /// The device never answered; the request timed out after `waited_ns`.
    Timeout {
        /// Time waited, by the clock (0 without one).
        waited_ns: u64,
    },
}

/// One injected fault, for the reporter; `Display` is a console line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Operation of the failed request.
    pub op: Op,
    /// Its first sector.
    pub sector: u64,
    /// Its length in sectors.
    pub sectors: u64,
    /// What happened.
    pub kind: FaultKind,
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Read => "read",
        Op::Write => "write",
        Op::Flush => "flush",
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, s, end) = (op_name(self.op), self.sector, self.sector + self.sectors);
        match self.kind {
            FaultKind::Error { at } => write!(
                f,
                "blk: injected {op} error at sector {at}: {op} of sectors {s}..{end} failed after {} good sectors",
                at - s
            ),
            FaultKind::Timeout { waited_ns } => write!(
                f,
                "blk: device stopped answering: {op} of sectors {s}..{end} timed out after {} ms",
                waited_ns / 1_000_000
            ),
        }
    }
}

/// A request as [`FaultyDisk::trace`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traced {
    /// Operation.
    pub op: Op,
    /// First sector.
    pub sector: u64,
    /// Sectors.
    pub sectors: u64,
    /// Buffer address.
    pub buf: usize,
}

/// A swallowed request: what the timeout reports (never its buffer, which
/// the wrapper does not touch).
#[derive(Debug, Clone, Copy)]
struct Held {
    tag: u64,
    op: Op,
    sector: u64,
    sectors: u64,
    since: u64,
}

/// Fault-injecting wrapper around a block device.
pub struct FaultyDisk<D> {
    inner: D,
    bad_reads: BTreeSet<u64>,
    bad_writes: BTreeSet<u64>,
    /// Completions of requests failed at their first sector.
    failed: VecDeque<Completion>,
    /// Tags whose prefix is at the inner device, with the error to report.
    partial: BTreeMap<u64, BlockError>,
    stalled: bool,
    /// Requests the stalled device swallowed, oldest first.
    held: VecDeque<Held>,
    clock: Option<fn() -> u64>,
    timeout_ns: u64,
    reporter: Option<fn(&Fault)>,
    trace: Option<Vec<Traced>>,
    /// Requests failed by an injected error so far.
    pub injected: u64,
    /// Requests timed out so far.
    pub timeouts: u64,
}

impl<D: BlockDevice> FaultyDisk<D> {
    /// Wraps `inner` with no faults set, no clock and no reporter.
    pub fn new(inner: D) -> Self {
        FaultyDisk {
            inner,
            bad_reads: BTreeSet::new(),
            bad_writes: BTreeSet::new(),
            failed: VecDeque::new(),
            partial: BTreeMap::new(),
            stalled: false,
            held: VecDeque::new(),
            clock: None,
            timeout_ns: DEFAULT_TIMEOUT_NS,
            reporter: None,
            trace: None,
            injected: 0,
            timeouts: 0,
        }
    }
    /// Reads covering `sector` fail from now on.
    pub fn fail_read(&mut self, sector: u64) {
        self.bad_reads.insert(sector);
    }
    /// Writes covering `sector` fail from now on.
    pub fn fail_write(&mut self, sector: u64) {
        self.bad_writes.insert(sector);
    }
    /// The device stops answering: requests submitted from now on are
    /// swallowed and time out.
    pub fn stall(&mut self) {
        self.stalled = true;
    }
    /// The device answers new requests again.
    pub fn resume(&mut self) {
        self.stalled = false;
    }
    /// Whether the device is stalled.
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }
    /// Removes every fault (failure sets and stall). Requests already failed
    /// or swallowed still complete with their error.
    pub fn clear(&mut self) {
        self.bad_reads.clear();
        self.bad_writes.clear();
        self.stalled = false;
    }
    /// The clock (nanoseconds, monotonic) and the timeout of unanswered
    /// requests.
    pub fn set_clock(&mut self, clock: fn() -> u64, timeout_ns: u64) {
        self.clock = Some(clock);
        self.timeout_ns = timeout_ns;
    }
    /// Changes the timeout of unanswered requests.
    pub fn set_timeout(&mut self, timeout_ns: u64) {
        self.timeout_ns = timeout_ns;
    }
    /// The timeout of unanswered requests.
    pub fn timeout(&self) -> u64 {
        self.timeout_ns
    }
    /// Called once for every injected fault, when it happens.
    pub fn set_reporter(&mut self, reporter: fn(&Fault)) {
        self.reporter = Some(reporter);
    }
    /// Starts (`true`, clearing the record) or stops recording requests.
    pub fn trace(&mut self, on: bool) {
        self.trace = on.then(Vec::new);
    }
    /// The requests recorded since `trace(true)`.
    pub fn traced(&self) -> &[Traced] {
        self.trace.as_deref().unwrap_or(&[])
    }
    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
    /// The wrapped device, mutable.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
    /// Unwraps.
    pub fn into_inner(self) -> D {
        self.inner
    }

    fn now(&self) -> u64 {
        self.clock.map(|c| c()).unwrap_or(0)
    }

    fn report(&self, op: Op, sector: u64, sectors: u64, kind: FaultKind) {
        if let Some(r) = self.reporter {
            r(&Fault {
                op,
                sector,
                sectors,
                kind,
            });
        }
    }

    /// Times out the oldest swallowed request if it has waited long enough
    /// (or at once with `force`).
    fn expire(&mut self, force: bool) -> Option<Completion> {
        let h = *self.held.front()?;
        let waited = self.now().saturating_sub(h.since);
        if !force && (self.clock.is_none() || waited < self.timeout_ns) {
            return None;
        }
        self.held.pop_front();
        self.timeouts += 1;
        let kind = FaultKind::Timeout { waited_ns: waited };
        self.report(h.op, h.sector, h.sectors, kind);
        Some(Completion {
            tag: h.tag,
            result: Err(BlockError::Timeout { sector: h.sector }),
        })
    }

    /// An inner completion, with the injected error of a partial failure.
    fn finish(&mut self, mut c: Completion) -> Completion {
        if let Some(e) = self.partial.remove(&c.tag) {
            c.result = c.result.and(Err(e));
        }
        c
    }
}

impl<D: BlockDevice> BlockDevice for FaultyDisk<D> {
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn queue_depth(&self) -> usize {
        self.inner.queue_depth()
    }
    fn in_flight(&self) -> usize {
        self.inner.in_flight() + self.failed.len() + self.held.len()
    }
    // SAFETY (contract): BlockDevice::submit's; the body keeps it: the
    // buffer goes to the inner device whole, as a prefix, or not at all.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        check_request(&req, self.sector_count())?;
        if let Some(t) = self.trace.as_mut() {
            t.push(Traced {
                op: req.op,
                sector: req.sector,
                sectors: req.sectors(),
                buf: req.buf as usize,
            });
        }
        if self.stalled {
            if self.in_flight() >= self.queue_depth() {
                return Err(BlockError::QueueFull);
            }
            let since = self.now();
            self.held.push_back(Held {
                tag: req.tag,
                op: req.op,
                sector: req.sector,
                sectors: req.sectors(),
                since,
            });
            return Ok(());
        }
        let set = match req.op {
            Op::Read => &self.bad_reads,
            Op::Write => &self.bad_writes,
            Op::Flush => {
                // SAFETY: forwarded with the caller's guarantee unchanged.
                return unsafe { self.inner.submit(req) };
            }
        };
        let Some(&bad) = set.range(req.sector..req.sector + req.sectors()).next() else {
            // SAFETY: forwarded with the caller's guarantee unchanged.
            return unsafe { self.inner.submit(req) };
        };
        let err = BlockError::Io {
            sector: bad,
            status: 1,
        };
        if bad > req.sector {
            let prefix = Request {
                len: (bad - req.sector) as usize * SECTOR_SIZE,
                ..req
            };
            // SAFETY: the first `prefix.len` bytes of the caller's buffer,
            // under the caller's guarantee; the rest is not touched.
            unsafe { self.inner.submit(prefix)? };
            self.partial.insert(req.tag, err);
        } else {
            if self.in_flight() >= self.queue_depth() {
                return Err(BlockError::QueueFull);
            }
            self.failed.push_back(Completion {
                tag: req.tag,
                result: Err(err),
            });
        }
        self.injected += 1;
        self.report(
            req.op,
            req.sector,
            req.sectors(),
            FaultKind::Error { at: bad },
        );
        Ok(())
    }
    fn poll(&mut self) -> Option<Completion> {
        if let Some(c) = self.failed.pop_front() {
            return Some(c);
        }
        if let Some(c) = self.expire(false) {
            return Some(c);
        }
        let c = self.inner.poll()?;
        Some(self.finish(c))
    }
    fn wait(&mut self) -> Option<Completion> {
        loop {
            if let Some(c) = self.poll() {
                return Some(c);
            }
            if self.inner.in_flight() > 0 {
                if self.held.is_empty() {
                    // Only the inner device can answer: let it wait its way.
                    let c = self.inner.wait()?;
                    return Some(self.finish(c));
                }
            } else if self.held.is_empty() {
                return None;
            } else if self.clock.is_none() {
                return self.expire(true);
            }
            core::hint::spin_loop();
        }
    }
    fn stats(&self) -> DevStats {
        self.inner.stats()
    }
}
