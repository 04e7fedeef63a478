//! # brr-engine
//!
//! The pipelines of brr over a repository: `init`/`open` and key slots ([`repo`]), [`backup`],
//! [`restore`], [`check`], [`forget`] and [`prune`], [`stats`] and snapshot browsing ([`browse`]).
//! [`keyless`] holds what a storage provider runs without the key: scrub, retention and garbage
//! collection. Storage comes from `brr-storage`, formats and crypto from `brr-core`. The engine never prints: long
//! operations report through the [`progress::Progress`] trait.
//!
//! ## Concurrency invariants
//!
//! | invariant | how |
//! |---|---|
//! | a snapshot is visible only when complete | its file is written last, after its packs and index; all writes are atomic |
//! | a killed backup loses nothing | packs are indexed every few packs; the next backup indexes leftover packs and reuses them |
//! | concurrent backups never corrupt each other | every file is content-addressed or randomly named; nothing is overwritten with other content |
//! | prune never deletes data a running backup will reference | two-phase GC with session locks (`brr_core::gcrecord`); no clocks, no access times |
//! | two prunes never run at once | exclusive lock |
//! | a server without the key collects garbage safely | [`keyless::gc`] runs the same protocol; holders rewrite their locks every [`lock::REFRESH_INTERVAL`], so the server judges sessions by their last write |

pub mod backup;
pub mod browse;
pub mod check;
pub mod error;
pub mod forget;
pub mod fsmeta;
mod globs;
pub mod index;
pub mod keyless;
pub mod lock;
pub mod parallel;
pub mod progress;
pub mod prune;
pub mod repo;
pub mod restore;
pub mod stats;
pub mod treecache;

pub use error::{EngineError, Result};
pub use progress::{NoProgress, Progress};
pub use repo::{InitOptions, Repository};
