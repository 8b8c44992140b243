//! Errors of the frame table.
//!
//! Rule: an operation that returns an error changed nothing.

use core::fmt;

use crate::{FrameState, MAX_ORDER, Pfn};

/// Errors of the frame table. An operation that returns an error changed
/// nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// No free block of the requested order (or any larger one).
    OutOfMemory {
        /// Requested order.
        order: u8,
    },
    /// Order above [`MAX_ORDER`].
    BadOrder(u8),
    /// `alloc_pages`/`free_pages` count of 0 or above [`MAX_PAGES_PER_ALLOC`](crate::MAX_PAGES_PER_ALLOC).
    BadCount(u64),
    /// The frame (or part of the range) is not covered by this table.
    OutOfRange(Pfn),
    /// The pfn is not aligned to the block order.
    Misaligned {
        /// Frame given.
        pfn: Pfn,
        /// Order given.
        order: u8,
    },
    /// The frame is already free.
    DoubleFree(Pfn),
    /// The frame was never handed out by the buddy (hole, reserved, marked).
    NotAllocated {
        /// Frame given.
        pfn: Pfn,
        /// Its state.
        state: FrameState,
    },
    /// The frame is inside a live allocation but is not its first frame.
    NotHead(Pfn),
    /// The allocation headed by `pfn` has another order.
    WrongOrder {
        /// Frame given.
        pfn: Pfn,
        /// Order of the live allocation.
        allocated: u8,
        /// Order given.
        given: u8,
    },
    /// A frame of the block still has a non-zero `pin_count`.
    Pinned(Pfn),
    /// This state cannot be the target of the operation (e.g. `Free` for
    /// `alloc`, `mark` or `set_state`).
    BadState(FrameState),
    /// The frame is in a state that forbids the operation (e.g. `mark` of a
    /// frame the buddy manages, `set_state`/`frame_mut` of a free frame).
    Busy {
        /// Frame concerned.
        pfn: Pfn,
        /// Its state.
        state: FrameState,
    },
    /// More than `u32::MAX - 1` descriptors, or the span overflows.
    TableTooLarge,
    /// `pin_count` would overflow.
    PinOverflow(Pfn),
    /// `unpin` of a frame with `pin_count == 0`.
    NotPinned(Pfn),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::OutOfMemory { order } => {
                write!(f, "out of memory for an order-{order} block")
            }
            FrameError::BadOrder(o) => write!(f, "order {o} above MAX_ORDER {MAX_ORDER}"),
            FrameError::BadCount(n) => write!(f, "bad page count {n}"),
            FrameError::OutOfRange(p) => write!(f, "{p} not covered by the frame table"),
            FrameError::Misaligned { pfn, order } => {
                write!(f, "{pfn} not aligned for order {order}")
            }
            FrameError::DoubleFree(p) => write!(f, "double free of {p}"),
            FrameError::NotAllocated { pfn, state } => {
                write!(
                    f,
                    "free of {pfn} which the buddy never allocated (state {state})"
                )
            }
            FrameError::NotHead(p) => {
                write!(f, "free of {p} which is inside an allocation, not its head")
            }
            FrameError::WrongOrder {
                pfn,
                allocated,
                given,
            } => {
                write!(
                    f,
                    "free of {pfn} with order {given}, allocated with order {allocated}"
                )
            }
            FrameError::Pinned(p) => write!(f, "{p} is still pinned"),
            FrameError::BadState(s) => write!(f, "state {s} not allowed here"),
            FrameError::Busy { pfn, state } => write!(f, "{pfn} is busy (state {state})"),
            FrameError::TableTooLarge => write!(f, "frame table too large"),
            FrameError::PinOverflow(p) => write!(f, "pin count of {p} overflows"),
            FrameError::NotPinned(p) => write!(f, "{p} is not pinned"),
        }
    }
}
