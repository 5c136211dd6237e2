//! A request's body as a backend reads it, whichever protocol carried it.
//!
//! A protocol front end (HTTP/1's connection, an HTTP/2 stream) supplies a
//! [`BodySource`]; backends read through [`RequestBody`], which adds what
//! is the same everywhere: the declared length, limits, the server's body
//! budget, and the rule that every error is final (the source is told, so
//! that its connection or stream does not carry on as if the body were
//! whole).

use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};

use crate::budget::Share;
use crate::error::HttpError;

/// The future a [`BodySource`] returns for its next piece.
pub type NextChunk<'s> =
    Pin<Box<dyn Future<Output = Result<Option<Bytes>, BodyReadError>> + Send + 's>>;

/// Where a body's bytes come from: one protocol's framing on one
/// connection or stream.
pub trait BodySource: Send {
    /// The next piece of the body; `Ok(None)` at its end.
    fn next_chunk(&mut self) -> NextChunk<'_>;
    /// The body failed (`why`, in a word): nothing more may be read from
    /// it, and the carrier must not treat it as complete.
    fn fail(&mut self, why: &'static str);
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    /// Longer than the backend accepts (413).
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    /// Framing broken (400).
    #[error("{0}")]
    Malformed(String),
    /// The client stopped sending, or sent slower than the minimum rate
    /// (408).
    #[error("client stopped sending the body, or sent it too slowly")]
    TimedOut,
    /// The connection or stream closed or failed.
    #[error("connection lost while reading the body")]
    Closed,
    /// Holding it would exceed a server-wide budget (503).
    #[error("the {0} budget is in use")]
    Overloaded(&'static str),
}

impl BodyReadError {
    /// Why the body failed, in a word.
    pub fn reason(&self) -> &'static str {
        match self {
            BodyReadError::TooLarge(_) => "body too large",
            BodyReadError::Malformed(_) => "malformed body",
            BodyReadError::TimedOut => "body timed out",
            BodyReadError::Closed => "connection lost",
            BodyReadError::Overloaded(_) => "over budget",
        }
    }

    /// The error the client is answered with.
    pub fn to_http_error(&self) -> HttpError {
        match self {
            BodyReadError::TooLarge(_) => HttpError::PayloadTooLarge,
            BodyReadError::Malformed(why) => HttpError::BadRequest(why.clone()),
            BodyReadError::TimedOut | BodyReadError::Closed => HttpError::RequestTimeout,
            BodyReadError::Overloaded(what) => HttpError::Overloaded(what),
        }
    }
}

/// A request's body, read on demand. A backend that never reads it leaves
/// it to the protocol front end to discard.
pub struct RequestBody<'a> {
    source: Option<&'a mut dyn BodySource>,
    declared: Option<u64>,
}

impl std::fmt::Debug for RequestBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("declared", &self.declared)
            .finish_non_exhaustive()
    }
}

impl RequestBody<'static> {
    /// No body (an internal redirect's GET, or an in-process test).
    pub fn empty() -> RequestBody<'static> {
        RequestBody {
            source: None,
            declared: Some(0),
        }
    }
}

impl<'a> RequestBody<'a> {
    /// The body `source` supplies; `declared` is the length the client
    /// announced (`Content-Length`, or 0 for none), `None` when unknown.
    pub fn new(source: &'a mut dyn BodySource, declared: Option<u64>) -> RequestBody<'a> {
        RequestBody {
            source: Some(source),
            declared,
        }
    }

    /// The length the client declared (`Content-Length`, or 0 without a
    /// body); `None` for a body of unknown length (chunked).
    pub fn declared_length(&self) -> Option<u64> {
        self.declared
    }

    /// Refuses the body as longer than `limit` bytes. Like every body
    /// error, this is final.
    pub fn too_large(&mut self, limit: u64) -> BodyReadError {
        self.fail("body too large");
        BodyReadError::TooLarge(limit)
    }

    /// Refuses the body at once if its declared length exceeds `limit`.
    pub fn check_declared(&mut self, limit: u64) -> Result<(), BodyReadError> {
        match self.declared {
            Some(n) if n > limit => Err(self.too_large(limit)),
            _ => Ok(()),
        }
    }

    fn fail(&mut self, why: &'static str) {
        if let Some(source) = self.source.as_mut() {
            source.fail(why);
        }
    }

    /// The next piece of the body; `Ok(None)` at its end. After an error
    /// every later call fails too.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyReadError> {
        let Some(source) = self.source.as_mut() else {
            return Ok(None);
        };
        let result = source.next_chunk().await;
        if let Err(error) = &result {
            source.fail(error.reason());
        }
        result
    }

