//! The default demo (`mode=demo`): for now, the boot report and a probe
//! self-measurement; the camera-buffer demo replaces it in a later issue.

use crate::exit::ExitStatus;
use crate::{BootInfo, println, probes};

pub fn run(info: &BootInfo) -> ExitStatus {
    println!(
        "demo: {} reserved regions on {}; measuring probe overhead and page operations",
        info.regions.len(),
        info.board
    );
    probes::measure_basics();
    ExitStatus::Success
}
