//! Records the host target triple, for running the plugins' unit tests natively.

fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=XTASK_HOST_TARGET={target}");
}
