//! Links the kernel at this board's load address (linker/qemu-virt.ld).
use std::path::PathBuf;

fn main() {
    let linker = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../linker");
    let linker = linker.canonicalize().expect("linker/ directory");
    println!("cargo:rustc-link-arg-bins=-L{}", linker.display());
    println!("cargo:rustc-link-arg-bins=-Tqemu-virt.ld");
    for f in ["qemu-virt.ld", "kernel.ld"] {
        println!("cargo:rerun-if-changed={}", linker.join(f).display());
    }
}
