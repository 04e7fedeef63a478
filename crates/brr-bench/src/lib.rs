//! Benchmark helpers for brr.
//!
//! The library measures what one core of this machine can do for each stage of brr's data path
//! (chunking, keyed hashing, compression, encryption, copying), with the same crates and settings
//! brr uses. The `brr-machine-limits` binary prints the results; `bench/run.sh` compares brr's
//! measured throughput against these ceilings.
//!
//! Nothing here asserts on timing: these are measurements, not tests.

mod inputs;
mod pipeline;
mod stages;

pub use inputs::{random_bytes, text_like};
pub use pipeline::{PipelineResult, corpus_pipeline};
pub use stages::{
    StageResult, bench_aes_gcm_open, bench_aes_gcm_seal, bench_blake3_keyed, bench_fastcdc,
    bench_memcpy, bench_zstd_compress, bench_zstd_decompress, median,
};

/// Size of one message for the per-message stages (AEAD, keyed hash, zstd): 1 MiB, the size of a large
/// brr chunk (new repositories average 512 KiB, older ones 1 MiB).
pub const MESSAGE: usize = 1 << 20;

/// FastCDC 2020 minimum chunk size of new brr repositories (256 KiB).
pub const CDC_MIN: usize = 256 * 1024;
/// FastCDC 2020 average chunk size of new brr repositories (512 KiB).
pub const CDC_AVG: usize = 512 * 1024;
/// FastCDC 2020 maximum chunk size of new brr repositories (4 MiB).
pub const CDC_MAX: usize = 4 * 1024 * 1024;
/// The chunk sizes as the report shows them.
pub const CDC_LABEL: &str = "256K/512K/4M";
