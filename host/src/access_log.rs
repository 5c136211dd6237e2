//! The access log: one line per response on stderr (through [`crate::log`],
//! which never blocks a worker), in Python's format.
//!
//! `127.0.0.1 - - [21/Nov/2026 14:00:00] "GET / HTTP/1.1" 200 1024`
//!
//! The size is the number of body bytes sent, or `-` when none were (HEAD,
//! 304, or a write that failed). Control characters in the request line are
//! written as `\xHH` and backslashes doubled, so a request cannot rewrite the
//! operator's terminal (Python's gh-100001). IPv4 clients on a dual-stack
//! socket are shown as `127.0.0.1`, not `::ffff:127.0.0.1`.

use std::fmt::Write as _;
use std::net::IpAddr;

use http::StatusCode;

use crate::clock;

/// Where access log lines go.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog {
    enabled: bool,
}

impl AccessLog {
    /// A log that writes to stderr, or nothing when `quiet`.
    pub fn new(quiet: bool) -> AccessLog {
        AccessLog { enabled: !quiet }
    }

    /// Records one response.
    pub fn record(
        &self,
        client: IpAddr,
        request_line: &[u8],
        status: StatusCode,
        size: Option<u64>,
    ) {
        if !self.enabled {
            return;
        }
        let line = format_line(client, &clock::log_time(), request_line, status, size);
        crate::log::line(line);
    }
}

/// Formats one log line (with its newline).
pub fn format_line(
    client: IpAddr,
    time: &str,
    request_line: &[u8],
    status: StatusCode,
    size: Option<u64>,
) -> String {
    let mut line = String::with_capacity(64 + request_line.len());
    let _ = write!(line, "{} - - [{time}] \"", client.to_canonical());
    escape_into(&mut line, request_line);
    let _ = write!(line, "\" {}", status.as_u16());
    match size {
        Some(n) if n > 0 => {
            let _ = writeln!(line, " {n}");
        }
        _ => line.push_str(" -\n"),
    }
    line
}

/// Appends `bytes` with control characters (C0, DEL, C1) as `\xHH` and
/// `\` as `\\`; invalid UTF-8 bytes are written as `\xHH` too.
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pythons_format() {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let line = format_line(
            ip,
            "21/Nov/2026 14:00:00",
            b"GET / HTTP/1.1",
            StatusCode::OK,
            Some(1024),
        );
        assert_eq!(
            line,
            "127.0.0.1 - - [21/Nov/2026 14:00:00] \"GET / HTTP/1.1\" 200 1024\n"
        );
        let line = format_line(ip, "t", b"HEAD / HTTP/1.1", StatusCode::OK, Some(0));
        assert!(line.ends_with("\" 200 -\n"));
        let line = format_line(ip, "t", b"", StatusCode::URI_TOO_LONG, None);
        assert!(line.ends_with("\"\" 414 -\n"));
    }

    #[test]
    fn mapped_ipv4_is_shown_as_ipv4() {
        let ip: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert!(format_line(ip, "t", b"", StatusCode::OK, None).starts_with("10.0.0.1 - - "));
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        escape_into(&mut out, b"GET /\x1b[31mred\\ \x7f \xc2\x85 \xff");
        assert_eq!(out, "GET /\\x1b[31mred\\\\ \\x7f \\x85 \\xff");
    }
}
