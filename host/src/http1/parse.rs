//! Request line and header block → a validated request head.
//!
//! The request line is parsed here, so that errors read as Python's do
//! (`Bad request syntax ('…')`, `Bad request version ('…')`, 505 `Invalid
//! HTTP version (2.0)`); the header block goes to `httparse`. Then the
//! framing is checked as RFC 9112 asks and as request smuggling demands:
//! `Content-Length` with `Transfer-Encoding`, differing or malformed
//! `Content-Length`s, `Transfer-Encoding` on HTTP/1.0 or not ending in
//! `chunked`, obs-fold, whitespace before `:`, a missing or repeated `Host`
//! on HTTP/1.1 — each is a 400, and the connection closes after it.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};

use crate::error::{HttpError, py_repr};

/// The most header fields any configuration may allow (slots live on the
/// stack).
pub const MAX_HEADERS: usize = 128;

/// Size limits on a request head.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest request line, CRLF excluded (414 beyond).
    pub max_request_line: usize,
    /// Most bytes in the header block (431 beyond).
    pub max_header_bytes: usize,
    /// Most header fields (431 beyond), at most [`MAX_HEADERS`].
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request_line: 16 * 1024,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed and validated request head.
#[derive(Debug)]
pub struct Head {
    /// The method.
    pub method: Method,
    /// The request target, as sent.
    pub target: Bytes,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Header fields.
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the client asked to keep the connection open.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
    /// The request line as sent, for the access log.
    pub request_line: Bytes,
    /// The whole head as sent: request line, fields, empty line.
    pub raw: Bytes,
}

/// A head that could not be accepted, with what the log should show.
#[derive(Debug)]
pub struct HeadError {
    /// The error the client is answered with.
    pub error: HttpError,
    /// The request line, as far as it was read (empty when too long to log,
    /// as Python logs `""`).
    pub request_line: Bytes,
}

/// Parses a request head at the start of `buf` (leading empty lines already
/// skipped). `Ok(None)` means more bytes are needed. On success the head's
/// bytes are split off `buf`, and the target, request line and header
/// values are slices of them: no copies.
pub fn parse_head(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Head>, HeadError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.max_request_line + 1 {
            return Err(HeadError {
                error: HttpError::UriTooLong,
                request_line: Bytes::new(),
            });
        }
        return Ok(None);
    };
    let line_len = if newline > 0 && buf[newline - 1] == b'\r' {
        newline - 1
    } else {
        newline
    };
    if line_len > limits.max_request_line {
        return Err(HeadError {
            error: HttpError::UriTooLong,
            request_line: Bytes::new(),
        });
    }
    let line_error = |error: HttpError, buf: &BytesMut| HeadError {
        error,
        request_line: Bytes::copy_from_slice(&buf[..line_len]),
    };
    let (method, target, version) =
        parse_request_line(&buf[..line_len]).map_err(|e| line_error(e, buf))?;

    // Header fields, as ranges into `buf`, so the borrow ends before the split.
    let block = &buf[newline + 1..];
    let base = buf.as_ptr() as usize;
    let parsed = match parse_fields(block, limits.max_headers.min(MAX_HEADERS), base) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            if block.len() > limits.max_header_bytes {
                let error = HttpError::HeaderFieldsTooLarge("Header block too large");
                return Err(line_error(error, buf));
            }
            return Ok(None);
        }
        Err(error) => return Err(line_error(error, buf)),
    };
    let (block_len, fields) = parsed;
    if block_len > limits.max_header_bytes {
        return Err(line_error(
            HttpError::HeaderFieldsTooLarge("Header block too large"),
            buf,
        ));
    }

    let bytes = buf.split_to(newline + 1 + block_len).freeze();
    let request_line = bytes.slice(..line_len);
    let fail = |error: HttpError| HeadError {
        error,
        request_line: request_line.clone(),
    };
    let target = bytes.slice(target);
    let mut headers = HeaderMap::with_capacity(fields.len());
    let mut facts = Facts::default();
    for (name, value) in &fields {
        let bad = || fail(HttpError::BadRequest("Bad header field".into()));
        let name = HeaderName::from_bytes(&bytes[name.clone()]).map_err(|_| bad())?;
        let value =
            HeaderValue::from_maybe_shared(bytes.slice(value.clone())).map_err(|_| bad())?;
        facts.note(&name, &value);
        headers.append(name, value);
    }

    let framing = framing(&facts, version).map_err(fail)?;
    if version == Version::HTTP_11 && facts.hosts != 1 {
        let why = if facts.hosts == 0 {
            "Missing Host header"
        } else {
            "Repeated Host header"
        };
        return Err(fail(HttpError::BadRequest(why.into())));
    }
    // `close` wins over `keep-alive`, in any order (RFC 9112 §9.6).
    let keep_alive = !facts.close && (version == Version::HTTP_11 || facts.keep_alive);
    let expect_continue = match &facts.expect {
        None => false,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"100-continue") => {
            version == Version::HTTP_11
        }
        Some(_) => return Err(fail(HttpError::ExpectationFailed)),
    };

    Ok(Some(Head {
        method,
        target,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue,
        request_line,
        raw: bytes,
    }))
}

