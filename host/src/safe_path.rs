//! URL path → a relative file path that cannot leave the served root.
//!
//! What this defends against, and how:
//! - **Dot segments** (`/../../etc/passwd`, `%2e%2e`): the path is
//!   percent-decoded first, then `.` and `..` are resolved as RFC 3986's
//!   remove_dot_segments does, clamped at the root (Python's `normpath`
//!   behaves the same), so no `..` survives into the file path.
//! - **Encoded separators** (`%2F`, `%5C`, CVE-2014-4650's `%2f` trick) and
//!   **backslashes**: a `/` that was percent-encoded, or any `\`, is refused
//!   with 400 instead of being reinterpreted as a separator.
//! - **NUL bytes** (`%00`): refused with 400; they would truncate the path
//!   at the C boundary.
//! - **Symlinks out of the root**: not this module's job; the root handle
//!   (`fs_root`) opens with `RESOLVE_BENEATH`, so the kernel refuses them.
//!
//! Invalid percent escapes (`%zz`) are kept literally, as Python keeps them.
//! Names are bytes, not UTF-8, as file names are on Unix.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::HttpError;

/// A decoded, normalised request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPath {
    /// The path relative to the root, `/`-separated, decoded, with no empty,
    /// `.` or `..` segment; empty for the root itself.
    relative: Vec<u8>,
    /// Whether the decoded path ends in `/` (or in a dot segment, which
    /// names a directory).
    pub trailing_slash: bool,
}

impl UrlPath {
    /// Decodes and normalises the path part of a request target (no query).
    pub fn parse(raw: &[u8]) -> Result<UrlPath, HttpError> {
        let mut path = percent_decode(raw)?;
        let ends_in_slash = path.last() == Some(&b'/');
        // Normalise in place: segments are copied left over what was read,
        // so `written` never passes `read`.
        let mut written = 0;
        let mut read = 0;
        let mut trailing_slash = false;
        while read <= path.len() {
            let end = path[read..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(path.len(), |i| read + i);
            match &path[read..end] {
                b"" => {}
                b"." => trailing_slash = true,
                b".." => {
                    written = path[..written]
                        .iter()
                        .rposition(|&b| b == b'/')
                        .unwrap_or(0);
                    trailing_slash = true;
                }
                _ => {
                    if written > 0 {
                        path[written] = b'/';
                        written += 1;
                    }
                    path.copy_within(read..end, written);
                    written += end - read;
                    trailing_slash = false;
                }
            }
            read = end + 1;
        }
        path.truncate(written);
        Ok(UrlPath {
            relative: path,
            trailing_slash: trailing_slash || ends_in_slash,
        })
    }

    /// The path relative to the root (`.` for the root itself).
    pub fn relative(&self) -> &Path {
        if self.relative.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(&self.relative))
        }
    }

    /// The path relative to the root as bytes: `/`-separated, no leading
    /// `/`, empty for the root itself.
    pub fn as_bytes(&self) -> &[u8] {
        &self.relative
    }

    /// The decoded path as shown to people: `/a/b/` (lossy for non-UTF-8).
    pub fn display(&self) -> String {
        let mut out = String::from("/");
        out.push_str(&String::from_utf8_lossy(&self.relative));
        if self.trailing_slash && !self.relative.is_empty() {
            out.push('/');
        }
        out
    }

    /// The last segment, if any: the name used to pick a media type.
    pub fn file_name(&self) -> Option<&[u8]> {
        let start = self
            .relative
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(0, |i| i + 1);
        (!self.relative.is_empty()).then(|| &self.relative[start..])
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn bad_path(raw: &[u8]) -> HttpError {
    HttpError::BadRequest(format!(
        "Bad request path ({})",
        crate::error::py_repr(&String::from_utf8_lossy(raw))
    ))
}

/// Percent-decodes `raw`, refusing encoded `/`, any `\`, and NUL.
fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            if let (Some(h), Some(l)) = (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            ) {
                let decoded = h << 4 | l;
                if matches!(decoded, b'/' | b'\\' | 0) {
                    return Err(bad_path(raw));
                }
                out.push(decoded);
                i += 3;
                continue;
            }
        } else if matches!(b, b'\\' | 0) {
            return Err(bad_path(raw));
        }
        out.push(b);
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> UrlPath {
        UrlPath::parse(raw.as_bytes()).expect("valid path")
    }

    fn rel(raw: &str) -> String {
        parse(raw).relative().to_string_lossy().into_owned()
    }

    #[test]
    fn dot_segments_are_clamped_at_the_root() {
        assert_eq!(rel("/../../etc/passwd"), "etc/passwd");
        assert_eq!(rel("/a/b/../../../c"), "c");
        assert_eq!(rel("/%2e%2e/%2E%2E/x"), "x");
        assert_eq!(rel("/./a/./b"), "a/b");
        assert_eq!(rel("/"), ".");
        assert_eq!(rel("/.."), ".");
    }

    #[test]
    fn decoding_keeps_spaces_utf8_and_invalid_escapes() {
        assert_eq!(rel("/a%20b"), "a b");
        assert_eq!(rel("/caf%C3%A9"), "café");
        assert_eq!(rel("/100%zz"), "100%zz");
        assert_eq!(rel("/50%"), "50%");
        assert_eq!(parse("/%ff").file_name(), Some(&[0xff][..]));
    }

    #[test]
    fn empty_segments_collapse() {
        assert_eq!(rel("//a///b"), "a/b");
        assert_eq!(rel("/a/./b/../../c/d/.."), "c");
        assert_eq!(rel("/abc/../de/f"), "de/f");
    }

    #[test]
    fn trailing_slash_is_recorded() {
        assert!(parse("/dir/").trailing_slash);
        assert!(!parse("/dir").trailing_slash);
        assert!(parse("/dir/.").trailing_slash);
        assert!(parse("/dir/sub/..").trailing_slash);
        assert!(parse("/").trailing_slash);
    }

    #[test]
    fn encoded_separators_backslashes_and_nul_are_refused() {
        for raw in [
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a\\b",
            "/a%00b",
            "/%2e%2e%2f%2e%2e%2fetc",
        ] {
            let err = UrlPath::parse(raw.as_bytes()).expect_err(raw);
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST, "{raw}");
        }
    }

    #[test]
    fn file_name_is_the_last_segment() {
        assert_eq!(parse("/a/b.txt").file_name(), Some(&b"b.txt"[..]));
        assert_eq!(parse("/b.txt").file_name(), Some(&b"b.txt"[..]));
        assert_eq!(parse("/").file_name(), None);
    }

    #[test]
    fn display_shows_the_decoded_path() {
        assert_eq!(parse("/a%20b/").display(), "/a b/");
        assert_eq!(parse("/").display(), "/");
        assert_eq!(parse("/x/y").display(), "/x/y");
    }
}
