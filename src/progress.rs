//! Progress on a terminal: a spinner while something slow runs, a bar over a chunked upload.
//! Both draw on stderr, and only when stderr is a terminal (indicatif hides them otherwise), so
//! pipes, scripts and CI logs see none of it.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Runs `work` under a spinner saying `message`, cleared when it ends.
pub(crate) fn spinner<T>(message: &str, work: impl FnOnce() -> T) -> T {
    let bar = ProgressBar::new_spinner().with_message(message.to_owned());
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(100));
    }
    let result = work();
    bar.finish_and_clear();
    result
}

/// A bar over `total` bytes of upload; call `inc` per chunk sent and `finish_and_clear` at the end.
pub(crate) fn upload(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "uploading {bar:30} {binary_bytes}/{binary_total_bytes} ({eta} left)",
    ) {
        bar.set_style(style);
    }
    bar
}
