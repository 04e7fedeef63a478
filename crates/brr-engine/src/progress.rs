//! Progress reporting: the engine reports, the front end renders.
//!
//! The engine never prints. Long operations take a `&dyn Progress` and call it from any thread; the CLI
//! renders bars (indicatif) on a terminal or stays quiet, a server would stream events.

/// A long operation's progress sink. All methods may be called concurrently from several threads.
pub trait Progress: Send + Sync {
    /// A phase begins ("scanning", "backing up", "restoring", "reading packs"); totals if known.
    fn start(&self, _phase: &str, _total_items: Option<u64>, _total_bytes: Option<u64>) {}
    /// Items (files, packs, snapshots) done since the last call.
    fn items(&self, _n: u64) {}
    /// Bytes done since the last call.
    fn bytes(&self, _n: u64) {}
    /// Totals learned later (e.g. once a scan finishes).
    fn set_totals(&self, _items: Option<u64>, _bytes: Option<u64>) {}
    /// Whether totals are shown. When not, the engine skips work done only to learn them (a backup's
    /// counting walk of the sources, a second pass over every directory).
    fn wants_totals(&self) -> bool {
        true
    }
    /// A non-fatal problem (unreadable file, damaged blob) to show the user now.
    fn warn(&self, _message: &str) {}
    /// The current phase ended.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
