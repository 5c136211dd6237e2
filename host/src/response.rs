//! The response every backend produces, before the HTTP/1 writer frames it.
//!
//! Backends say *what* to send: a status, headers, and a body that is empty,
//! a buffer, a region of an open file, or a stream still being produced.
//! Each protocol's writer (`http1::write`, `http2`) decides *how*: `Content-Length` or chunked,
//! `Connection`, no body for HEAD, 1xx, 204 and 304, and `sendfile(2)` for
//! file regions.

use std::fs::File;
use std::io;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

/// The `Server` header value (and CGI's `SERVER_SOFTWARE`).
pub const SERVER: &str = concat!("wasmhttpd/", env!("CARGO_PKG_VERSION"));

/// A response on its way to the client.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// Header fields; the writer adds `Content-Length` and `Connection`.
    pub headers: HeaderMap,
    /// The content.
    pub body: Body,
}

/// Whether `status` may end a response: 200–599. A producer's 1xx (or
/// 101, or 999) sent as a final status would desynchronise every client
/// and proxy on a kept-alive connection, which would take the next
/// response for this one's.
pub fn is_final_status(status: StatusCode) -> bool {
    (200..=599).contains(&status.as_u16())
}

impl Response {
    /// A response with no header fields yet (room for a file response's).
    pub fn new(status: StatusCode, body: Body) -> Response {
        Response {
            status,
            headers: HeaderMap::with_capacity(6),
            body,
        }
    }
}

/// A response's content.
#[derive(Debug)]
pub enum Body {
    /// No content (`Content-Length: 0` where a length is allowed).
    Empty,
    /// Content held in memory.
    Bytes(Bytes),
    /// `len` bytes of an open file from `offset`, sent without copying
    /// through user space.
    File {
        /// The open file.
        file: File,
        /// Where the content starts.
        offset: u64,
        /// How many bytes to send.
        len: u64,
    },
    /// Content still being produced, of a length not known yet.
    Stream(BodyStream),
    /// A whole response produced elsewhere, status line and all (an
    /// `nph-` CGI script's output): sent untouched, then the connection
    /// closes.
    Unframed(BodyStream),
}

impl Body {
    /// The content's length in bytes, when it is known before sending.
    pub fn known_len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(bytes) => Some(bytes.len() as u64),
            Body::File { len, .. } => Some(*len),
            Body::Stream(_) | Body::Unframed(_) => None,
        }
    }
}

/// Why a producer (a plugin instance, a CGI process) failed, and the status
/// the client gets when nothing of the response has been sent yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 500 for a crash, 504 for a deadline, …
    pub status: StatusCode,
    /// What happened, for the log.
    pub reason: String,
}

/// How a producer ended, reported once its output is closed.
pub type Outcome = oneshot::Receiver<Result<(), Failure>>;

/// Output that streams to the client as it is produced, with backpressure:
/// nothing is read from the producer faster than the client takes it.
///
/// It ends when the producer closes its output *and* reports success. A
/// producer that fails, or output beyond the size limit, ends the stream
/// with an error, and the writer then cuts the connection without the
/// final chunk, so that no client takes a truncated body for a whole one.
/// Dropping the stream (the client left, or the request was HEAD) cancels
/// the producer.
pub struct BodyStream {
    prefix: Option<Bytes>,
    source: Pin<Box<dyn AsyncRead + Send>>,
    outcome: Option<Outcome>,
    remaining: u64,
    limit: u64,
    producer: Option<AbortHandle>,
    buf: BytesMut,
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyStream")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// The most bytes read from a producer at a time.
const STREAM_CHUNK: usize = 64 * 1024;

impl BodyStream {
    /// `prefix` (output already read), then the rest of `source`, at most
    /// `limit` bytes in all; `outcome` says whether the producer succeeded.
    pub fn new(
        prefix: Bytes,
        source: impl AsyncRead + Send + 'static,
        outcome: Outcome,
        limit: u64,
    ) -> BodyStream {
        BodyStream {
            remaining: limit.saturating_sub(prefix.len() as u64),
            prefix: (!prefix.is_empty()).then_some(prefix),
            source: Box::pin(source),
            outcome: Some(outcome),
            limit,
            producer: None,
            buf: BytesMut::new(),
        }
    }

    /// Cancels `producer` if the stream is dropped before it ends.
    pub fn cancel_on_drop(mut self, producer: AbortHandle) -> BodyStream {
        self.producer = Some(producer);
        self
    }

    /// The next piece of content; `Ok(None)` at a successful end.
    pub async fn next(&mut self) -> io::Result<Option<Bytes>> {
        if let Some(prefix) = self.prefix.take() {
            return Ok(Some(prefix));
        }
        self.buf.reserve(STREAM_CHUNK);
        let n = self.source.read_buf(&mut self.buf).await?;
        if n > 0 {
            if n as u64 > self.remaining {
                return Err(io::Error::other(format!(
                    "output larger than {} bytes",
                    self.limit
                )));
            }
            self.remaining -= n as u64;
            return Ok(Some(self.buf.split().freeze()));
        }
        let outcome = match self.outcome.take() {
            Some(outcome) => outcome.await.unwrap_or_else(|_| {
                Err(Failure {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    reason: "the producer vanished".into(),
                })
            }),
            None => Ok(()),
        };
        self.producer = None;
        outcome
            .map(|()| None)
            .map_err(|failure| io::Error::other(failure.reason))
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        if let Some(producer) = self.producer.take() {
            producer.abort();
        }
    }
}
