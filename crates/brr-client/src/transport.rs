//! [`Transport`]: one HTTP exchange at a time per calling thread, over a shared connection pool.
//!
//! Request bodies (packs of up to 1 GiB) are never copied whole: the caller's bytes are handed to the
//! connection in [`CHUNK`]-sized pieces, at most [`QUEUED`] of them waiting, so a pack upload holds a
//! few hundred KiB beyond the pack itself. Answers are read into one buffer sized from their
//! `Content-Length`, without an intermediate copy.
//!
//! The exchange runs on a small runtime of its own (one I/O thread, like a blocking HTTP client);
//! each calling thread waits for its own exchange, so any number of threads share one `Transport`.
//! It must not be called from inside an async runtime.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use tokio::sync::mpsc;

/// Bytes of a request body handed to the connection at once.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Chunks copied ahead of the connection.
pub(crate) const QUEUED: usize = 2;
/// Largest buffer reserved up front from an answer's `Content-Length` (a larger answer grows it).
const MAX_RESERVE: u64 = 256 << 20;

/// A blocking face over an async HTTP client and the runtime that drives it.
pub(crate) struct Transport {
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// What came back: status, `Content-Length` and body (empty for `HEAD`).
pub(crate) struct Answer {
    pub status: u16,
    pub content_length: Option<u64>,
    pub body: Vec<u8>,
}

/// Settings of a [`Transport`].
pub(crate) struct Settings {
    pub tls: rustls::ClientConfig,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl Transport {
    /// A transport with its own I/O thread.
    pub(crate) fn new(settings: Settings) -> Result<Transport, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("brr-http")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP thread: {e}"))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(settings.tls)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .user_agent(concat!("brr/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::one_line_error(&e))?;
        Ok(Transport { http, runtime })
    }

    /// Sends one request and waits for the whole answer. `body` is streamed from the caller's bytes
    /// with an exact `Content-Length`.
    pub(crate) fn exchange(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<(&[u8], &'static str)>,
    ) -> Result<Answer, reqwest::Error> {
        let head = method == Method::HEAD;
        self.runtime.block_on(async {
            let mut rb = self.http.request(method, url).headers(headers);
            let mut source: Option<(&[u8], mpsc::Sender<Bytes>)> = None;
            if let Some((bytes, content_type)) = body {
                let (tx, rx) = mpsc::channel(QUEUED);
                rb = rb
                    .header(CONTENT_TYPE, content_type)
                    .header(CONTENT_LENGTH, bytes.len())
                    .body(reqwest::Body::wrap(Feed {
                        rx,
                        left: bytes.len() as u64,
                    }));
                source = Some((bytes, tx));
            }
            let feeding = async move {
                if let Some((bytes, tx)) = source {
                    for piece in bytes.chunks(CHUNK) {
                        // The connection stopped reading (an early answer or an error): stop.
                        if tx.send(Bytes::copy_from_slice(piece)).await.is_err() {
                            break;
                        }
                    }
                }
            };
            let sending = rb.send();
            tokio::pin!(sending, feeding);
            let mut fed = false;
            let mut resp = loop {
                tokio::select! {
                    r = &mut sending => break r?,
                    () = &mut feeding, if !fed => fed = true,
                }
            };
            let status = resp.status().as_u16();
            let content_length = resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let mut out = Vec::new();
            if !head {
                let reserve = content_length.unwrap_or(0).min(MAX_RESERVE);
                out.reserve_exact(usize::try_from(reserve).unwrap_or(0));
                while let Some(chunk) = resp.chunk().await? {
                    out.extend_from_slice(&chunk);
                }
            }
            Ok(Answer {
                status,
                content_length,
                body: out,
            })
        })
    }
}

/// A request body that the sending side fills chunk by chunk; its length is known in advance.
struct Feed {
    rx: mpsc::Receiver<Bytes>,
    left: u64,
}

impl http_body::Body for Feed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => {
                self.left = self.left.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(None) => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the request body ended early",
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    #[test]
    fn a_feed_yields_its_chunks_then_ends_and_reports_a_short_body() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            use http_body_util::BodyExt;
            let (tx, rx) = mpsc::channel(QUEUED);
            let feed = Feed { rx, left: 5 };
            assert_eq!(feed.size_hint().exact(), Some(5));
            tx.send(Bytes::from_static(b"abc")).await.unwrap();
            tx.send(Bytes::from_static(b"de")).await.unwrap();
            let all = feed.collect().await.unwrap().to_bytes();
            assert_eq!(&all[..], b"abcde");

            let (tx, rx) = mpsc::channel(QUEUED);
            let feed = Feed { rx, left: 5 };
            tx.send(Bytes::from_static(b"abc")).await.unwrap();
            drop(tx);
            let e = feed.collect().await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        });
    }
}
