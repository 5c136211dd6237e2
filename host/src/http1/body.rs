//! HTTP/1 request bodies: a decoder for `Content-Length` and chunked
//! framing, and the [`BodySource`] that takes a body off the connection.
//!
//! The decoder works on the connection's read buffer and hands out body
//! bytes without copying. The chunked grammar is RFC 9112 §7.1, read
//! strictly, because lenient parsers disagree about every deviation and
//! that disagreement is what request smuggling exploits:
//! - a chunk-size line is hex digits (at most 16: no overflow), optional
//!   whitespace (BWS), optional chunk extensions (`;name` or `;name=value`,
//!   value a token or a quoted string), then CRLF; anything else after the
//!   size (`5 zz`, `5\t6`) is an error;
//! - CRLF line ends only: a bare LF or CR anywhere in the framing is an
//!   error;
//! - chunk extensions are ignored, but their bytes are capped per body
//!   (16 KiB, as hyper; Go's unbounded case was CVE-2023-39326);
//! - trailer fields are checked as `name: value` lines (no obs-fold) and
//!   capped in total, then discarded.
//!
//! An error is final: the decoder stays failed, so no later call can
//! resume parsing after the offending byte, and the connection must close
//! after its answer. [`crate::request_body::RequestBody`] marks the decoder failed
//! for every other body error too (a limit, a timeout, a lost client).

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::parse::Framing;
use crate::pace::Pace;
use crate::request_body::{BodyReadError, BodySource, NextChunk};

/// Most bytes of chunk extensions (whitespace after sizes included) in one
/// body.
pub const MAX_EXTENSIONS: usize = 16 * 1024;
/// Most bytes of trailer fields in one body.
pub const MAX_TRAILERS: usize = 16 * 1024;

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

/// Where in a chunk extension the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// After `;`, before the name (BWS allowed).
    BeforeName,
    Name,
    /// BWS after a name.
    AfterName,
    /// After `=`, before the value (BWS allowed).
    BeforeValue,
    Token,
    Quoted,
    /// After a backslash in a quoted string.
    Escape,
    /// BWS after a value.
    AfterValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Size {
        value: u64,
        digits: u8,
    },
    /// Whitespace after the size digits.
    SizeSpace {
        value: u64,
    },
    Extension {
        value: u64,
        at: Ext,
    },
    SizeLf {
        value: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final CRLF).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
    /// Refused; stays so.
    Failed(&'static str),
}

/// Decodes one request body from the connection's buffer.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    /// Chunk-extension bytes seen so far.
    extensions: usize,
    /// Trailer bytes seen so far.
    trailers: usize,
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn is_space(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
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
        BodyDecoder {
            state,
            extensions: 0,
            trailers: 0,
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the body was refused (malformed, or failed by the reader):
    /// the connection cannot be reused.
    pub fn has_failed(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }

    /// Marks the body as failed for a reason outside its framing (a limit,
    /// a timeout, a lost client).
    pub fn fail(&mut self, why: &'static str) {
        if !self.has_failed() {
            self.state = State::Failed(why);
        }
    }

    /// Takes the next body bytes out of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, BodyError> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::Failed(why) => return Err(BodyError(why)),
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
                    self.state = match self.step(byte) {
                        Ok(next) => next,
                        Err(why) => State::Failed(why),
                    };
                }
            }
        }
    }

    /// One byte of chunk framing (size line, CRLF after data, trailers).
    fn step(&mut self, byte: u8) -> Result<State, &'static str> {
        let next = match self.state {
            State::Size { value, digits } if byte.is_ascii_hexdigit() => {
                if digits >= 16 {
                    return Err("chunk size too large");
                }
                let digit = (byte as char).to_digit(16).map_or(0, u64::from);
                State::Size {
                    value: value << 4 | digit,
                    digits: digits + 1,
                }
            }
            State::Size { digits: 0, .. } => return Err("missing chunk size"),
            State::Size { value, .. } | State::SizeSpace { value } => match byte {
                b'\r' => State::SizeLf { value },
                b';' => self.extension(value, Ext::BeforeName)?,
                _ if is_space(byte) => {
                    self.count_extension()?;
                    State::SizeSpace { value }
                }
                _ => return Err("junk after the chunk size"),
            },
            State::Extension { value, at } => {
                if byte == b'\r'
                    && matches!(
                        at,
                        Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue
                    )
                {
                    State::SizeLf { value }
                } else {
                    let next = match (at, byte) {
                        (Ext::BeforeName | Ext::AfterName, _) if is_space(byte) => at,
                        (Ext::BeforeName | Ext::Name, _) if is_tchar(byte) => Ext::Name,
                        (Ext::Name, _) if is_space(byte) => Ext::AfterName,
                        (Ext::Name | Ext::AfterName, b'=') => Ext::BeforeValue,
                        (Ext::BeforeValue, _) if is_space(byte) => at,
                        (Ext::BeforeValue, b'"') => Ext::Quoted,
                        (Ext::BeforeValue | Ext::Token, _) if is_tchar(byte) => Ext::Token,
                        (Ext::Token | Ext::AfterValue, _) if is_space(byte) => Ext::AfterValue,
                        (Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue, b';') => {
                            Ext::BeforeName
                        }
                        (Ext::Quoted, b'"') => Ext::AfterValue,
                        (Ext::Quoted, b'\\') => Ext::Escape,
                        (Ext::Quoted | Ext::Escape, _)
                            if byte == b'\t' || (byte >= 0x20 && byte != 0x7f) =>
                        {
                            Ext::Quoted
                        }
                        _ => return Err("bad chunk extension"),
                    };
                    self.extension(value, next)?
                }
            }
            State::SizeLf { value } => match byte {
                b'\n' if value == 0 => State::TrailerStart,
                b'\n' => State::Data(value),
                _ => return Err("chunk-size line not ended by CRLF"),
            },
            State::DataCr if byte == b'\r' => State::DataLf,
            State::DataLf if byte == b'\n' => State::Size {
                value: 0,
                digits: 0,
            },
            State::DataCr | State::DataLf => return Err("chunk data not followed by CRLF"),
            State::TrailerStart if byte == b'\r' => State::EndLf,
            State::TrailerStart | State::TrailerName if is_tchar(byte) => {
                self.count_trailer()?;
                State::TrailerName
            }
            State::TrailerName if byte == b':' => {
                self.count_trailer()?;
                State::TrailerValue
            }
            State::TrailerValue if byte == b'\r' => State::TrailerLf,
            State::TrailerValue if byte == b'\t' || (byte >= 0x20 && byte != 0x7f) => {
                self.count_trailer()?;
                State::TrailerValue
            }
            State::TrailerLf | State::EndLf if byte == b'\n' => {
                if self.state == State::EndLf {
                    State::Done
                } else {
                    State::TrailerStart
                }
            }
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf
            | State::EndLf => return Err("bad trailer section"),
            State::Length(_) | State::Data(_) | State::Done | State::Failed(_) => {
                return Err("bad chunk framing");
            }
        };
        Ok(next)
    }

    /// One more byte of extension, at `at`.
    fn extension(&mut self, value: u64, at: Ext) -> Result<State, &'static str> {
        self.count_extension()?;
        Ok(State::Extension { value, at })
    }

    fn count_extension(&mut self) -> Result<(), &'static str> {
        self.extensions += 1;
        if self.extensions > MAX_EXTENSIONS {
            return Err("too many chunk-extension bytes");
        }
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), &'static str> {
        self.trailers += 1;
        if self.trailers > MAX_TRAILERS {
            return Err("trailer section too large");
        }
        Ok(())
    }
}

