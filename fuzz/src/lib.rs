//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every target feeds arbitrary bytes to one parser of repository bytes and checks two things: it never
//! panics (the parsers promise a `CoreError` for any input), and whatever it accepts survives a round
//! trip through the matching encoder. Set `BRR_FUZZ_VERBOSE=1` when running a target on a single input
//! (`cargo fuzz run <target> <file>`) to print what the parser returned.

use brr_core::crypto::MasterKey;

/// A fixed master key: version byte 1, then the four 32-byte secrets filled with 0x11, 0x22, 0x33, 0x44.
/// Structured fuzz modes seal and MAC their input with it so that the fuzzer reaches the code behind the
/// authentication checks.
pub fn fixed_key() -> MasterKey {
    let mut b = vec![1u8];
    for fill in [0x11u8, 0x22, 0x33, 0x44] {
        b.extend_from_slice(&[fill; 32]);
    }
    match MasterKey::from_bytes(&b) {
        Ok(k) => k,
        Err(e) => panic!("fixed key does not parse: {e}"),
    }
}

/// Whether to print parser results (for looking at one input by hand).
pub fn verbose() -> bool {
    std::env::var_os("BRR_FUZZ_VERBOSE").is_some()
}

/// Prints `what` and a result when [`verbose`] is on.
pub fn show<T: std::fmt::Debug, E: std::fmt::Display>(what: &str, r: &Result<T, E>) {
    if verbose() {
        match r {
            Ok(v) => eprintln!("{what}: OK {v:#?}"),
            Err(e) => eprintln!("{what}: ERROR {e}"),
        }
    }
}

/// Reads a little-endian u32 from the first four bytes of `data` (zero-padded) and returns the rest.
pub fn split_u32(data: &[u8]) -> (u32, &[u8]) {
    let mut b = [0u8; 4];
    let n = data.len().min(4);
    b[..n].copy_from_slice(&data[..n]);
    (u32::from_le_bytes(b), &data[n..])
}
