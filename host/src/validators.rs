//! Validators and conditional requests: `ETag`, `Last-Modified`,
//! `If-None-Match`, `If-Modified-Since` and `If-Range`.
//!
//! The entity tag is strong and made from the file's identity and version
//! (inode, size, modification time in nanoseconds), so that a file replaced
//! by another of the same size within the same second still changes tag.
//! As in Python, `If-Modified-Since` is consulted only when `If-None-Match`
//! is absent (RFC 9110 §13.2.2), compares whole seconds, and a date that
//! cannot be parsed is ignored.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, header};

/// What identifies one version of a file.
#[derive(Debug, Clone)]
pub struct Validators {
    /// The strong entity tag, quotes included.
    pub etag: Vec<u8>,
    /// Modification time, whole seconds.
    pub modified: SystemTime,
}

impl Validators {
    /// Validators for a file with this inode, size and modification time.
    pub fn new(inode: u64, size: u64, mtime_secs: i64, mtime_nanos: u32) -> Validators {
        let mut etag = Vec::with_capacity(48);
        etag.push(b'"');
        for (i, part) in [inode, size, mtime_secs as u64, u64::from(mtime_nanos)]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                etag.push(b'-');
            }
            push_hex(&mut etag, part);
        }
        etag.push(b'"');
        let modified = if mtime_secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(mtime_secs.unsigned_abs())
        } else {
            UNIX_EPOCH
        };
        Validators { etag, modified }
    }

    /// `Last-Modified`, as an HTTP date.
    pub fn last_modified(&self) -> HeaderValue {
        crate::clock::date_value(self.modified)
    }

    /// `ETag`.
    pub fn etag_value(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
    }

    /// Whether a GET or HEAD with these request headers is answered 304.
    pub fn not_modified(&self, headers: &HeaderMap) -> bool {
        let mut if_none_match = headers.get_all(header::IF_NONE_MATCH).iter().peekable();
        if if_none_match.peek().is_some() {
            return if_none_match.any(|value| self.matches_weakly(value.as_bytes()));
        }
        let Some(since) = headers.get(header::IF_MODIFIED_SINCE) else {
            return false;
        };
        match since
            .to_str()
            .ok()
            .and_then(|s| httpdate::parse_http_date(s).ok())
        {
            Some(since) => self.modified <= since,
            None => false,
        }
    }

    /// `If-None-Match` uses the weak comparison: `W/"x"` matches `"x"`.
    fn matches_weakly(&self, list: &[u8]) -> bool {
        let ours = self.etag.as_slice();
        list.split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == ours)
    }

    /// Whether an `If-Range` value still names this version, so the range
    /// applies: a strong entity tag that is ours, or exactly our date.
    pub fn if_range_holds(&self, value: &HeaderValue) -> bool {
        let bytes = value.as_bytes().trim_ascii();
        if bytes.starts_with(b"\"") {
            return bytes == self.etag.as_slice();
        }
        if bytes.starts_with(b"W/") {
            return false;
        }
        value
            .to_str()
            .ok()
            .and_then(|s| httpdate::parse_http_date(s.trim()).ok())
            .is_some_and(|date| date == self.modified)
    }
}

/// Appends `n` in lower-case hexadecimal.
fn push_hex(out: &mut Vec<u8>, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let width = (64 - n.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..width).rev() {
        out.push(DIGITS[(n >> (shift * 4) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validators() -> Validators {
        Validators::new(0x1234, 0x400, 1_700_000_000, 5)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    #[test]
    fn etag_is_strong_and_stable() {
        let v = validators();
        assert_eq!(v.etag, b"\"1234-400-6553f100-5\"");
        assert_eq!(v.etag, validators().etag);
        assert_eq!(Validators::new(0, 0, 0, 0).etag, b"\"0-0-0-0\"");
        assert_ne!(
            v.etag,
            Validators::new(0x1234, 0x400, 1_700_000_000, 6).etag
        );
    }

    #[test]
    fn if_none_match() {
        let v = validators();
        let etag = String::from_utf8(v.etag.clone()).expect("ascii");
        assert!(v.not_modified(&headers(&[("if-none-match", &etag)])));
        let listed = format!("\"a\", W/{etag}");
        assert!(v.not_modified(&headers(&[("if-none-match", &listed)])));
        assert!(v.not_modified(&headers(&[("if-none-match", "*")])));
        assert!(!v.not_modified(&headers(&[("if-none-match", "\"other\"")])));
    }

    #[test]
    fn if_modified_since_is_ignored_when_if_none_match_is_present() {
        let v = validators();
        let later = httpdate::fmt_http_date(v.modified + Duration::from_secs(10));
        assert!(v.not_modified(&headers(&[("if-modified-since", &later)])));
        let same = httpdate::fmt_http_date(v.modified);
        assert!(v.not_modified(&headers(&[("if-modified-since", &same)])));
        let earlier = httpdate::fmt_http_date(v.modified - Duration::from_secs(1));
        assert!(!v.not_modified(&headers(&[("if-modified-since", &earlier)])));
        assert!(!v.not_modified(&headers(&[
            ("if-none-match", "\"x\""),
            ("if-modified-since", &later)
        ])));
        assert!(!v.not_modified(&headers(&[("if-modified-since", "yesterday")])));
    }

    #[test]
    fn if_range() {
        let v = validators();
        assert!(v.if_range_holds(&v.etag_value()));
        let weak = format!("W/{}", String::from_utf8_lossy(&v.etag));
        assert!(!v.if_range_holds(&HeaderValue::from_str(&weak).expect("v")));
        assert!(v.if_range_holds(&v.last_modified()));
        let other = httpdate::fmt_http_date(v.modified + Duration::from_secs(1));
        assert!(!v.if_range_holds(&HeaderValue::from_str(&other).expect("v")));
    }
}
