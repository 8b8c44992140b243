//! What a frame is used for: [`FrameState`].
//!
//! Rules: every frame is in exactly one state (the transitions are in the
//! crate docs); the values are dense from 0, so that per-state counters are
//! arrays indexed by `state as usize` (checked at compile time below).

use core::fmt;

macro_rules! frame_states {
    ($( $(#[$doc:meta])* $name:ident = $val:literal, $label:literal; )*) => {
        /// What a frame is used for. To add a state, add a line to the
        /// `frame_states!` invocation (values must stay dense from 0): the
        /// counters, [`FrameState::ALL`] and the names follow.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        #[repr(u8)]
        pub enum FrameState {
            $( $(#[$doc])* $name = $val, )*
        }

        impl FrameState {
            /// Every state, in discriminant order (`ALL[s as usize] == s`).
            pub const ALL: &'static [FrameState] = &[$(FrameState::$name),*];
            /// Number of states.
            pub const COUNT: usize = Self::ALL.len();

            /// Short lower-case name, for logs and reports.
            pub const fn name(self) -> &'static str {
                match self { $(FrameState::$name => $label,)* }
            }
        }
    };
}

frame_states! {
    /// Not RAM (a hole in the span), or RAM not handed to anyone yet.
    Absent = 0, "absent";
    /// Never handed out: kernel image, DTB, `/memreserve/`, `no-map` regions.
    Reserved = 1, "reserved";
    /// In the buddy allocator, on a free list.
    Free = 2, "free";
    /// Boot allocations, page tables, the frame table itself.
    Kernel = 3, "kernel";
    /// Backing the kernel heap.
    Heap = 4, "heap";
    /// A page-cache page (file data; may be dirty, under I/O, pinned).
    PageCache = 5, "pagecache";
    /// A clean file page copy held by cleancache (in a GCMA area).
    Cleancache = 6, "cleancache";
    /// Handed out contiguously by GCMA, CMA or the carveout.
    Allocated = 7, "allocated";
    /// In a GCMA/CMA/carveout area, currently idle.
    ReservedArea = 8, "reservedarea";
}

const _: () = {
    let mut i = 0;
    while i < FrameState::COUNT {
        assert!(
            FrameState::ALL[i] as usize == i,
            "FrameState values must be dense from 0"
        );
        i += 1;
    }
};

impl FrameState {
    /// Whether the state is owned by someone (neither `Absent` nor `Free`).
    pub const fn is_owned(self) -> bool {
        !matches!(self, FrameState::Absent | FrameState::Free)
    }
}

impl fmt::Display for FrameState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}
