//! A CGI producer's output → a response, with the commit threshold.
//!
//! The output is held until the producer ends or its body passes the
//! commit threshold. A producer that fails before then (crashes, times
//! out, writes a malformed head, writes nothing) gets a clean error page:
//! nothing of it reached the client. Past the threshold the response is
//! committed: the head goes out and the body streams with backpressure
//! ([`BodyStream`]); a failure after that aborts the response.

use std::pin::Pin;

use bytes::BytesMut;
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

/// What the producer asked for.
#[derive(Debug)]
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

/// Reads `produced`'s output until it ends or passes the commit threshold.
/// `limit` caps the whole body.
pub async fn collect(produced: Produced, limit: u64) -> Result<Output, Rejected> {
    let Produced {
        mut output,
        outcome,
        producer,
    } = produced;
    // Stop the producer whenever this returns without handing it on.
    let guard = AbortOnDrop(Some(producer));
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
    let mut stream = BodyStream::new(prefix, output, outcome, limit);
    if let Some(producer) = guard.release() {
        stream = stream.cancel_on_drop(producer);
    }
    let mut response = Response::new(status, Body::Stream(stream));
    response.headers = headers;
    Ok(Output::Response(response))
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

struct AbortOnDrop(Option<AbortHandle>);

impl AbortOnDrop {
    fn release(mut self) -> Option<AbortHandle> {
        self.0.take()
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}
