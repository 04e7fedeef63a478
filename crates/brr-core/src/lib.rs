//! # brr-core
//!
//! The repository format of brr and everything that can be computed without I/O: identifiers,
//! cryptography and key slots, keyed content-defined chunking, blob sealing, pack and index encodings,
//! directory trees, snapshots, GC records and the retention policy. No async runtime, no network, no
//! terminal — the engine, the CLI and the server build on it. Every decoder here accepts arbitrary
//! bytes and returns a [`CoreError`] rather than panicking; fuzz targets in `fuzz/` exercise them.
//!
//! The byte-level specification is docs/repository-format.md.
//!
//! ```
//! use brr_core::{blob::{BlobSealer, BlobType, Compression, open_blob}, crypto::MasterKey, pack::PackWriter};
//! let key = MasterKey::generate();
//! let chunk = b"some file content".to_vec();
//! let id = key.blob_id(&chunk);
//! let mut stored = Vec::new();
//! BlobSealer::new(Compression::Zstd(3))?.seal_into(key.data_key(), BlobType::Data, &id, &chunk, &mut stored)?;
//! let mut pack = PackWriter::with_capacity(1 << 20);
//! pack.add(BlobType::Data, id, key.data_key().id(), &stored);
//! let pack = pack.finish();
//! let entry = pack.trailer.entries[0];
//! let back = open_blob(key.data_key(), BlobType::Data, &id,
//!     &pack.bytes[entry.offset as usize..(entry.offset + entry.length) as usize], &|d| key.blob_id(d))?;
//! assert_eq!(back, chunk);
//! # Ok::<(), brr_core::CoreError>(())
//! ```

pub mod blob;
pub mod chunker;
pub mod config;
pub mod crypto;
pub mod error;
pub mod gcrecord;
pub mod id;
pub mod index;
pub mod keyslot;
pub mod lockfile;
pub mod pack;
pub mod retention;
pub mod snapshot;
pub mod tree;

pub use error::{CoreError, FormatError, Result};
