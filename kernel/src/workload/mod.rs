//! The workloads the demo (`mode=demo`) and the soak (`mode=soak`) both
//! run: the camera pipeline on one allocator's area, the background load
//! beside it, and the page-cache setup each allocator is measured under.
//!
//! Files: `load` (the background load: the conditions, the data set, the
//! worker tasks and their counters), `camera` (the camera pipeline and the
//! task it runs as), `setup` (the page-cache setup per allocator, applying
//! one, prefill, the data set's manifest), `kinds` (the area kinds in the
//! order their rows are reported, and their names).
//!
//! Rules:
//! - This module depends on nothing above it: neither the demo nor the soak
//!   (each imports it, never each other). It measures and checks but
//!   prints nothing; the tables, `@` lines and verdicts are the callers'.
//! - One run at a time: a setup is applied only between runs (no load task
//!   and no camera task running, see `setup`); one camera task at a time
//!   (its result slot is shared, see `camera`); every load task `start`
//!   returns is stopped by `stop`, which releases every pin the workers
//!   took (see `load`).
//! - The load's counters and its first-problem slot are global atomics
//!   and locks, read by the callers while the workers run: `load::start`
//!   resets `BYTES_READ` only; the others count from boot unless a caller
//!   resets them (the soak resets `BYTES_CHECKED` and sets `CHECK_ALL` when
//!   it begins, and takes `FIRST_PROBLEM` when it checks).

pub mod camera;
pub mod kinds;
pub mod load;
pub mod setup;
