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
    /// The strong entity tag, quotes included: `etag[..etag_len]`.
    etag: [u8; ETAG_CAPACITY],
    etag_len: usize,
    /// Modification time, whole seconds.
    pub modified: SystemTime,
}

impl Validators {
    /// Validators for a file with this inode, size and modification time.
    pub fn new(inode: u64, size: u64, mtime_secs: i64, mtime_nanos: u32) -> Validators {
        // "ino-size-secs-nanos": at most 2 + 4 * 16 + 3 bytes.
        let mut etag = [0u8; ETAG_CAPACITY];
        let mut etag_len = 0;
        etag[0] = b'"';
        etag_len += 1;
        let parts = [inode, size, mtime_secs as u64, u64::from(mtime_nanos)];
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                etag[etag_len] = b'-';
                etag_len += 1;
            }
            etag_len += write_hex(&mut etag[etag_len..], part);
        }
        etag[etag_len] = b'"';
        etag_len += 1;
        let modified = if mtime_secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(mtime_secs.unsigned_abs())
        } else {
            UNIX_EPOCH
        };
        Validators {
            etag,
            etag_len,
            modified,
        }
    }

    /// The strong entity tag, quotes included.
    pub fn etag(&self) -> &[u8] {
        &self.etag[..self.etag_len]
    }

    /// `Last-Modified`, as an HTTP date.
    pub fn last_modified(&self) -> HeaderValue {
        crate::clock::date_value(self.modified)
    }

    /// `ETag`.
    pub fn etag_value(&self) -> HeaderValue {
        HeaderValue::from_bytes(self.etag()).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
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
        let ours = self.etag();
        list.split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == ours)
    }

    /// Whether an `If-Range` value still names this version, so the range
    /// applies: a strong entity tag that is ours, or exactly our date.
    pub fn if_range_holds(&self, value: &HeaderValue) -> bool {
        let bytes = value.as_bytes().trim_ascii();
        if bytes.starts_with(b"\"") {
            return bytes == self.etag();
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

const ETAG_CAPACITY: usize = 72;

/// Writes `n` in lower-case hexadecimal at the start of `out`; returns the
/// number of digits.
pub(crate) fn write_hex(out: &mut [u8], n: u64) -> usize {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let width = (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, digit) in out[..width].iter_mut().enumerate() {
        let shift = 4 * (width - 1 - i);
        *digit = DIGITS[(n >> shift & 0xf) as usize];
    }
    width
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
        assert_eq!(v.etag(), b"\"1234-400-6553f100-5\"");
        assert_eq!(v.etag(), validators().etag());
        assert_eq!(Validators::new(0, 0, 0, 0).etag(), b"\"0-0-0-0\"");
        let widest = Validators::new(u64::MAX, u64::MAX, -1, u32::MAX);
        assert_eq!(widest.etag().len(), 2 + 3 * 16 + 8 + 3);
        assert_ne!(
            v.etag(),
            Validators::new(0x1234, 0x400, 1_700_000_000, 6).etag()
        );
    }

    #[test]
    fn if_none_match() {
        let v = validators();
        let etag = String::from_utf8(v.etag().to_vec()).expect("ascii");
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
        let weak = format!("W/{}", String::from_utf8_lossy(v.etag()));
        assert!(!v.if_range_holds(&HeaderValue::from_str(&weak).expect("v")));
        assert!(v.if_range_holds(&v.last_modified()));
        let other = httpdate::fmt_http_date(v.modified + Duration::from_secs(1));
        assert!(!v.if_range_holds(&HeaderValue::from_str(&other).expect("v")));
    }
}
