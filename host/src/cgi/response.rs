//! A CGI script's output head → status, headers, or a redirect (RFC 3875 §6).
//!
//! Script output is untrusted data: it is parsed strictly and never
//! panics, whatever the bytes. The head is the lines up to the first empty
//! line (each ended by LF or CRLF), at most [`MAX_HEAD`] bytes and
//! [`MAX_FIELDS`] fields. It must hold at least one CGI field —
//! `Content-Type`, `Location` or `Status` — none of them repeated; a
//! continuation line, a field name that is not a token, a value with
//! control characters, or a `Status` that is not a final three-digit code is
//! malformed, and the client gets 502.
//!
//! The three kinds of response (§6.2):
//! - **document**: `Content-Type`, optional `Status` (default 200), other
//!   fields, body;
//! - **local redirect**: `Location: /path?query` and no `Status`: the server
//!   re-dispatches the request internally as a GET for that path;
//! - **client redirect**: `Location` with an absolute URI (302 unless
//!   `Status` says another code), or with a `Status` of its own.
//!
//! Fields that describe the connection or the framing (`Content-Length`,
//! `Transfer-Encoding`, `Connection`, `Keep-Alive`) and those the server
//! sets itself (`Date`, `Server`) are dropped: the server frames the body.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// The most bytes of output head.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most fields in an output head.
pub const MAX_FIELDS: usize = 100;

/// Header fields the connection sets itself: a producer's own are dropped.
pub const SET_BY_SERVER: [&str; 6] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "server",
];

/// Why a script's output is not a CGI response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// No empty line within [`MAX_HEAD`] bytes.
    #[error("output head longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// More than [`MAX_FIELDS`] fields.
    #[error("more than {MAX_FIELDS} header fields")]
    TooManyFields,
    /// The output ended before the empty line that ends the head.
    #[error("output ended inside the header block")]
    Truncated,
    /// A line that is not `Name: value`.
    #[error("bad header line {0:?}")]
    BadLine(String),
    /// `Status`, `Location` or `Content-Type` given twice.
    #[error("{0} given twice")]
    Repeated(&'static str),
    /// A `Status` that is not a final three-digit code.
    #[error("bad Status {0:?}")]
    BadStatus(String),
    /// A `Location` that is neither an absolute URI nor a local path.
    #[error("bad Location {0:?}")]
    BadLocation(String),
    /// None of `Content-Type`, `Location`, `Status`.
    #[error("no Content-Type, Location or Status")]
    NoCgiField,
    /// A document response (with content) without `Content-Type`.
    #[error("a document needs a Content-Type")]
    NoContentType,
}

/// What the script asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Send a response with this status, these headers and the body.
    Respond {
        /// The status (default 200; 302 for an absolute `Location`).
        status: StatusCode,
        /// Header fields for the client (`Location` included).
        headers: HeaderMap,
    },
    /// Answer with a GET of this local path (with its query) instead.
    LocalRedirect(String),
}

/// Parses the output head at the start of `buf`. `Ok(None)` means more
/// output is needed; on success, also returns the head's length in bytes.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Disposition, usize)>, Malformed> {
    let mut status: Option<StatusCode> = None;
    let mut location: Option<String> = None;
    let mut content_type = false;
    let mut headers = HeaderMap::new();
    let mut fields = 0;
    let mut pos = 0;
    loop {
        let Some(newline) = buf[pos..].iter().position(|&b| b == b'\n') else {
            return if buf.len() > MAX_HEAD {
                Err(Malformed::HeadTooLarge)
            } else {
                Ok(None)
            };
        };
        let end = pos + newline;
        if end + 1 > MAX_HEAD {
            return Err(Malformed::HeadTooLarge);
        }
        let line = buf[pos..end].strip_suffix(b"\r").unwrap_or(&buf[pos..end]);
        pos = end + 1;
        if line.is_empty() {
            break;
        }
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(Malformed::TooManyFields);
        }
        let bad_line = || Malformed::BadLine(String::from_utf8_lossy(line).into_owned());
        let colon = line.iter().position(|&b| b == b':').ok_or_else(bad_line)?;
        let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| bad_line())?;
        let raw_value = line[colon + 1..].trim_ascii();
        let value = HeaderValue::from_bytes(raw_value).map_err(|_| bad_line())?;
        match name.as_str() {
            "status" => {
                if status.replace(parse_status(raw_value)?).is_some() {
                    return Err(Malformed::Repeated("Status"));
                }
            }
            "location" => {
                let text = value.to_str().map_err(|_| bad_line())?.to_string();
                if location.replace(text).is_some() {
                    return Err(Malformed::Repeated("Location"));
                }
            }
            "content-type" => {
                if content_type {
                    return Err(Malformed::Repeated("Content-Type"));
                }
                content_type = true;
                headers.append(name, value);
            }
            set_by_server if SET_BY_SERVER.contains(&set_by_server) => {}
            _ => {
                headers.append(name, value);
            }
        }
    }

    let disposition = match location {
        Some(path) if is_local_path(&path) && status.is_none() => Disposition::LocalRedirect(path),
        Some(uri) => {
            if !is_local_path(&uri) && !is_absolute_uri(&uri) {
                return Err(Malformed::BadLocation(uri));
            }
            let value =
                HeaderValue::from_str(&uri).map_err(|_| Malformed::BadLocation(uri.clone()))?;
            headers.insert(http::header::LOCATION, value);
            Disposition::Respond {
                status: status.unwrap_or(StatusCode::FOUND),
                headers,
            }
        }
        None => {
            let status = match (status, content_type) {
                (None, false) => return Err(Malformed::NoCgiField),
                (Some(s), false)
                    if s != StatusCode::NO_CONTENT && s != StatusCode::NOT_MODIFIED =>
                {
                    return Err(Malformed::NoContentType);
                }
                (status, _) => status.unwrap_or(StatusCode::OK),
            };
            Disposition::Respond { status, headers }
        }
    };
    Ok(Some((disposition, pos)))
}

