//! Request bodies: a decoder for `Content-Length` and chunked framing, and
//! the reader a backend uses to take the body off the connection.
//!
//! The decoder works on the connection's read buffer and hands out body
//! bytes without copying. The chunked grammar is RFC 9112 §7.1, read
//! strictly: hex sizes of at most 16 digits (no overflow), CRLF line ends
//! only (a bare LF is a framing error, since lenient parsers disagree about
//! it and that disagreement is what request smuggling exploits), chunk
//! extensions and trailers skipped but bounded in size.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::parse::Framing;
use crate::error::HttpError;

/// Most bytes of chunk extensions on one chunk-size line.
const MAX_EXTENSION: usize = 4096;
/// Most bytes of trailer fields.
const MAX_TRAILERS: usize = 16 * 1024;

/// A malformed request body; the connection cannot continue after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body: {0}")]
pub struct BodyError(&'static str);

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Some body bytes.
    Data(Bytes),
    /// The buffer holds no more body bytes; read more from the socket.
    NeedMore,
    /// The body is complete.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Size { value: u64, digits: u8 },
    Extension { value: u64, len: usize },
    SizeLf { value: u64 },
    Data(u64),
    DataCr,
    DataLf,
    Trailer { line: usize, total: usize },
    TrailerLf { line: usize, total: usize },
    Done,
}

/// Decodes one request body from the connection's buffer.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    /// A decoder for a body with this framing.
    pub fn new(framing: Framing) -> BodyDecoder {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Size {
                value: 0,
                digits: 0,
            },
        };
        BodyDecoder { state }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the next body bytes out of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, BodyError> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::Length(remaining) | State::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = remaining.min(buf.len() as u64) as usize;
                    let left = remaining - take as u64;
                    self.state = match self.state {
                        State::Length(_) if left == 0 => State::Done,
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::DataCr,
                        _ => State::Data(left),
                    };
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                _ => {
                    let Some(&byte) = buf.first() else {
                        return Ok(Decoded::NeedMore);
                    };
                    buf.advance(1);
                    self.state = self.step(byte)?;
                }
            }
        }
    }

    /// One byte of chunk framing (size line, CRLF after data, trailers).
    fn step(&self, byte: u8) -> Result<State, BodyError> {
        let next = match (self.state, byte) {
            (State::Size { value, digits }, _) if byte.is_ascii_hexdigit() => {
                if digits >= 16 {
                    return Err(BodyError("chunk size too large"));
                }
                let digit = u64::from((byte as char).to_digit(16).unwrap_or(0) as u8);
                State::Size {
                    value: value << 4 | digit,
                    digits: digits + 1,
                }
            }
            (State::Size { digits: 0, .. }, _) => return Err(BodyError("missing chunk size")),
            (State::Size { value, .. }, b';' | b' ' | b'\t') => State::Extension { value, len: 1 },
            (State::Size { value, .. }, b'\r') => State::SizeLf { value },
            (State::Extension { value, .. }, b'\r') => State::SizeLf { value },
            (State::Extension { value, len }, _) => {
                if len >= MAX_EXTENSION || (byte < 0x20 && byte != b'\t') || byte == 0x7f {
                    return Err(BodyError("bad chunk extension"));
                }
                State::Extension {
                    value,
                    len: len + 1,
                }
            }
            (State::SizeLf { value: 0 }, b'\n') => State::Trailer { line: 0, total: 0 },
            (State::SizeLf { value }, b'\n') => State::Data(value),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::Size {
                value: 0,
                digits: 0,
            },
            (State::Trailer { line, total }, b'\r') => State::TrailerLf { line, total },
            (State::Trailer { line, total }, _) => {
                if total >= MAX_TRAILERS || byte == b'\n' {
                    return Err(BodyError("bad trailer section"));
                }
                State::Trailer {
                    line: line + 1,
                    total: total + 1,
                }
            }
            (State::TrailerLf { line: 0, .. }, b'\n') => State::Done,
            (State::TrailerLf { total, .. }, b'\n') => State::Trailer { line: 0, total },
            _ => return Err(BodyError("bad chunk framing")),
        };
        Ok(next)
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    /// Longer than the backend accepts (413).
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    /// Chunked framing broken (400).
    #[error(transparent)]
    Malformed(#[from] BodyError),
    /// The client stopped sending (408).
    #[error("client stopped sending the body")]
    TimedOut,
    /// The connection closed or failed.
    #[error("connection lost while reading the body")]
    Closed,
}

impl BodyReadError {
    /// The error the client is answered with.
    pub fn to_http_error(&self) -> HttpError {
        match self {
            BodyReadError::TooLarge(_) => HttpError::PayloadTooLarge,
            BodyReadError::Malformed(e) => HttpError::BadRequest(e.to_string()),
            BodyReadError::TimedOut | BodyReadError::Closed => HttpError::RequestTimeout,
        }
    }
}

/// A request's body, read from the connection on demand. A backend that
/// never reads it leaves it to the connection to discard.
#[derive(Debug)]
pub struct RequestBody<'a> {
    source: Option<Source<'a>>,
    declared: Option<u64>,
}

