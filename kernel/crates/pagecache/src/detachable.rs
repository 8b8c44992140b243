//! An environment its owner can take away for a while: the kernel moves
//! its memory state (CMA areas, cleancache) out of the page cache for one
//! CMA migration pass, while the migrator works on the page cache.
//!
//! Rules, while detached (between [`Detachable::detach`] and
//! [`Detachable::attach`]):
//! * no frame is handed out: `alloc_page` answers `None` (the page cache
//!   reclaims, or reports no memory);
//! * a freed frame is queued, and given to the environment on `attach`,
//!   before anything else can use it;
//! * `get_page` misses (the page is read from the device) and `put_page`
//!   is skipped (cleancache is best effort; a copy not stored is never
//!   stale);
//! * `init_fs`, `invalidate_fs`, `invalidate_page` and `invalidate_file`
//!   are queued in order and replayed on `attach` before the frames and
//!   before any other call: an invalidation is never skipped, so no stale
//!   copy survives the detached time.
//!
//! While attached every call goes straight through, and the queues are
//! empty. Dropping a detached `Detachable` loses its queue (frames leak,
//! never reused): attach before dropping.

use alloc::vec::Vec;

use crate::frame::{Frame, PageAllocator};
use crate::hooks::{CleancacheHooks, FileId, PageIndex};
use frames::PageBytes;

/// A hook call made while detached, replayed on attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    InitFs(u32),
    InvalidateFs,
    Page(FileId, PageIndex),
    File(FileId, PageIndex),
}

/// An environment `E` that may be away (see the module rules).
#[derive(Debug)]
pub struct Detachable<E> {
    env: Option<E>,
    frees: Vec<Frame>,
    pending: Vec<Pending>,
}

impl<E> Detachable<E> {
    /// `env`, attached.
    pub const fn new(env: E) -> Self {
        Detachable {
            env: Some(env),
            frees: Vec::new(),
            pending: Vec::new(),
        }
    }
    /// The environment, if attached.
    pub fn get(&self) -> Option<&E> {
        self.env.as_ref()
    }
    /// The environment, mutable, if attached.
    pub fn get_mut(&mut self) -> Option<&mut E> {
        self.env.as_mut()
    }
    /// Takes the environment away; `None` if it already is.
    pub fn detach(&mut self) -> Option<E> {
        self.env.take()
    }
    /// Is the environment here?
    pub fn is_attached(&self) -> bool {
        self.env.is_some()
    }
    /// Calls queued while detached: (frames freed, hook calls).
    pub fn queued(&self) -> (usize, usize) {
        (self.frees.len(), self.pending.len())
    }
    /// The environment, if attached (the queues are then empty).
    pub fn into_inner(self) -> Option<E> {
        self.env
    }
}

impl<E: PageAllocator + CleancacheHooks> Detachable<E> {
    /// Brings `env` back: replays the queued hook calls in order, then
    /// gives it the frames freed meanwhile. Meant for what [`detach`]
    /// gave: an environment still attached would be dropped.
    ///
    /// [`detach`]: Self::detach
    pub fn attach(&mut self, mut env: E) {
        debug_assert!(self.env.is_none(), "attach while attached");
        for p in self.pending.drain(..) {
            match p {
                Pending::InitFs(volume) => env.init_fs(volume),
                Pending::InvalidateFs => env.invalidate_fs(),
                Pending::Page(file, index) => env.invalidate_page(file, index),
                Pending::File(file, from) => env.invalidate_file(file, from),
            }
        }
        for f in self.frees.drain(..) {
            env.free_page(f);
        }
        self.env = Some(env);
    }
}

// SAFETY: every frame handed out comes from the attached `E` (whose
// contract holds); frames freed while detached are kept here, used by
// nobody, until they go back to `E` on attach.
unsafe impl<E: PageAllocator> PageAllocator for Detachable<E> {
    fn alloc_page(&mut self) -> Option<Frame> {
        self.env.as_mut()?.alloc_page()
    }
    fn free_page(&mut self, frame: Frame) {
        match self.env.as_mut() {
            Some(env) => env.free_page(frame),
            None => self.frees.push(frame),
        }
    }
}

impl<E: CleancacheHooks> CleancacheHooks for Detachable<E> {
    fn init_fs(&mut self, volume: u32) {
        match self.env.as_mut() {
            Some(env) => env.init_fs(volume),
            None => self.pending.push(Pending::InitFs(volume)),
        }
    }
    fn invalidate_fs(&mut self) {
        match self.env.as_mut() {
            Some(env) => env.invalidate_fs(),
            None => self.pending.push(Pending::InvalidateFs),
        }
    }
    fn put_page(&mut self, file: FileId, index: PageIndex, data: &PageBytes) {
        if let Some(env) = self.env.as_mut() {
            env.put_page(file, index, data);
        }
    }
    fn get_page(&mut self, file: FileId, index: PageIndex, out: &mut PageBytes) -> bool {
        self.env
            .as_mut()
            .is_some_and(|env| env.get_page(file, index, out))
    }
    fn invalidate_page(&mut self, file: FileId, index: PageIndex) {
        match self.env.as_mut() {
            Some(env) => env.invalidate_page(file, index),
            None => self.pending.push(Pending::Page(file, index)),
        }
    }
    fn invalidate_file(&mut self, file: FileId, from: PageIndex) {
        match self.env.as_mut() {
            Some(env) => env.invalidate_file(file, from),
            None => self.pending.push(Pending::File(file, from)),
        }
    }
}
