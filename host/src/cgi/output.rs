//! A CGI producer's output → a response, with the commit threshold.
//!
//! The output is held until the producer ends or its body passes the
//! commit threshold. A producer that fails before then (crashes, times
//! out, writes a malformed head, writes nothing) gets a clean error page:
//! nothing of it reached the client. Past the threshold the response is
//! committed: the head goes out and the body streams with backpressure
//! ([`BodyStream`]); a failure after that aborts the response.
//!
//! A non-parsed-header (`nph-`) script writes the whole HTTP response
//! itself; [`pass_through`] sends it untouched once its status line has
//! arrived (a script that fails before that still gets a clean error page)
//! and the connection closes after it, since only the script knows how its
//! response is framed.

use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::AbortHandle;

use super::response::{Disposition, parse_head};
use crate::error::HttpError;
use crate::response::{Body, BodyStream, Failure, Outcome, Response};

/// How much body is held before the response is committed.
pub const COMMIT_THRESHOLD: usize = 64 * 1024;

/// A running producer: its output, how it ends, and how to stop it.
pub struct Produced {
    /// Its standard output.
    pub output: Pin<Box<dyn AsyncRead + Send>>,
    /// Reported when it ends.
    pub outcome: Outcome,
    /// Stops it.
    pub producer: AbortHandle,
}

impl std::fmt::Debug for Produced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Produced").finish_non_exhaustive()
    }
}

impl Produced {
    /// Its parts, with a guard that stops the producer if the reader
    /// returns without handing it on to a [`BodyStream`].
    fn guarded(self) -> (Pin<Box<dyn AsyncRead + Send>>, Outcome, AbortOnDrop) {
        (self.output, self.outcome, AbortOnDrop::new(self.producer))
    }
}

/// What the producer asked for.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "made and moved once per request; boxing would cost an allocation each"
)]
pub enum Output {
    /// Send this.
    Response(Response),
    /// Answer with a GET of this local path instead (RFC 3875 §6.2.2).
    LocalRedirect(String),
}

/// Why the output could not become a response.
#[derive(Debug)]
pub struct Rejected {
    /// The error page to send.
    pub error: HttpError,
    /// What to log, when the producer has not logged it itself (its
    /// failures it reports as it ends; what is wrong with its output, only
    /// the reader knows).
    pub log: Option<String>,
}

impl Rejected {
    /// The error page, after logging what only the reader knows, each line
    /// starting with `tag` (`[plugin NAME]`, `[cgi /cgi-bin/x]`).
    pub fn logged(self, tag: &str) -> HttpError {
        if let Some(why) = self.log {
            crate::log::line(format!("{tag} {why}"));
        }
        self.error
    }
}

/// Reads `produced`'s output until it ends or passes the commit threshold.
/// `limit` caps the whole body.
pub async fn collect(produced: Produced, limit: u64) -> Result<Output, Rejected> {
    let (mut output, outcome, guard) = produced.guarded();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut head: Option<(Disposition, usize)> = None;
    let (disposition, used) = loop {
        match head.take() {
            Some((disposition, used)) if buf.len() - used >= COMMIT_THRESHOLD => {
                break (disposition, used);
            }
            parsed => head = parsed,
        }
        buf.reserve(16 * 1024);
        let read = output.read_buf(&mut buf).await;
        let ended = matches!(read, Ok(0) | Err(_));
        if head.is_none() {
            match parse_head(&buf) {
                Ok(parsed) => head = parsed,
                Err(malformed) => {
                    return Err(bad_gateway(format!("malformed output: {malformed}")));
                }
            }
        }
        if ended {
            return finish(buf, head, outcome).await;
        }
    };

    // Committed: the body streams from here.
    let (status, headers) = match disposition {
        Disposition::LocalRedirect(path) => return Ok(Output::LocalRedirect(path)),
        Disposition::Respond { status, headers } => (status, headers),
    };
    let prefix = buf.split_off(used).freeze();
    let stream = guard.stream(prefix, output, outcome, limit);
    let mut response = Response::new(status, Body::Stream(stream));
    response.headers = headers;
    Ok(Output::Response(response))
}

/// The longest status line accepted from an `nph-` script.
const MAX_STATUS_LINE: usize = 1024;