#[derive(Debug)]
struct Source<'a> {
    stream: &'a mut TcpStream,
    buf: &'a mut BytesMut,
    decoder: &'a mut BodyDecoder,
    /// `Expect: 100-continue` not answered yet: answered on the first read.
    continue_pending: bool,
    io_timeout: Duration,
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
    /// The body of the request whose head was just parsed from `stream`.
    pub fn new(
        stream: &'a mut TcpStream,
        buf: &'a mut BytesMut,
        decoder: &'a mut BodyDecoder,
        framing: Framing,
        expect_continue: bool,
        io_timeout: Duration,
    ) -> RequestBody<'a> {
        let declared = match framing {
            Framing::Empty => Some(0),
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
        };
        let continue_pending = expect_continue && !decoder.is_done();
        RequestBody {
            source: Some(Source {
                stream,
                buf,
                decoder,
                continue_pending,
                io_timeout,
            }),
            declared,
        }
    }

    /// The length the client declared (`Content-Length`, or 0 without a
    /// body); `None` for a chunked body.
    pub fn declared_length(&self) -> Option<u64> {
        self.declared
    }

    /// The next piece of the body; `Ok(None)` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyReadError> {
        let Some(source) = self.source.as_mut() else {
            return Ok(None);
        };
        if source.continue_pending {
            source.continue_pending = false;
            let sent = timeout(
                source.io_timeout,
                source.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n"),
            )
            .await;
            if !matches!(sent, Ok(Ok(()))) {
                return Err(BodyReadError::Closed);
            }
        }
        loop {
            match source.decoder.decode(source.buf)? {
                Decoded::Data(bytes) => return Ok(Some(bytes)),
                Decoded::End => return Ok(None),
                Decoded::NeedMore => {
                    source.buf.reserve(64 * 1024);
                    match timeout(source.io_timeout, source.stream.read_buf(source.buf)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        Ok(_) => return Err(BodyReadError::Closed),
                        Err(_) => return Err(BodyReadError::TimedOut),
                    }
                }
            }
        }
    }

    /// The whole body, refused (before reading any of it, when the client
    /// declared its length) if it is longer than `limit` bytes.
    pub async fn read_to_end(&mut self, limit: u64) -> Result<Bytes, BodyReadError> {
        if self.declared.is_some_and(|n| n > limit) {
            return Err(BodyReadError::TooLarge(limit));
        }
        let mut body = BytesMut::with_capacity(self.declared.unwrap_or(0).min(limit) as usize);
        while let Some(chunk) = self.chunk().await? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(BodyReadError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns the body.
    fn decode_all(
        framing: Framing,
        input: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, usize), BodyError> {
        let mut decoder = BodyDecoder::new(framing);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(bytes) => body.extend_from_slice(&bytes),
                Decoded::End => return Ok((body, buf.len() + input.len() - fed)),
                Decoded::NeedMore => {
                    if fed == input.len() {
                        return Err(BodyError("truncated"));
                    }
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn content_length_stops_at_the_length() {
        let (body, left) = decode_all(Framing::Length(5), b"hello GET", 3).expect("ok");
        assert_eq!(body, b"hello");
        assert_eq!(left, 4);
    }

    #[test]
    fn chunked_in_every_split() {
        let input = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in 1..input.len() {
            let (body, left) = decode_all(Framing::Chunked, input, step).expect("ok");
            assert_eq!(body, b"hello world", "step {step}");
            assert_eq!(left, 4, "step {step}");
        }
    }

    #[test]
    fn hex_sizes() {
        let input = b"A\r\n0123456789\r\n0\r\n\r\n";
        assert_eq!(
            decode_all(Framing::Chunked, input, 100).expect("ok").0,
            b"0123456789"
        );
    }

    #[test]
    fn malformed_chunked_bodies_are_errors() {
        let cases: &[&[u8]] = &[
            b"\r\n",                  // no size
            b"x\r\n",                 // not hex
            b"5\nhello\r\n0\r\n\r\n", // bare LF after size
            b"5\r\nhelloXX0\r\n\r\n", // no CRLF after data
            b"11111111111111111\r\n", // 17 hex digits
            b"0\r\nX: 1\n\r\n",       // bare LF in trailers
            b"1;\x01\r\n",            // control in extension
        ];
        for input in cases {
            assert!(decode_all(Framing::Chunked, input, 1).is_err(), "{input:?}");
        }
    }

    #[test]
    fn oversized_extensions_and_trailers_are_errors() {
        let mut ext = b"1;".to_vec();
        ext.extend(std::iter::repeat_n(b'a', MAX_EXTENSION + 1));
        assert!(decode_all(Framing::Chunked, &ext, 1000).is_err());
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..2000 {
            trailers.extend_from_slice(b"X-Trailer: 1\r\n");
        }
        assert!(decode_all(Framing::Chunked, &trailers, 1000).is_err());
    }

    #[test]
    fn empty_bodies_are_done_at_once() {
        assert!(BodyDecoder::new(Framing::Empty).is_done());
        assert!(BodyDecoder::new(Framing::Length(0)).is_done());
    }
}