    /// The whole body, refused (before reading any of it, when the client
    /// declared its length) if it is longer than `limit` bytes, held in
    /// memory within `share` of the server's budget for bodies.
    pub async fn read_to_end(
        &mut self,
        limit: u64,
        share: &mut Share,
    ) -> Result<Bytes, BodyReadError> {
        self.check_declared(limit)?;
        // A declared length is held at once; another body as it grows.
        let mut reserved = self.declared.unwrap_or(0);
        if !share.grow(reserved) {
            return Err(self.over_budget(share));
        }
        let mut body = BytesMut::with_capacity(reserved as usize);
        while let Some(chunk) = self.chunk().await? {
            let len = (body.len() + chunk.len()) as u64;
            if len > limit {
                return Err(self.too_large(limit));
            }
            if len > reserved {
                if !share.grow(len - reserved) {
                    return Err(self.over_budget(share));
                }
                reserved = len;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// Refuses the body as more than the server can hold now.
    pub fn over_budget(&mut self, share: &Share) -> BodyReadError {
        self.fail("over budget");
        BodyReadError::Overloaded(share.what())
    }
}

/// A body held in memory, given out in the pieces it was made of (for
/// backends' unit tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Pieces {
    pieces: std::collections::VecDeque<Bytes>,
    /// Why the body was failed, if it was.
    pub failed: Option<&'static str>,
}

#[cfg(test)]
impl Pieces {
    /// A body made of `pieces`.
    pub fn new(pieces: impl IntoIterator<Item = Bytes>) -> Pieces {
        Pieces {
            pieces: pieces.into_iter().collect(),
            failed: None,
        }
    }
}

#[cfg(test)]
impl BodySource for Pieces {
    fn next_chunk(&mut self) -> NextChunk<'_> {
        let next = match self.failed {
            Some(_) => Err(BodyReadError::Closed),
            None => Ok(self.pieces.pop_front()),
        };
        Box::pin(std::future::ready(next))
    }

    fn fail(&mut self, why: &'static str) {
        self.failed.get_or_insert(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;

    #[tokio::test]
    async fn an_error_is_final_and_reaches_the_source() {
        let mut source = Pieces::new([Bytes::from_static(b"0123456789")]);
        let budget = Budget::unlimited("bodies");
        let mut share = budget.share(0).expect("share");
        let mut body = RequestBody::new(&mut source, None);
        assert!(matches!(
            body.read_to_end(5, &mut share).await,
            Err(BodyReadError::TooLarge(5))
        ));
        assert!(matches!(body.chunk().await, Err(BodyReadError::Closed)));
        assert_eq!(source.failed, Some("body too large"));
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let mut source = Pieces::new([Bytes::from_static(b"abc")]);
        let mut body = RequestBody::new(&mut source, Some(3));
        assert!(body.check_declared(2).is_err());
        assert_eq!(source.failed, Some("body too large"));
        let mut source = Pieces::new([Bytes::from_static(b"ab"), Bytes::from_static(b"c")]);
        let budget = Budget::unlimited("bodies");
        let mut share = budget.share(0).expect("share");
        let mut body = RequestBody::new(&mut source, Some(3));
        assert_eq!(
            body.read_to_end(3, &mut share).await.expect("whole"),
            Bytes::from_static(b"abc")
        );
    }
}
