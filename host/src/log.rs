//! The server's log (stderr): access log lines, plugin and script stderr,
//! and the server's own notes, written by one thread from a bounded queue.
//!
//! Writing to stderr blocks when whatever reads it stalls (a full pipe to a
//! log collector that hangs, a terminal scrolled back with flow control).
//! A worker that wrote its log line itself would stop serving with it, and
//! with it every connection on that worker. So a worker only queues the
//! line: when the queue holds a MiB the line is dropped and counted, and once
//! the log moves again the writer says how many were lost. Lines keep
//! their order, and each is written whole, so lines from concurrent
//! requests never mix.

use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// Bytes of lines held while the log is stalled.
const QUEUE_BYTES: usize = 1 << 20;

struct Log {
    queue: Sender<String>,
    /// Bytes queued and not yet written.
    pending: AtomicUsize,
    /// Lines dropped since the last note about it.
    dropped: AtomicU64,
}

static LOG: OnceLock<Log> = OnceLock::new();

fn log() -> &'static Log {
    LOG.get_or_init(|| {
        let (queue, lines) = channel();
        // Without a thread the lines are written in place, as before.
        let spawned = std::thread::Builder::new()
            .name("log".into())
            .spawn(move || write_lines(lines));
        if spawned.is_err() {
            eprintln!("wasmhttpd: cannot start the log writer; logging directly");
        }
        Log {
            queue,
            pending: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    })
}

fn write_lines(lines: Receiver<String>) {
    let mut stderr = std::io::stderr();
    for line in lines {
        let _ = stderr.write_all(line.as_bytes());
        let log = log();
        log.pending.fetch_sub(line.len(), Ordering::Release);
        let dropped = log.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let note = format!(
                "wasmhttpd: {dropped} log line(s) dropped: the log was not being read fast enough\n"
            );
            let _ = stderr.write_all(note.as_bytes());
        }
    }
}

/// Queues `text` (a newline is added if it has none); never blocks.
pub fn line(text: impl Into<String>) {
    let mut text = text.into();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let log = log();
    let len = text.len();
    let room = log
        .pending
        .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |queued| {
            (queued + len <= QUEUE_BYTES).then_some(queued + len)
        });
    if room.is_err() {
        log.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if let Err(unsent) = log.queue.send(text) {
        log.pending.fetch_sub(len, Ordering::Release);
        let _ = std::io::stderr().write_all(unsent.0.as_bytes());
    }
}

/// How many lines have been dropped and not yet reported.
pub fn dropped() -> u64 {
    log().dropped.load(Ordering::Relaxed)
}

/// Waits, at most `limit`, until every queued line is written (before the
/// process exits).
pub fn flush(limit: Duration) {
    let Some(log) = LOG.get() else {
        return;
    };
    let deadline = Instant::now() + limit;
    while log.pending.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_lines_are_written_and_flush_waits_for_them() {
        for i in 0..100 {
            line(format!("log test line {i}"));
        }
        flush(Duration::from_secs(5));
        assert_eq!(log().pending.load(Ordering::Acquire), 0);
        assert_eq!(dropped(), 0);
    }
}