impl From<BodyError> for BodyReadError {
    fn from(error: BodyError) -> BodyReadError {
        BodyReadError::Malformed(error.to_string())
    }
}

/// A request body framed by HTTP/1 on the connection whose head was just
/// parsed: the decoder over the connection's read buffer, reading more
/// from the socket as the backend asks for it.
#[derive(Debug)]
pub struct Http1Body<'a, S> {
    stream: &'a mut S,
    buf: &'a mut BytesMut,
    decoder: &'a mut BodyDecoder,
    /// `Expect: 100-continue` not answered yet: answered on the first read.
    continue_pending: bool,
    /// Each read within the I/O timeout, the body above the minimum rate.
    pace: Pace,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin + Send> Http1Body<'a, S> {
    /// The body `decoder` frames, read from `stream` after what `buf`
    /// already holds.
    pub fn new(
        stream: &'a mut S,
        buf: &'a mut BytesMut,
        decoder: &'a mut BodyDecoder,
        expect_continue: bool,
        pace: Pace,
    ) -> Http1Body<'a, S> {
        let continue_pending = expect_continue && !decoder.is_done();
        Http1Body {
            stream,
            buf,
            decoder,
            continue_pending,
            pace,
        }
    }

    async fn next(&mut self) -> Result<Option<Bytes>, BodyReadError> {
        if self.continue_pending {
            self.continue_pending = false;
            let sent = self
                .pace
                .wait(self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n"))
                .await;
            if !matches!(sent, Ok(Ok(()))) {
                return Err(BodyReadError::Closed);
            }
        }
        loop {
            match self.decoder.decode(self.buf)? {
                Decoded::Data(bytes) => return Ok(Some(bytes)),
                Decoded::End => return Ok(None),
                Decoded::NeedMore => {
                    self.buf.reserve(64 * 1024);
                    match self.pace.io(self.stream.read_buf(self.buf)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        Ok(_) => return Err(BodyReadError::Closed),
                        Err(_) => return Err(BodyReadError::TimedOut),
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> BodySource for Http1Body<'_, S> {
    fn next_chunk(&mut self) -> NextChunk<'_> {
        Box::pin(self.next())
    }

    fn fail(&mut self, why: &'static str) {
        self.decoder.fail(why);
    }
}

/// The length a body framed as `framing` declares; `None` for chunked.
pub fn declared_length(framing: Framing) -> Option<u64> {
    match framing {
        Framing::Empty => Some(0),
        Framing::Length(n) => Some(n),
        Framing::Chunked => None,
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
            b"\r\n",                           // no size
            b"x\r\n",                          // not hex
            b"5\nhello\r\n0\r\n\r\n",          // bare LF after size
            b"5\rhello\r\n0\r\n\r\n",          // bare CR after size
            b"5\r\nhelloXX0\r\n\r\n",          // no CRLF after data
            b"5\r\nhello\n0\r\n\r\n",          // bare LF after data
            b"3\r\nabcX\r\n0\r\n\r\n",         // data longer than its size
            b"11111111111111111\r\n",          // 17 hex digits
            b"5 zz\r\nhello\r\n0\r\n\r\n",     // junk after the size
            b"5\t6\r\nhello\r\n0\r\n\r\n",     // a second number
            b"-5\r\nhello\r\n0\r\n\r\n",       // a sign
            b"0x5\r\nhello\r\n0\r\n\r\n",      // a prefix
            b" 5\r\nhello\r\n0\r\n\r\n",       // space before the size
            b"5;\r\nhello\r\n0\r\n\r\n",       // extension without a name
            b"5;a=\r\nhello\r\n0\r\n\r\n",     // extension without a value
            b"5;a b\r\nhello\r\n0\r\n\r\n",    // two names
            b"5;a=\"x\r\nhello\r\n0\r\n\r\n",  // unterminated quoted value
            b"5;a=b c\r\nhello\r\n0\r\n\r\n",  // junk after a value
            b"1;\x01\r\n",                     // control in extension
            b"1;a=\"\x01\"\r\nx\r\n0\r\n\r\n", // control in a quoted value
            b"0\r\nX: 1\n\r\n",                // bare LF in trailers
            b"0\r\n: 1\r\n\r\n",               // trailer without a name
            b"0\r\nX 1\r\n\r\n",               // trailer without a colon
            b"0\r\nX : 1\r\n\r\n",             // space before the colon
            b"0\r\nX: 1\r\n folded\r\n\r\n",   // obs-fold
            b"0\r\nX: \x00\r\n\r\n",           // NUL in a trailer
            b"0\r\n\n",                        // bare LF ends the trailers
            b"0\r\n\r\r",                      // CR CR
        ];
        for input in cases {
            for step in 1..=input.len() {
                assert!(
                    decode_all(Framing::Chunked, input, step).is_err(),
                    "{:?} in steps of {step}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn well_formed_extensions_and_trailers_are_accepted() {
        let cases: &[&[u8]] = &[
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5\t \r\nhello\r\n0\r\n\r\n",
            b"5;a\r\nhello\r\n0\r\n\r\n",
            b"5 ; a = b ; c\r\nhello\r\n0;last\r\n\r\n",
            b"5;a=\"q \\\" \\\\ ;\"\r\nhello\r\n0\r\n\r\n",
            b"0005\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\nZ:  spaced \t\r\n\r\n",
        ];
        for input in cases {
            for step in 1..=input.len() {
                let decoded = decode_all(Framing::Chunked, input, step);
                assert_eq!(
                    decoded.map(|(body, _)| body),
                    Ok(b"hello".to_vec()),
                    "{:?} in steps of {step}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn an_error_is_final() {
        // The byte after the offending one must never be parsed as framing:
        // `abcX` fails at X, and the rest (`\r\n0\r\n\r\n`) would otherwise
        // read as a valid end.
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&b"3\r\nabcX\r\n0\r\n\r\nGET /secret HTTP/1.1\r\n"[..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Decoded::Data(Bytes::from_static(b"abc")))
        );
        assert!(decoder.decode(&mut buf).is_err());
        for _ in 0..buf.len() + 1 {
            assert!(decoder.decode(&mut buf).is_err());
        }
        assert!(decoder.has_failed());
        assert!(!decoder.is_done());

        let mut decoder = BodyDecoder::new(Framing::Length(10));
        decoder.fail("timed out");
        assert!(decoder.has_failed());
        assert!(
            decoder
                .decode(&mut BytesMut::from(&b"0123456789"[..]))
                .is_err()
        );
    }

    #[test]
    fn oversized_extensions_and_trailers_are_errors() {
        let mut ext = b"1;".to_vec();
        ext.extend(std::iter::repeat_n(b'a', MAX_EXTENSIONS + 1));
        assert!(decode_all(Framing::Chunked, &ext, 1000).is_err());
        // Many small extensions add up: 4,000 chunks with 4 KiB of
        // extension each (16 MB for 4,000 data bytes) is refused early.
        let mut many = Vec::new();
        let mut refused_at = None;
        for i in 0..10 {
            many.extend_from_slice(b"1;e=");
            many.extend(std::iter::repeat_n(b'v', 4000));
            many.extend_from_slice(b"\r\nx\r\n");
            if refused_at.is_none()
                && decode_all(Framing::Chunked, &many, 65536).err() != Some(BodyError("truncated"))
            {
                refused_at = Some(i);
            }
        }
        assert!(refused_at.is_some_and(|i| i < 5), "{refused_at:?}");
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
