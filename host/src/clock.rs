//! Timestamps that every response and log line needs, formatted once a second,
//! and an allocation-free formatter for HTTP dates.
//!
//! Formatting a date with `format!` costs about as much as serving a small
//! file from the page cache, so each thread keeps the last formatted `Date`
//! header value and access-log timestamp and reformats only when the second
//! changes, and `Last-Modified` is written by [`format_http_date`].

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderValue;

struct Cached<T> {
    second: u64,
    value: T,
}

thread_local! {
    static DATE: RefCell<Option<Cached<HeaderValue>>> = const { RefCell::new(None) };
    static LOG_TIME: RefCell<Option<Cached<String>>> = const { RefCell::new(None) };
}

fn unix_second(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The current time as an HTTP `Date` value (IMF-fixdate, GMT).
pub fn http_date() -> HeaderValue {
    let now = SystemTime::now();
    let second = unix_second(now);
    DATE.with_borrow_mut(|cached| match cached {
        Some(c) if c.second == second => c.value.clone(),
        _ => {
            let value = date_value(now);
            *cached = Some(Cached {
                second,
                value: value.clone(),
            });
            value
        }
    })
}

/// `time` as an HTTP date header value.
pub fn date_value(time: SystemTime) -> HeaderValue {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    HeaderValue::from_bytes(&format_http_date(secs))
        .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

/// Seconds since the epoch as an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37
/// GMT` (RFC 9110 §5.6.7); years past 9999 are written as 9999.
pub fn format_http_date(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let secs = secs.min(253_402_300_799); // 9999-12-31 23:59:59
    let days = secs / 86_400;
    let (year, month, day) = civil_from_days(days);
    let in_day = secs % 86_400;
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    two_digits(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two_digits(&mut out[12..14], year / 100);
    two_digits(&mut out[14..16], year % 100);
    two_digits(&mut out[17..19], in_day / 3600);
    two_digits(&mut out[20..22], in_day / 60 % 60);
    two_digits(&mut out[23..25], in_day % 60);
    out
}

fn two_digits(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The current local time as Python's access log writes it:
/// `21/Nov/2026 14:00:00`, without a zone.
pub fn log_time() -> String {
    let second = unix_second(SystemTime::now());
    LOG_TIME.with_borrow_mut(|cached| match cached {
        Some(c) if c.second == second => c.value.clone(),
        _ => {
            let value = chrono::Local::now().format("%d/%b/%Y %H:%M:%S").to_string();
            *cached = Some(Cached {
                second,
                value: value.clone(),
            });
            value
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_is_imf_fixdate() {
        let date = http_date();
        let text = date.to_str().expect("ascii");
        assert!(text.ends_with(" GMT"), "{text}");
        assert!(httpdate::parse_http_date(text).is_ok());
    }

    #[test]
    fn http_dates_match_httpdate() {
        let mut t = 0u64;
        while t < 4_102_444_800 {
            let ours = format_http_date(t);
            let theirs = httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(t));
            assert_eq!(std::str::from_utf8(&ours).expect("ascii"), theirs, "at {t}");
            t += 86_399 * 7 + 3_607;
        }
        assert_eq!(
            &format_http_date(951_782_400),
            b"Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            &format_http_date(u64::MAX),
            b"Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }

    #[test]
    fn log_time_has_pythons_shape() {
        let t = log_time();
        // dd/Mon/yyyy hh:mm:ss
        assert_eq!(t.len(), 20, "{t}");
        assert_eq!(&t[2..3], "/");
        assert_eq!(&t[6..7], "/");
        assert_eq!(&t[11..12], " ");
    }
}
