//! `Range: bytes=…` for a single range (RFC 9110 §14).
//!
//! One range is honoured: `a-b`, `a-` and the suffix `-n`. A header this
//! server does not handle (another unit, several ranges, bad syntax) is
//! ignored and the whole file is sent, as the RFC allows; a well-formed
//! range that starts beyond the end is answered 416 with
//! `Content-Range: bytes */N`.

/// What a `Range` header asks of a file of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Send the whole file (no range, or one we ignore).
    Full,
    /// Send bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// The range cannot be satisfied (416).
    Unsatisfiable,
}

/// Interprets a `Range` header value for a file of `len` bytes.
pub fn parse(value: &[u8], len: u64) -> RangeRequest {
    let Some(spec) = value.trim_ascii().strip_prefix(b"bytes=").or_else(|| {
        let v = value.trim_ascii();
        (v.len() > 6 && v[..6].eq_ignore_ascii_case(b"bytes=")).then(|| &v[6..])
    }) else {
        return RangeRequest::Full;
    };
    let spec = spec.trim_ascii();
    if spec.contains(&b',') {
        return RangeRequest::Full;
    }
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    match (number(first), number(last)) {
        // bytes=-n: the last n bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || len == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial {
                    start: len - n.min(len),
                    end: len - 1,
                }
            }
        }
        // bytes=a-
        (Some(start), None) if last.is_empty() => satisfiable(start, u64::MAX, len),
        // bytes=a-b
        (Some(start), Some(end)) if start <= end => satisfiable(start, end, len),
        _ => RangeRequest::Full,
    }
}

fn satisfiable(start: u64, end: u64, len: u64) -> RangeRequest {
    if len == 0 || start >= len {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Partial {
            start,
            end: end.min(len - 1),
        }
    }
}

fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn single_ranges() {
        assert_eq!(parse(b"bytes=0-9", 100), Partial { start: 0, end: 9 });
        assert_eq!(parse(b"bytes=90-", 100), Partial { start: 90, end: 99 });
        assert_eq!(parse(b"bytes=90-1000", 100), Partial { start: 90, end: 99 });
        assert_eq!(parse(b"bytes=-10", 100), Partial { start: 90, end: 99 });
        assert_eq!(parse(b"bytes=-1000", 100), Partial { start: 0, end: 99 });
        assert_eq!(parse(b"Bytes=5-5", 100), Partial { start: 5, end: 5 });
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(parse(b"bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse(b"bytes=200-300", 100), Unsatisfiable);
        assert_eq!(parse(b"bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse(b"bytes=0-", 0), Unsatisfiable);
    }

    #[test]
    fn ignored() {
        for v in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=x-1",
            "bytes=",
            "bytes=-",
            "0-1",
            "bytes=1-2-3",
        ] {
            assert_eq!(parse(v.as_bytes(), 100), Full, "{v}");
        }
    }
}