/// Passes `produced`'s output through untouched, status line and all,
/// once its status line (`HTTP/1.1 200 OK`) has arrived. `limit` caps it.
pub async fn pass_through(produced: Produced, limit: u64) -> Result<Output, Rejected> {
    let (mut output, outcome, guard) = produced.guarded();
    let mut buf = BytesMut::with_capacity(4096);
    let line_end = loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            break end;
        }
        if buf.len() > MAX_STATUS_LINE {
            return Err(bad_gateway("nph output: no status line".into()));
        }
        let read = output.read_buf(&mut buf).await;
        if matches!(read, Ok(0) | Err(_)) {
            // It ended before a whole status line: nothing was sent.
            // A failure of the producer is what the client is told of.
            return Err(match finish(BytesMut::new(), None, outcome).await {
                Err(rejected) if buf.is_empty() || rejected.log.is_none() => rejected,
                _ => bad_gateway("nph output ended inside its status line".into()),
            });
        }
    };
    let line = buf[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..line_end]);
    let Some(status) = parse_status_line(line) else {
        let line = String::from_utf8_lossy(line).into_owned();
        return Err(bad_gateway(format!("nph output: bad status line {line:?}")));
    };
    let stream = guard.stream(buf.freeze(), output, outcome, limit);
    Ok(Output::Response(Response::new(
        status,
        Body::Unframed(stream),
    )))
}

/// `HTTP/1.x NNN reason` → the status.
fn parse_status_line(line: &[u8]) -> Option<StatusCode> {
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))?;
    let code = rest.get(..3)?;
    if rest.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    StatusCode::from_bytes(code).ok()
}

/// The producer closed its output: its response is complete, or it failed.
async fn finish(
    mut buf: BytesMut,
    head: Option<(Disposition, usize)>,
    outcome: Outcome,
) -> Result<Output, Rejected> {
    match outcome.await {
        Ok(Ok(())) => {}
        Ok(Err(Failure { status, .. })) => {
            return Err(Rejected {
                error: HttpError::Upstream(status),
                log: None,
            });
        }
        Err(_) => {
            let error = HttpError::Upstream(StatusCode::INTERNAL_SERVER_ERROR);
            return Err(Rejected {
                error,
                log: Some("the producer vanished".into()),
            });
        }
    }
    let Some((disposition, used)) = head else {
        let why = if buf.is_empty() {
            "no output".to_string()
        } else {
            "output ended inside the header block".to_string()
        };
        return Err(bad_gateway(why));
    };
    match disposition {
        Disposition::LocalRedirect(path) => Ok(Output::LocalRedirect(path)),
        Disposition::Respond { status, headers } => {
            let body = buf.split_off(used).freeze();
            let mut response = Response::new(status, Body::Bytes(body));
            response.headers = headers;
            Ok(Output::Response(response))
        }
    }
}

fn bad_gateway(log: String) -> Rejected {
    Rejected {
        error: HttpError::Upstream(StatusCode::BAD_GATEWAY),
        log: Some(log),
    }
}

/// Stops a producer when dropped, unless it was handed on to the body that
/// streams its output.
#[derive(Debug)]
pub struct AbortOnDrop(Option<AbortHandle>);

impl AbortOnDrop {
    /// A guard on `producer`.
    pub fn new(producer: AbortHandle) -> AbortOnDrop {
        AbortOnDrop(Some(producer))
    }

    /// Hands the producer on to the body that streams the rest of its
    /// output, which stops it if dropped before the end.
    pub fn stream(
        mut self,
        prefix: Bytes,
        output: impl AsyncRead + Send + 'static,
        outcome: Outcome,
        limit: u64,
    ) -> BodyStream {
        let stream = BodyStream::new(prefix, output, outcome, limit);
        match self.0.take() {
            Some(producer) => stream.cancel_on_drop(producer),
            None => stream,
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nph_status_lines() {
        let status = |line: &[u8]| parse_status_line(line).map(|s| s.as_u16());
        assert_eq!(status(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status(b"HTTP/1.0 404 Not Found"), Some(404));
        assert_eq!(status(b"HTTP/1.1 299"), Some(299));
        for bad in [
            &b"HTTP/2 200 OK"[..],
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 abc OK",
            b"Status: 200 OK",
            b"",
        ] {
            assert_eq!(status(bad), None, "{bad:?}");
        }
    }
}
