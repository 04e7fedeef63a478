//! Progress bars on a terminal (indicatif); silence otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use brr_engine::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot_free::Slot;

/// Renders engine progress as a bar with files, bytes, throughput and ETA.
pub struct Bar {
    bar: Slot<ProgressBar>,
    items: AtomicU64,
    items_total: AtomicU64,
    enabled: bool,
    quiet: bool,
}

mod parking_lot_free {
    use std::sync::Mutex;

    /// A tiny mutex-protected optional value.
    pub struct Slot<T>(Mutex<Option<T>>);

    impl<T: Clone> Slot<T> {
        pub fn new() -> Self {
            Slot(Mutex::new(None))
        }
        pub fn set(&self, v: T) {
            if let Ok(mut g) = self.0.lock() {
                *g = Some(v);
            }
        }
        pub fn get(&self) -> Option<T> {
            self.0.lock().ok().and_then(|g| g.clone())
        }
        pub fn take(&self) -> Option<T> {
            self.0.lock().ok().and_then(|mut g| g.take())
        }
    }
}

impl Bar {
    /// A bar that draws only when standard error is a terminal and output is not quiet or JSON.
    pub fn new(quiet: bool, json: bool) -> Self {
        let enabled = !quiet && !json && std::io::stderr().is_terminal();
        Bar {
            bar: Slot::new(),
            items: AtomicU64::new(0),
            items_total: AtomicU64::new(0),
            enabled,
            quiet,
        }
    }

    fn message(&self) -> String {
        let done = self.items.load(Ordering::Relaxed);
        let total = self.items_total.load(Ordering::Relaxed);
        if total > 0 {
            format!("{done}/{total} files")
        } else {
            format!("{done} files")
        }
    }
}

impl Progress for Bar {
    fn start(&self, phase: &str, total_items: Option<u64>, total_bytes: Option<u64>) {
        if !self.enabled {
            return;
        }
        self.items.store(0, Ordering::Relaxed);
        self.items_total
            .store(total_items.unwrap_or(0), Ordering::Relaxed);
        let bar = ProgressBar::with_draw_target(total_bytes, ProgressDrawTarget::stderr_with_hz(8));
        let style = ProgressStyle::with_template(
            "{prefix:>9.bold} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(phase.to_string());
        self.bar.set(bar);
    }

    fn items(&self, n: u64) {
        self.items.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = self.bar.get() {
            b.set_message(self.message());
        }
    }

    fn bytes(&self, n: u64) {
        if let Some(b) = self.bar.get() {
            b.inc(n);
        }
    }

    fn wants_totals(&self) -> bool {
        self.enabled
    }

    fn set_totals(&self, items: Option<u64>, bytes: Option<u64>) {
        if let Some(i) = items {
            self.items_total.store(i, Ordering::Relaxed);
        }
        if let (Some(b), Some(total)) = (self.bar.get(), bytes) {
            b.set_length(total);
        }
    }

    fn warn(&self, message: &str) {
        match self.bar.get() {
            Some(b) => b.println(format!("warning: {message}")),
            None if !self.quiet => eprintln!("brr: warning: {message}"),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
