//! Moving file bytes: `Range` requests, and reading an upload body with a hard limit while hashing it.

use futures_util::{Stream, StreamExt};

use super::body::UploadBody;
use crate::error::{Error, Result};

/// A `Range: bytes=…` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=A-` or `bytes=A-B` (inclusive).
    From(u64, Option<u64>),
    /// `bytes=-N`: the last N bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses one range of a `Range` header; several ranges or other units are refused.
    pub fn parse(header: &str) -> Result<ByteRange> {
        let bad = || Error::invalid(format!("unsupported Range {header:?}: use bytes=A-B"));
        let spec = header.trim().strip_prefix("bytes=").ok_or_else(bad)?;
        if spec.contains(',') {
            return Err(bad());
        }
        let (a, b) = spec.split_once('-').ok_or_else(bad)?;
        let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        match (a.trim().is_empty(), b.trim().is_empty()) {
            (true, false) => Ok(ByteRange::Suffix(num(b)?)),
            (false, true) => Ok(ByteRange::From(num(a)?, None)),
            (false, false) => {
                let (a, b) = (num(a)?, num(b)?);
                if b < a {
                    return Err(bad());
                }
                Ok(ByteRange::From(a, Some(b)))
            }
            (true, true) => Err(bad()),
        }
    }

    /// Offset and length inside a file of `size` bytes; [`Error::RangeNotSatisfiable`] outside it.
    pub fn resolve(self, size: u64) -> Result<(u64, u64)> {
        let out = Error::RangeNotSatisfiable { size };
        match self {
            ByteRange::From(a, _) if a >= size => Err(out),
            ByteRange::From(a, b) => {
                let end = b.unwrap_or(u64::MAX).min(size - 1);
                Ok((a, end - a + 1))
            }
            ByteRange::Suffix(0) => Err(out),
            ByteRange::Suffix(n) if size == 0 => {
                let _ = n;
                Err(out)
            }
            ByteRange::Suffix(n) => {
                let len = n.min(size);
                Ok((size - len, len))
            }
        }
    }
}

/// A file (or part of one) read from a repository.
#[derive(Debug)]
pub struct FileRead {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The whole file's size.
    pub size: u64,
    /// For a range request: offset of `bytes`.
    pub range_start: Option<u64>,
}

/// The outcome of an accepted upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// False if an identical file was already stored (nothing was rewritten).
    pub created: bool,
    /// Bytes received.
    pub size: u64,
}

/// Reads a body chunk by chunk into memory, hashing as it arrives, refusing it past `limit` bytes.
pub async fn read_body<S, B, E>(
    mut body: S,
    limit: u64,
    hint: Option<u64>,
) -> Result<(UploadBody, String)>
where
    S: Stream<Item = std::result::Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let cap = hint.unwrap_or(0).min(limit).min(64 << 20);
    let mut buf = UploadBody::with_capacity(usize::try_from(cap).unwrap_or(0));
    let mut hasher = blake3::Hasher::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::invalid(format!("the upload broke off: {e}")))?;
        let chunk = chunk.as_ref();
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large(limit));
        }
        hasher.update(chunk);
        buf.extend_from_slice(chunk);
    }
    Ok((buf, hasher.finalize().to_hex().to_string()))
}

pub(super) fn too_large(limit: u64) -> Error {
    Error::TooLarge(format!(
        "the body exceeds the upload limit of {limit} bytes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            ByteRange::parse("bytes=0-9").unwrap().resolve(100).unwrap(),
            (0, 10)
        );
        assert_eq!(
            ByteRange::parse("bytes=90-").unwrap().resolve(100).unwrap(),
            (90, 10)
        );
        assert_eq!(
            ByteRange::parse("bytes=90-500")
                .unwrap()
                .resolve(100)
                .unwrap(),
            (90, 10)
        );
        assert_eq!(
            ByteRange::parse("bytes=-5").unwrap().resolve(100).unwrap(),
            (95, 5)
        );
        assert_eq!(
            ByteRange::parse("bytes=-500")
                .unwrap()
                .resolve(100)
                .unwrap(),
            (0, 100)
        );
        assert!(matches!(
            ByteRange::parse("bytes=100-").unwrap().resolve(100),
            Err(Error::RangeNotSatisfiable { size: 100 })
        ));
        assert!(ByteRange::parse("bytes=-0").unwrap().resolve(100).is_err());
        for bad in [
            "bytes=5-1",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
            "bytes=a-b",
        ] {
            assert!(ByteRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn body_is_hashed_and_limited() {
        let chunks: Vec<std::result::Result<Vec<u8>, String>> =
            vec![Ok(b"hello ".to_vec()), Ok(b"world".to_vec())];
        let (bytes, hash) = read_body(futures_util::stream::iter(chunks.clone()), 11, None)
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"hello world");
        assert_eq!(hash, blake3::hash(b"hello world").to_hex().to_string());
        assert!(matches!(
            read_body(futures_util::stream::iter(chunks), 10, None).await,
            Err(Error::TooLarge(_))
        ));
        let broken: Vec<std::result::Result<Vec<u8>, String>> = vec![Err("reset".into())];
        assert!(matches!(
            read_body(futures_util::stream::iter(broken), 10, None).await,
            Err(Error::Invalid(_))
        ));
    }
}
