//! Records the host target triple so xtask can build host tests for it.
fn main() {
    println!(
        "cargo:rustc-env=XTASK_HOST_TARGET={}",
        std::env::var("TARGET").expect("TARGET")
    );
}
