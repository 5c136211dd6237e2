//! An HTTP/2 request as the service sees it: the head from hyper's parts,
//! the body from its DATA frames.
//!
//! hyper has checked the pseudo-headers and the header block (RFC 9113
//! §8.3); what remains is the server's own view: `:authority` stands in
//! for `Host` where the client sent none, and the access log gets a
//! request line in HTTP/1's form (`GET /path HTTP/2.0`), as nginx's does.

use bytes::Bytes;
use http::{HeaderValue, Version, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::pace::Pace;
use crate::request::{Ends, Request};
use crate::request_body::{BodyReadError, BodySource, NextChunk};

/// The request head of `parts`, received on a connection between `ends`.
pub fn head(parts: http::request::Parts, ends: Ends) -> Request {
    let mut headers = parts.headers;
    if !headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(value) = HeaderValue::from_str(authority.as_str())
    {
        headers.insert(header::HOST, value);
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    Request {
        method: parts.method,
        target: Bytes::from(target),
        version: Version::HTTP_2,
        headers,
        head: Bytes::new(),
        peer: ends.peer,
        local: ends.local,
        secure: ends.secure,
    }
}

/// `GET /path HTTP/2.0`, for the access log.
pub fn request_line(request: &Request) -> Vec<u8> {
    let mut line = Vec::with_capacity(request.target.len() + 20);
    line.extend_from_slice(request.method.as_str().as_bytes());
    line.push(b' ');
    line.extend_from_slice(&request.target);
    line.extend_from_slice(b" HTTP/2.0");
    line
}

/// The length `Content-Length` declares, if the client sent one (hyper
/// refuses a stream whose DATA frames disagree with it).
pub fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A stream's request body: its DATA frames, each wait within the I/O
/// timeout and the whole above the minimum rate, as on HTTP/1.
#[derive(Debug)]
pub struct StreamBody {
    incoming: Incoming,
    pace: Pace,
    failed: bool,
}

impl StreamBody {
    /// The body `incoming` delivers, paced by `pace`.
    pub fn new(incoming: Incoming, pace: Pace) -> StreamBody {
        StreamBody {
            incoming,
            pace,
            failed: false,
        }
    }

    async fn next(&mut self) -> Result<Option<Bytes>, BodyReadError> {
        if self.failed {
            return Err(BodyReadError::Closed);
        }
        loop {
            let frame = match self.pace.wait(self.incoming.frame()).await {
                Err(_) => return Err(BodyReadError::TimedOut),
                Ok(None) => return Ok(None),
                Ok(Some(Err(_))) => return Err(BodyReadError::Closed),
                Ok(Some(Ok(frame))) => frame,
            };
            // Trailers are read and dropped, as on HTTP/1.
            if let Ok(data) = frame.into_data() {
                self.pace.moved(data.len() as u64);
                if !data.is_empty() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

impl BodySource for StreamBody {
    fn next_chunk(&mut self) -> NextChunk<'_> {
        Box::pin(self.next())
    }

    fn fail(&mut self, _why: &'static str) {
        self.failed = true;
    }
}
