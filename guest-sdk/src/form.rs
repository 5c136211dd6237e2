//! HTML form data: `application/x-www-form-urlencoded` and
//! `multipart/form-data` (file uploads), what Python's `cgi.FieldStorage`
//! read.
//!
//! ```
//! use wasmhttpd_guest::form::{Field, parse};
//!
//! let fields = parse("application/x-www-form-urlencoded", b"name=Ada+L&lang=en%21").unwrap();
//! assert_eq!(fields[0], Field::text("name", "Ada L"));
//! assert_eq!(fields[1].value_str(), Some("en!"));
//! ```

use std::fmt;

/// One form field: a value, or an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// The uploaded file's name, for a file field.
    pub filename: Option<String>,
    /// The part's content type, when the client sent one.
    pub content_type: Option<String>,
    /// The value, or the file's content.
    pub value: Vec<u8>,
}

impl Field {
    /// A text field.
    pub fn text(name: &str, value: &str) -> Field {
        Field {
            name: name.to_string(),
            filename: None,
            content_type: None,
            value: value.as_bytes().to_vec(),
        }
    }

    /// The value as text, if it is UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// A body that is not the form it claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError(String);

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed form data: {}", self.0)
    }
}

impl std::error::Error for FormError {}

/// Parses a form body of the given `Content-Type`.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Field>, FormError> {
    let (kind, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    match kind.trim().to_ascii_lowercase().as_str() {
        "application/x-www-form-urlencoded" => Ok(parse_urlencoded(&String::from_utf8_lossy(body))
            .into_iter()
            .map(|(name, value)| Field::text(&name, &value))
            .collect()),
        "multipart/form-data" => {
            let boundary =
                parameter(params, "boundary").ok_or_else(|| FormError("no boundary".into()))?;
            parse_multipart(&boundary, body)
        }
        other => Err(FormError(format!("unsupported content type {other:?}"))),
    }
}

/// Decodes `a=1&b=x+y%21` into pairs (also for query strings).
pub fn parse_urlencoded(input: &str) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// Percent-decodes, with `+` as a space; invalid escapes are kept.
fn decode(text: &str) -> String {
    percent_decode(text, true)
}

/// Percent-decodes (with `+` as a space if `plus_is_space`), invalid
/// escapes kept, invalid UTF-8 replaced.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => match bytes.get(i + 1..i + 3).and_then(hex_byte) {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
}

/// `name=value` or `name="value"` in a `;`-separated parameter list.
fn parameter(params: &str, name: &str) -> Option<String> {
    params.split(';').find_map(|param| {
        let (key, value) = param.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

/// Splits a `multipart/form-data` body (RFC 7578) into its fields.
fn parse_multipart(boundary: &str, body: &[u8]) -> Result<Vec<Field>, FormError> {
    if boundary.is_empty() || boundary.len() > 200 {
        return Err(FormError("bad boundary".into()));
    }
    let delimiter = format!("--{boundary}");
    let mut rest = body;
    let start =
        find(rest, delimiter.as_bytes()).ok_or_else(|| FormError("no first boundary".into()))?;
    rest = &rest[start + delimiter.len()..];
    let mut fields = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(fields);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or_else(|| FormError("no line break after a boundary".into()))?;
        let head_end = find(rest, b"\r\n\r\n")
            .ok_or_else(|| FormError("a part without a blank line".into()))?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        rest = &rest[head_end + 4..];
        let next = format!("\r\n{delimiter}");
        let end = find(rest, next.as_bytes())
            .ok_or_else(|| FormError("a part without a closing boundary".into()))?;
        let value = rest[..end].to_vec();
        rest = &rest[end + next.len()..];

        let mut field = Field {
            name: String::new(),
            filename: None,
            content_type: None,
            value,
        };
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                field.name = parameter(value, "name").unwrap_or_default();
                field.filename = parameter(value, "filename");
            } else if key.trim().eq_ignore_ascii_case("content-type") {
                field.content_type = Some(value.trim().to_string());
            }
        }
        fields.push(field);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded() {
        let pairs = parse_urlencoded("a=1&b=x+y%21&c&d=%zz&e=%4");
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y!".into()),
                ("c".into(), "".into()),
                ("d".into(), "%zz".into()),
                ("e".into(), "%4".into()),
            ]
        );
    }

    #[test]
    fn multipart_with_a_file() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nMy notes\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n--XyZ--\r\n";
        let fields = parse("multipart/form-data; boundary=XyZ", body).expect("multipart");
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0], Field::text("title", "My notes"));
        assert_eq!(fields[1].name, "upload");
        assert_eq!(fields[1].filename.as_deref(), Some("a.txt"));
        assert_eq!(fields[1].content_type.as_deref(), Some("text/plain"));
        assert_eq!(fields[1].value, b"line1\r\nline2");
    }

    #[test]
    fn malformed_multipart_is_an_error_not_a_panic() {
        for body in [
            &b""[..],
            b"--XyZ",
            b"--XyZ\r\nno blank line",
            b"--XyZ\r\n\r\nno end",
            b"garbage",
        ] {
            assert!(
                parse("multipart/form-data; boundary=XyZ", body).is_err(),
                "{body:?}"
            );
        }
        assert!(parse("multipart/form-data", b"").is_err());
        assert!(parse("text/plain", b"").is_err());
    }
}
