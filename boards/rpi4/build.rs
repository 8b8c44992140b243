//! Links the kernel at this board's load address (linker/rpi4.ld).
use std::path::PathBuf;

fn main() {
    let linker = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../linker");
    let linker = linker.canonicalize().expect("linker/ directory");
    println!("cargo:rustc-link-arg-bins=-L{}", linker.display());
    println!("cargo:rustc-link-arg-bins=-Trpi4.ld");
    for f in ["rpi4.ld", "kernel.ld"] {
        println!("cargo:rerun-if-changed={}", linker.join(f).display());
    }
}
