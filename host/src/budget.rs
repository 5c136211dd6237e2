//! Server-wide budgets: what all requests together may hold.
//!
//! Every request has its own limits (a body size, a memory cap), but a
//! crowd multiplies them: 1024 connections × 16 MiB of buffered body, or
//! 256 instances × 128 MiB of guest memory, is more than most machines
//! have. So the server also keeps three totals, fixed at startup:
//! - **guest memory**: each instance reserves its whole memory cap while
//!   it lives (the cap, not what it uses: it may grow to it at any time);
//! - **buffered bodies**: request bodies held in memory for a guest's
//!   stdin, and a wasi:http response held while its upload goes on;
//! - **spool**: request bodies written to `$TMPDIR` for CGI scripts, held
//!   until the script ends.
//!
//! A request that would go past a budget is not queued: it is answered at
//! once with 503 and `Retry-After`, so that the machine never runs out of
//! memory or disk, and what is already running finishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One total, shared by every request.
#[derive(Debug)]
pub struct Budget {
    what: &'static str,
    total: u64,
    used: AtomicU64,
}

impl Budget {
    /// A budget of `total` bytes for `what` (named in messages).
    pub fn new(what: &'static str, total: u64) -> Arc<Budget> {
        Arc::new(Budget {
            what,
            total,
            used: AtomicU64::new(0),
        })
    }

    /// No limit (in-process tests, benchmarks).
    pub fn unlimited(what: &'static str) -> Arc<Budget> {
        Budget::new(what, u64::MAX)
    }

    /// What it is a budget of.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Its total, in bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&after| after <= self.total)
            })
            .is_ok()
    }

    /// A share of nothing yet, to grow as bytes come.
    pub fn empty_share(self: &Arc<Budget>) -> Share {
        Share {
            budget: Arc::clone(self),
            held: 0,
        }
    }

    /// A share of `bytes`, if that much is free.
    pub fn share(self: &Arc<Budget>, bytes: u64) -> Option<Share> {
        self.take(bytes).then(|| Share {
            budget: Arc::clone(self),
            held: bytes,
        })
    }
}

/// Bytes held of a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Share {
    budget: Arc<Budget>,
    held: u64,
}

impl Share {
    /// Holds `bytes` more, if they are free.
    #[must_use]
    pub fn grow(&mut self, bytes: u64) -> bool {
        let taken = self.budget.take(bytes);
        if taken {
            self.held += bytes;
        }
        taken
    }

    /// Bytes held.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// What budget it is a share of.
    pub fn what(&self) -> &'static str {
        self.budget.what
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

/// The three budgets, in bytes.
#[derive(Debug, Clone)]
pub struct Budgets {
    /// Memory caps of the instances alive at once.
    pub guest_memory: Arc<Budget>,
    /// Request bodies and responses held in memory.
    pub bodies: Arc<Budget>,
    /// Request bodies spooled to disk for CGI scripts.
    pub spool: Arc<Budget>,
}

impl Budgets {
    /// Budgets of these many MiB.
    pub fn new(guest_memory_mib: u64, bodies_mib: u64, spool_mib: u64) -> Budgets {
        Budgets {
            guest_memory: Budget::new("guest memory", guest_memory_mib << 20),
            bodies: Budget::new("buffered bodies", bodies_mib << 20),
            spool: Budget::new("spooled bodies", spool_mib << 20),
        }
    }

    /// No limits.
    pub fn unlimited() -> Budgets {
        Budgets {
            guest_memory: Budget::unlimited("guest memory"),
            bodies: Budget::unlimited("buffered bodies"),
            spool: Budget::unlimited("spooled bodies"),
        }
    }
}

/// The machine's memory, MiB (`MemTotal`), if it can be read.
fn memory_mib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib >> 10)
}

/// Half the machine's memory, for guest memory (4 GiB if unknown).
pub fn default_guest_memory_mib() -> u64 {
    memory_mib().map_or(4096, |m| (m / 2).max(256))
}

/// An eighth of the machine's memory, for buffered bodies (1 GiB if
/// unknown).
pub fn default_bodies_mib() -> u64 {
    memory_mib().map_or(1024, |m| (m / 8).max(64))
}

/// Half the space free in the temporary directory now, for spooled bodies
/// (4 GiB if unknown).
pub fn default_spool_mib() -> u64 {
    rustix::fs::statvfs(std::env::temp_dir()).map_or(4096, |fs| {
        let free = fs.f_bavail.saturating_mul(fs.f_frsize);
        (free >> 21).max(64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_given_back_and_never_exceed_the_total() {
        let budget = Budget::new("test", 100);
        let mut a = budget.share(60).expect("60 of 100");
        assert!(budget.share(41).is_none());
        let b = budget.share(40).expect("the last 40");
        assert!(!a.grow(1));
        drop(b);
        assert!(a.grow(40));
        assert_eq!(a.held(), 100);
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 0);
        assert!(budget.share(100).is_some());
        assert!(budget.share(101).is_none());
        assert!(Budget::unlimited("u").share(u64::MAX).is_some());
    }

    #[test]
    fn defaults_are_positive() {
        assert!(default_guest_memory_mib() >= 256);
        assert!(default_bodies_mib() >= 64);
        assert!(default_spool_mib() >= 64);
    }
}
