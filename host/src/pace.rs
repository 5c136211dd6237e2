//! A minimum transfer rate for request bodies and responses, so that a
//! client cannot hold a connection (and the script or plugin behind it) by
//! trickling a body or by reading a response a byte a minute.
//!
//! A per-read or per-write timeout alone does not do it: one byte every few
//! seconds is always "progress". An average over the whole transfer does
//! not either: the first few megabytes a socket buffer takes at once would
//! buy hours of credit. So the rate is enforced window by window, as
//! Apache's `mod_reqtimeout` (`body=20,MinRate=500`) sets the scale: every
//! `rate × window` bytes (10,000 by default) must move within `window` of
//! waiting (20 s by default). Only time spent blocked on the client counts,
//! so a backend that takes its time reading a body, or producing a
//! response, is never held against the client. Each single wait is also
//! bounded by the I/O timeout, as before.

use std::io;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, timeout};

/// The floor, fixed at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// Bytes per second; 0 turns the floor off.
    pub bytes_per_sec: u64,
    /// The window over which it is measured.
    pub window: Duration,
}

impl MinRate {
    /// No floor: only the I/O timeout bounds each wait.
    pub const OFF: MinRate = MinRate {
        bytes_per_sec: 0,
        window: Duration::ZERO,
    };
}

/// One transfer's progress against the floor.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Bytes due per window (0: no floor).
    quota: u64,
    window: Duration,
    io_timeout: Duration,
    /// Bytes moved in this window.
    moved: u64,
    /// Time spent waiting in this window.
    waited: Duration,
}

/// Why a transfer was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stalled {
    /// One wait outlasted the I/O timeout.
    #[error("no progress within the I/O timeout")]
    Timeout,
    /// The transfer fell below the minimum rate.
    #[error("slower than the minimum transfer rate")]
    TooSlow,
}

impl From<Stalled> for io::Error {
    fn from(stalled: Stalled) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, stalled)
    }
}

impl Pace {
    /// A transfer under `rate`, each wait at most `io_timeout`.
    pub fn new(rate: MinRate, io_timeout: Duration) -> Pace {
        Pace {
            quota: rate
                .bytes_per_sec
                .saturating_mul(rate.window.as_secs().max(1)),
            window: rate.window,
            io_timeout,
            moved: 0,
            waited: Duration::ZERO,
        }
    }

    /// How long the next wait may last, and what ends it when it does.
    pub fn allowance(&self) -> (Duration, Stalled) {
        if self.quota == 0 {
            return (self.io_timeout, Stalled::Timeout);
        }
        let left = self.window.saturating_sub(self.waited);
        if left < self.io_timeout {
            (left, Stalled::TooSlow)
        } else {
            (self.io_timeout, Stalled::Timeout)
        }
    }

    /// Counts `moved` bytes after `waited` of waiting.
    pub fn record(&mut self, waited: Duration, moved: u64) {
        self.waited += waited;
        self.moved += moved;
        if self.moved >= self.quota {
            self.moved = 0;
            self.waited = Duration::ZERO;
        }
    }

    /// Runs one read or write (`io` yields the bytes it moved) within what
    /// the floor allows. A ready operation always completes: only a wait
    /// can run out.
    pub async fn io<F>(&mut self, io: F) -> Result<io::Result<usize>, Stalled>
    where
        F: Future<Output = io::Result<usize>>,
    {
        let result = self.wait(io).await?;
        self.moved(result.as_ref().map_or(0, |n| *n as u64));
        Ok(result)
    }

    /// Waits for `ready` (a readiness future) within what the floor
    /// allows, counting the wait; the bytes moved after it are counted
    /// with [`Pace::moved`].
    pub async fn wait<F, T>(&mut self, ready: F) -> Result<T, Stalled>
    where
        F: Future<Output = T>,
    {
        let mut ready = std::pin::pin!(ready);
        // The common case, ready at once, costs neither a clock reading
        // nor a timer.
        let first = std::future::poll_fn(|cx| Poll::Ready(ready.as_mut().poll(cx))).await;
        if let Poll::Ready(result) = first {
            return Ok(result);
        }
        let (allowed, stalled) = self.allowance();
        let started = Instant::now();
        let result = timeout(allowed, ready).await.map_err(|_| stalled)?;
        self.record(started.elapsed(), 0);
        Ok(result)
    }

    /// Counts bytes moved without a wait.
    pub fn moved(&mut self, moved: u64) {
        self.record(Duration::ZERO, moved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: MinRate = MinRate {
        bytes_per_sec: 500,
        window: Duration::from_secs(20),
    };

    #[test]
    fn each_quota_must_move_within_one_window_of_waiting() {
        let mut pace = Pace::new(RATE, Duration::from_secs(60));
        assert_eq!(
            pace.allowance(),
            (Duration::from_secs(20), Stalled::TooSlow)
        );
        pace.record(Duration::from_secs(15), 9_999);
        assert_eq!(pace.allowance(), (Duration::from_secs(5), Stalled::TooSlow));
        // The quota met, the next window starts whole: no credit carried.
        pace.record(Duration::from_secs(1), 1);
        assert_eq!(
            pace.allowance(),
            (Duration::from_secs(20), Stalled::TooSlow)
        );
        pace.record(Duration::from_secs(20), 0);
        assert_eq!(pace.allowance(), (Duration::ZERO, Stalled::TooSlow));
    }

    #[test]
    fn a_burst_buys_no_more_than_its_window() {
        let mut pace = Pace::new(RATE, Duration::from_secs(60));
        pace.record(Duration::ZERO, 4 << 20);
        pace.record(Duration::from_secs(19), 10);
        assert_eq!(pace.allowance(), (Duration::from_secs(1), Stalled::TooSlow));
    }

    #[test]
    fn the_io_timeout_bounds_each_wait_and_off_is_off() {
        let pace = Pace::new(RATE, Duration::from_secs(5));
        assert_eq!(pace.allowance(), (Duration::from_secs(5), Stalled::Timeout));
        let mut off = Pace::new(MinRate::OFF, Duration::from_secs(5));
        off.record(Duration::from_secs(3600), 0);
        assert_eq!(off.allowance(), (Duration::from_secs(5), Stalled::Timeout));
    }

    #[tokio::test]
    async fn a_ready_operation_completes_even_with_no_time_left() {
        let mut pace = Pace::new(RATE, Duration::from_secs(60));
        pace.record(Duration::from_secs(20), 0);
        assert_eq!(pace.io(async { Ok(3) }).await.map(|r| r.ok()), Ok(Some(3)));
        let never = std::future::pending::<io::Result<usize>>();
        assert_eq!(pace.io(never).await.err(), Some(Stalled::TooSlow));
    }
}
