//! QuickJS recurses on the native stack: this plugin gets the 1 MiB rustc gives by default, not
//! the 64 KiB the other plugins link with (`plugins/.cargo/config.toml`; the last
//! `-zstack-size` wins). Untouched stack pages are zero, which the host does not store.
fn main() {
    println!("cargo:rustc-link-arg-cdylib=-zstack-size=1048576");
}