/// The name and value ranges of header fields, relative to `base`.
type FieldRanges = Vec<(Range<usize>, Range<usize>)>;

/// Parses the header block; `Ok(None)` if incomplete. Most heads have few
/// fields, so a small array of slots is tried first, and one of `max` only
/// when that overflows.
fn parse_fields(
    block: &[u8],
    max: usize,
    base: usize,
) -> Result<Option<(usize, FieldRanges)>, HttpError> {
    const FEW: usize = 24;
    let mut few = [httparse::EMPTY_HEADER; FEW];
    let result = match parse_into(block, &mut few[..max.min(FEW)], base) {
        Err(httparse::Error::TooManyHeaders) if max > FEW => {
            parse_into(block, &mut vec![httparse::EMPTY_HEADER; max], base)
        }
        other => other,
    };
    result.map_err(|error| match error {
        httparse::Error::TooManyHeaders => HttpError::HeaderFieldsTooLarge("Too many headers"),
        _ => HttpError::BadRequest("Bad header field".into()),
    })
}

fn parse_into<'b>(
    block: &'b [u8],
    slots: &mut [httparse::Header<'b>],
    base: usize,
) -> Result<Option<(usize, FieldRanges)>, httparse::Error> {
    let httparse::Status::Complete((len, parsed)) = httparse::parse_headers(block, slots)? else {
        return Ok(None);
    };
    let ranges = parsed
        .iter()
        .map(|field| {
            let name = field.name.as_ptr() as usize - base;
            let value = field.value.as_ptr() as usize - base;
            (
                name..name + field.name.len(),
                value..value + field.value.len(),
            )
        })
        .collect();
    Ok(Some((len, ranges)))
}

fn bad_syntax(line: &[u8]) -> HttpError {
    HttpError::BadRequest(format!(
        "Bad request syntax ({})",
        py_repr(&String::from_utf8_lossy(line))
    ))
}

/// `METHOD SP request-target SP HTTP-version`, split on runs of spaces or
/// tabs as Python splits it. The target is returned as its range in `line`.
fn parse_request_line(line: &[u8]) -> Result<(Method, Range<usize>, Version), HttpError> {
    let mut words = line
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty());
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(bad_syntax(line));
    };
    let version = parse_version(version)?;
    let method = Method::from_bytes(method).map_err(|_| bad_syntax(line))?;
    let target_ok = (target[0] == b'/' || target == b"*" || is_absolute_form(target))
        && target.iter().all(|&b| b > 0x20 && b != 0x7f);
    if !target_ok {
        return Err(bad_syntax(line));
    }
    let start = target.as_ptr() as usize - line.as_ptr() as usize;
    Ok((method, start..start + target.len(), version))
}

fn is_absolute_form(target: &[u8]) -> bool {
    let lower = |n: usize| target.get(..n).map(<[u8]>::to_ascii_lowercase);
    lower(7).as_deref() == Some(b"http://") || lower(8).as_deref() == Some(b"https://")
}

