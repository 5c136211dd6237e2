//! A CGI script's or a plugin's stderr → the server's log, a line at a
//! time, tagged with where it came from:
//! `[plugin notes] could not open /data/x: not found`,
//! `[cgi /cgi-bin/report.sh] disk full`.
//!
//! Script output is untrusted: control characters are escaped like the
//! access log's, a line longer than [`MAX_LINE`] is cut, and after
//! [`MAX_TOTAL`] bytes from one instance the rest is dropped, with a note,
//! so that a script flooding stderr cannot flood the operator's log.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

use crate::access_log::escape_into;

/// The longest line logged as is.
pub const MAX_LINE: usize = 4096;
/// The most stderr bytes logged per run.
pub const MAX_TOTAL: usize = 64 * 1024;

/// Writes one run's stderr to the server's stderr, line by line.
#[derive(Debug)]
pub struct StderrLog {
    tag: String,
    line: Vec<u8>,
    total: usize,
    truncated: bool,
}

impl StderrLog {
    /// A log whose lines start with `tag` (`[plugin NAME]`).
    pub fn new(tag: &str) -> StderrLog {
        StderrLog {
            tag: format!("{tag} "),
            line: Vec::new(),
            total: 0,
            truncated: false,
        }
    }

    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let mut text = self.tag.clone();
        escape_into(&mut text, &self.line);
        text.push('\n');
        crate::log::line(text);
        self.line.clear();
    }

    fn take(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.total >= MAX_TOTAL {
                if !self.truncated {
                    self.truncated = true;
                    self.emit();
                    self.line.extend_from_slice(b"(stderr truncated)");
                    self.emit();
                }
                return;
            }
            self.total += 1;
            match b {
                b'\n' => self.emit(),
                b'\r' => {}
                _ if self.line.len() >= MAX_LINE => {}
                _ => self.line.push(b),
            }
        }
    }
}

impl AsyncWrite for StderrLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().take(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for StderrLog {
    fn drop(&mut self) {
        self.emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_capped_and_counted() {
        let mut log = StderrLog::new("[t]");
        log.take(b"abc");
        assert_eq!(log.line, b"abc");
        log.take(b"\ndef\r\n");
        assert!(log.line.is_empty());
        log.take(&vec![b'x'; MAX_LINE + 100]);
        assert_eq!(log.line.len(), MAX_LINE);
        log.take(&vec![b'\n'; MAX_TOTAL]);
        assert!(log.truncated);
        assert_eq!(log.total, MAX_TOTAL);
    }
}
