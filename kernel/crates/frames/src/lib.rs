//! Physical page frames: one descriptor per 4 KiB frame and a binary buddy
//! allocator threaded through those descriptors.
//!
//! This is the kernel's `struct page` + `mm/page_alloc.c`: the page cache,
//! cleancache, GCMA, CMA and the carveout all keep their per-page state in the
//! [`FrameDesc`] array owned by a [`FrameTable`]. The crate is `no_std` and
//! never allocates: the descriptor array is memory the caller hands in (the
//! kernel carves it out of RAM before any heap exists, see
//! [`FrameTable::bytes_for`] and [`FrameTable::new_uninit`]).
//!
//! # Frame states and transitions
//!
//! Every frame covered by a table is in exactly one [`FrameState`]:
//!
//! ```text
//!              add_free_range                  alloc / alloc_pages
//!   Absent ------------------> Free <=========================> Kernel, Heap, PageCache,
//!     |  ^                                    free / free_pages  Cleancache, Allocated, ...
//!     |  | mark(.., Absent, ..)                                   (any "owned" state)
//!     v  |
//!   Reserved, ReservedArea, Kernel, ... (marked: not managed by the buddy)
//!        <-- set_state --> any other owned state
//! ```
//!
//! * `Absent`: not RAM (a hole in the span) or RAM not yet handed over.
//! * `Free`: owned by the buddy allocator, on exactly one free list (as the
//!   head or a tail of a free block). Only the buddy reads or writes a free
//!   frame's descriptor.
//! * every other state is *owned*: by the subsystem that allocated it from the
//!   buddy, or by whoever [`FrameTable::mark`]ed it (the kernel image, the
//!   DTB, a GCMA/CMA area, ...).
//!
//! A frame is *managed* once [`FrameTable::add_free_range`] gave it to the
//! buddy; it stays managed forever and moves only between `Free` and owned
//! states through `alloc`/`free`. Frames that are not managed move only
//! through `mark` and `set_state`, so a reserved area's frames can never leak
//! into the buddy and the buddy can never hand out a reserved frame.
//!
//! # Where the rules are
//!
//! Each file states the rules of what it holds at its top:
//!
//! | file | concept | rules |
//! |---|---|---|
//! | `pfn.rs` | [`Pfn`], frame ranges of byte ranges | rounding of partial frames |
//! | `state.rs` | [`FrameState`] | the list of states, dense from 0 |
//! | `desc.rs` | [`FrameDesc`], [`FrameFlags`], [`FrameMut`] | the field invariants: who may change which field |
//! | `table.rs` | [`FrameTable`]: the array, lookups, `mark`, `set_state` | descriptors reachable only through the table; state changes outside the buddy |
//! | `buddy.rs` | the buddy allocator: `add_free_range`, `alloc`, `free`, `alloc_pages`, `free_pages` | the buddy invariants, what `free` rejects |
//! | `verify.rs` | [`FrameTable::verify`], [`Corruption`] | every invariant above, checked |
//! | `stats.rs` | [`FrameStats`] and the counters | what each counter counts |
//! | `error.rs` | [`FrameError`] | an error changes nothing |
//!
//! # Wiring at boot
//!
//! ```
//! use core::mem::MaybeUninit;
//! use frames::*;
//!
//! // 128 MiB of RAM at 0x4000_0000; the kernel image in its first 2 MiB.
//! let ram = 0x4000_0000u64..0x4800_0000;
//! let span = pfns_covering(ram.clone());
//! // 24 bytes per frame: 768 KiB of descriptors for 32768 frames.
//! assert_eq!(FrameTable::bytes_for_span(span.clone()), 768 << 10);
//! // The kernel carves that (rounded up to pages) out of usable RAM and views it
//! // as `&'static mut [MaybeUninit<FrameDesc>]`; a Vec stands in for it here.
//! let mut mem = vec![MaybeUninit::uninit(); (span.end.0 - span.start.0) as usize];
//! let mut t = FrameTable::new_uninit(&mut mem, span.start).unwrap();
//! // Mark what must never reach the buddy first (image, DTB, the table's own
//! // frames, reserved-memory areas), then hand over whole RAM banks.
//! t.mark(pfns_covering(0x4000_0000..0x4020_0000), FrameState::Kernel, 0).unwrap();
//! t.mark(pfns_covering(0x4400_0000..0x4500_0000), FrameState::ReservedArea, 1).unwrap();
//! assert_eq!(t.add_free_range(pfns_within(ram)).unwrap(), 32768 - 512 - 4096);
//!
//! let p = t.alloc(2, FrameState::Heap).unwrap(); // 16 KiB, 16 KiB-aligned
//! assert!(p.is_aligned(2));
//! t.free(p, 2).unwrap();
//! assert_eq!(t.free(p, 2), Err(FrameError::DoubleFree(p)));
//! t.verify().unwrap();
//! ```
//!
//! # Concurrency
//!
//! A [`FrameTable`] is a plain `&mut`-driven structure; the kernel wraps it in
//! its lock (e.g. `spin::Mutex<FrameTable<'static>>`). Nothing here is
//! interrupt-safe by itself.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod buddy;
mod desc;
mod error;
mod pfn;
mod state;
mod stats;
mod table;
mod verify;

pub use desc::{FrameDesc, FrameFlags, FrameMut};
pub use error::FrameError;
pub use pfn::{Pfn, pfns_covering, pfns_within};
pub use state::FrameState;
pub use stats::FrameStats;
pub use table::FrameTable;
pub use verify::Corruption;

/// The page size, its shift and the bytes of a page: the `pfn` crate's,
/// the one definition every crate of the kernel uses.
pub use ::pfn::{PAGE_SHIFT, PAGE_SIZE, PageBytes};
/// Largest buddy order: blocks of `2^MAX_ORDER` frames (4 MiB).
pub const MAX_ORDER: u8 = 10;
/// Number of orders (`0..=MAX_ORDER`), i.e. of free lists.
pub const NR_ORDERS: usize = MAX_ORDER as usize + 1;
/// "No frame" in the descriptor links.
pub const NIL: u32 = u32::MAX;
/// Largest count [`FrameTable::alloc_pages`] accepts.
pub const MAX_PAGES_PER_ALLOC: u64 = 1 << MAX_ORDER;