/// `HTTP/d.d`, as Python checks it: 400 if malformed, 505 if not 1.x.
fn parse_version(word: &[u8]) -> Result<Version, HttpError> {
    let text = String::from_utf8_lossy(word);
    let bad = || HttpError::BadRequest(format!("Bad request version ({})", py_repr(&text)));
    let number = word.strip_prefix(b"HTTP/").ok_or_else(bad)?;
    let mut parts = number.split(|&b| b == b'.');
    let (Some(major), Some(minor), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let digits = |p: &[u8]| !p.is_empty() && p.len() <= 10 && p.iter().all(u8::is_ascii_digit);
    if !digits(major) || !digits(minor) {
        return Err(bad());
    }
    let value = |p: &[u8]| p.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    match (value(major), value(minor)) {
        (1, 0) => Ok(Version::HTTP_10),
        (1, _) => Ok(Version::HTTP_11),
        _ => Err(HttpError::VersionNotSupported(
            String::from_utf8_lossy(number).into_owned(),
        )),
    }
}

/// What the fields that govern framing and the connection say, gathered
/// in the same pass that builds the header map (no lookups afterwards).
#[derive(Debug, Default)]
struct Facts {
    /// `Content-Length` values, each checked; the first problem found.
    length: Option<Result<u64, &'static str>>,
    /// `Transfer-Encoding` field values, in order.
    codings: Vec<HeaderValue>,
    hosts: usize,
    close: bool,
    keep_alive: bool,
    expect: Option<HeaderValue>,
}

impl Facts {
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) {
        if name == CONTENT_LENGTH {
            let parsed = parse_length(value.as_bytes());
            self.length = Some(match (self.length.take(), parsed) {
                (Some(Err(e)), _) | (_, Err(e)) => Err(e),
                (Some(Ok(prev)), Ok(n)) if prev != n => Err("Conflicting Content-Length"),
                (_, Ok(n)) => Ok(n),
            });
        } else if name == TRANSFER_ENCODING {
            self.codings.push(value.clone());
        } else if name == HOST {
            self.hosts += 1;
        } else if name == CONNECTION {
            for token in value
                .as_bytes()
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
            {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name == EXPECT {
            self.expect = Some(value.clone());
        }
    }
}

/// A `Content-Length` value: 1 to 19 digits, nothing else (no sign, no list).
fn parse_length(bytes: &[u8]) -> Result<u64, &'static str> {
    if bytes.is_empty() || bytes.len() > 19 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err("Bad Content-Length");
    }
    Ok(bytes.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The body's framing, per RFC 9112 §6.3, refusing every ambiguity.
fn framing(facts: &Facts, version: Version) -> Result<Framing, HttpError> {
    let bad = |why: &str| HttpError::BadRequest(why.to_string());
    let length = facts.length.transpose().map_err(bad)?;
    if facts.codings.is_empty() {
        return Ok(length.map_or(Framing::Empty, Framing::Length));
    }
    if version == Version::HTTP_10 {
        return Err(bad("Transfer-Encoding in HTTP/1.0"));
    }
    if length.is_some() {
        return Err(bad("Content-Length with Transfer-Encoding"));
    }
    let codings: Vec<&[u8]> = facts
        .codings
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    let chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
    match codings.as_slice() {
        [only] if chunked(only) => Ok(Framing::Chunked),
        [.., last] if chunked(last) => Err(HttpError::UnsupportedTransferCoding),
        _ => Err(bad("Transfer-Encoding without chunked")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn parse(raw: &str) -> Result<Option<Head>, HeadError> {
        parse_head(&mut BytesMut::from(raw.as_bytes()), &Limits::default())
    }

    fn head(raw: &str) -> Head {
        parse(raw).expect("valid").expect("complete")
    }

    fn status(raw: &str) -> StatusCode {
        parse(raw).expect_err(raw).error.status()
    }

    fn message(raw: &str) -> String {
        parse(raw).expect_err(raw).error.to_string()
    }

    #[test]
    fn simple_get() {
        let mut buf =
            BytesMut::from(&b"GET /a?b HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\nNEXT"[..]);
        let h = parse_head(&mut buf, &Limits::default())
            .expect("ok")
            .expect("complete");
        assert_eq!(&buf[..], b"NEXT", "the head is split off, the rest stays");
        assert_eq!(
            h.headers.get("user-agent").map(|v| v.as_bytes()),
            Some(&b"t"[..])
        );
        assert_eq!(h.method, Method::GET);
        assert_eq!(&h.target[..], b"/a?b");
        assert_eq!(h.version, Version::HTTP_11);
        assert_eq!(h.framing, Framing::Empty);
        assert!(h.keep_alive);
        assert_eq!(&h.request_line[..], b"GET /a?b HTTP/1.1");
    }

    #[test]
    fn partial_heads_need_more() {
        assert!(
            parse("GET / HTTP/1.1\r\nHost: x\r\n")
                .expect("ok")
                .is_none()
        );
        assert!(parse("GET / HT").expect("ok").is_none());
    }

    #[test]
    fn bare_lf_is_accepted() {
        assert_eq!(head("GET / HTTP/1.0\n\n").version, Version::HTTP_10);
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!head("GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.1\r\nHost: x\r\nConnection: x, close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        for version in ["1.0", "1.1"] {
            for value in ["keep-alive, close", "close, keep-alive", "Keep-Alive,CLOSE"] {
                let raw = format!("GET / HTTP/{version}\r\nHost: x\r\nConnection: {value}\r\n\r\n");
                assert!(!head(&raw).keep_alive, "{raw:?}");
            }
            let raw = format!(
                "GET / HTTP/{version}\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
            );
            assert!(!head(&raw).keep_alive, "{raw:?}");
        }
    }

    #[test]
    fn malformed_request_lines_read_like_python() {
        assert_eq!(message("GARBAGE\r\n\r\n"), "Bad request syntax ('GARBAGE')");
        assert_eq!(message("GET /\r\n\r\n"), "Bad request syntax ('GET /')");
        assert_eq!(
            status("GET / HTTP/1.1 extra\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("GET noslash HTTP/1.1\r\nHost: x\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn versions() {
        assert_eq!(
            message("GET / HTTP/2.0\r\n\r\n"),
            "Invalid HTTP version (2.0)"
        );
        assert_eq!(
            status("GET / HTTP/2.0\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            status("GET / HTTP/0.9\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            message("GET / HTTP/1\r\n\r\n"),
            "Bad request version ('HTTP/1')"
        );
        assert_eq!(
            message("GET / FOO/1.1\r\n\r\n"),
            "Bad request version ('FOO/1.1')"
        );
        assert_eq!(status("GET / HTTP/1.x\r\n\r\n"), StatusCode::BAD_REQUEST);
        assert_eq!(
            status("GET / HTTP/1.12345678901\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            head("GET / HTTP/1.2\r\nHost: x\r\n\r\n").version,
            Version::HTTP_11
        );
    }

    #[test]
    fn long_request_line_is_414_even_before_it_ends() {
        let limits = Limits {
            max_request_line: 32,
            ..Limits::default()
        };
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(40));
        let err = parse_head(&mut BytesMut::from(long.as_bytes()), &limits).expect_err("too long");
        assert_eq!(err.error.status(), StatusCode::URI_TOO_LONG);
        let unfinished = format!("GET /{}", "a".repeat(40));
        let err =
            parse_head(&mut BytesMut::from(unfinished.as_bytes()), &limits).expect_err("too long");
        assert_eq!(err.error.status(), StatusCode::URI_TOO_LONG);
    }

    #[test]
    fn header_limits() {
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert_eq!(status(&raw), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n", "v".repeat(70_000));
        assert_eq!(status(&big), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let fits: String = (0..99).map(|i| format!("X-{i}: v\r\n")).collect();
        head(&format!("GET / HTTP/1.1\r\nHost: x\r\n{fits}\r\n"));
    }

    #[test]
    fn framing_ambiguities_are_refused() {
        let cases = [
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n  folded\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ];
        for raw in cases {
            assert_eq!(status(raw), StatusCode::BAD_REQUEST, "{raw:?}");
        }
    }

    #[test]
    fn framings() {
        let h =
            head("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(5));
        let h = head("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            StatusCode::NOT_IMPLEMENTED
        );
    }

    #[test]
    fn expectations() {
        assert!(head("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n\r\n").expect_continue);
        assert!(!head("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n"),
            StatusCode::EXPECTATION_FAILED
        );
    }

    #[test]
    fn absolute_and_asterisk_forms() {
        assert_eq!(
            &head("GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n").target[..],
            b"http://x/a"
        );
        assert_eq!(
            &head("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").target[..],
            b"*"
        );
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        for bytes in crate::testing::random_inputs(b"GET /HTP1.0\r\n: \tHost%\x00\xff", 20_000, 64)
        {
            let _ = parse_head(&mut BytesMut::from(&bytes[..]), &Limits::default());
        }
    }
}
