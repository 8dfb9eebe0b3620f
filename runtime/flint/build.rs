//! Records the target triple for `flint_build_info{target}`.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=FLINT_TARGET={target}");
}
