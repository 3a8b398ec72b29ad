//! Builds the example plugins (work in progress).
use std::path::Path;

/// Builds every plugin into `target/plugins/`.
pub fn build(_root: &Path) -> Result<(), String> {
    Err("plugins are not built yet".into())
}
