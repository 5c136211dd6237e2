//! Timestamps that every response and log line needs, formatted once a second.
//!
//! Formatting a date costs more than serving a small file from the page
//! cache, so each thread keeps the last formatted `Date` header value and
//! access-log timestamp and reformats only when the second changes.

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
            let value = HeaderValue::try_from(httpdate::fmt_http_date(now))
                .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
            *cached = Some(Cached {
                second,
                value: value.clone(),
            });
            value
        }
    })
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
    fn log_time_has_pythons_shape() {
        let t = log_time();
        // dd/Mon/yyyy hh:mm:ss
        assert_eq!(t.len(), 20, "{t}");
        assert_eq!(&t[2..3], "/");
        assert_eq!(&t[6..7], "/");
        assert_eq!(&t[11..12], " ");
    }
}