/// `Status: NNN reason`: a final code (200–599); the reason is not used.
fn parse_status(value: &[u8]) -> Result<StatusCode, Malformed> {
    let bad = || Malformed::BadStatus(String::from_utf8_lossy(value).into_owned());
    let code = value.get(..3).ok_or_else(bad)?;
    if value.get(3).is_some_and(|&b| b != b' ' && b != b'\t') {
        return Err(bad());
    }
    let status = StatusCode::from_bytes(code).map_err(|_| bad())?;
    if !crate::response::is_final_status(status) {
        return Err(bad());
    }
    Ok(status)
}

/// `/path` (not `//host`, which names another server).
fn is_local_path(location: &str) -> bool {
    location.starts_with('/') && !location.starts_with("//")
}

/// `scheme:...`, RFC 3986 §3.1.
fn is_absolute_uri(location: &str) -> bool {
    let Some((scheme, rest)) = location.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    /// How a parse result is written in the golden files.
    fn render(input: &[u8]) -> String {
        match parse_head(input) {
            Ok(None) => "incomplete\n".to_string(),
            Err(e) => format!("malformed: {e}\n"),
            Ok(Some((Disposition::LocalRedirect(path), used))) => {
                format!(
                    "local redirect to {path}\nbody: {:?}\n",
                    String::from_utf8_lossy(&input[used..])
                )
            }
            Ok(Some((Disposition::Respond { status, headers }, used))) => {
                let mut out = format!("status: {}\n", status.as_u16());
                for (name, value) in &headers {
                    let _ = writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()));
                }
                let _ = writeln!(out, "body: {:?}", String::from_utf8_lossy(&input[used..]));
                out
            }
        }
    }

    /// Each `testdata/cgi-response/NAME.in` parses to `NAME.out`.
    /// `UPDATE_GOLDEN=1 cargo test` rewrites the `.out` files.
    #[test]
    fn golden_files() {
        crate::testing::golden("cgi-response", "in", 10, |path| {
            render(&std::fs::read(path).expect("input"))
        });
    }

    #[test]
    fn partial_heads_need_more() {
        assert_eq!(parse_head(b""), Ok(None));
        assert_eq!(parse_head(b"Content-Type: text/plain\n"), Ok(None));
        assert_eq!(parse_head(b"Content-Ty"), Ok(None));
    }

    #[test]
    fn endless_head_is_malformed_not_buffered() {
        let long = vec![b'a'; MAX_HEAD + 10];
        assert_eq!(parse_head(&long), Err(Malformed::HeadTooLarge));
        let many: String = (0..=MAX_FIELDS).map(|i| format!("X-{i}: v\n")).collect();
        assert_eq!(
            parse_head(format!("Content-Type: a/b\n{many}\n").as_bytes()),
            Err(Malformed::TooManyFields)
        );
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let alphabet = b"Status: 200Location/http:\r\n\n \t\x00\xffContent-Type";
        for bytes in crate::testing::random_inputs(alphabet, 50_000, 80) {
            let _ = parse_head(&bytes);
        }
    }
}
