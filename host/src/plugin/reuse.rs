//! Instances kept between requests, for a plugin whose sidecar asks for
//! reuse (`[reuse]`): each plugin version has its own pool, so state never
//! passes from one plugin to another.
//!
//! An instance is parked only after a request it served ended cleanly (the
//! executor decides that), and is taken by one request at a time, the most
//! recently parked first (its memory is the warmest). A parked instance
//! holds one of the runtime's idle slots, so parked instances never take
//! the slots running ones need; when none is free the instance is dropped
//! instead. One sweeper per pool drops instances left unused past their
//! idle time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::manifest::Reuse;

/// Parked instances of one plugin version.
#[derive(Debug)]
pub struct Pool<I> {
    parked: Mutex<Vec<Parked<I>>>,
    sweeping: AtomicBool,
}

#[derive(Debug)]
struct Parked<I> {
    instance: I,
    since: Instant,
    slot: OwnedSemaphorePermit,
}

impl<I> Default for Pool<I> {
    fn default() -> Pool<I> {
        Pool {
            parked: Mutex::new(Vec::new()),
            sweeping: AtomicBool::new(false),
        }
    }
}

impl<I: Send + 'static> Pool<I> {
    /// The most recently parked instance still within its idle time, with
    /// the idle slot it holds (to be let go once it has a running one).
    pub fn take(&self, reuse: &Reuse) -> Option<(I, OwnedSemaphorePermit)> {
        let idle = Duration::from_secs(reuse.idle_secs);
        let (found, expired) = {
            let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
            let found = parked.pop();
            match found {
                Some(p) if p.since.elapsed() <= idle => (Some((p.instance, p.slot)), Vec::new()),
                // The newest has expired: so have all the others.
                Some(p) => {
                    let mut expired = std::mem::take(&mut *parked);
                    expired.push(p);
                    (None, expired)
                }
                None => (None, Vec::new()),
            }
        };
        drop(expired);
        found
    }

    /// Parks `instance` if an idle slot is free; otherwise it is dropped.
    pub fn park(self: &Arc<Self>, instance: I, reuse: &Reuse, slots: &Arc<Semaphore>) {
        let Ok(slot) = Arc::clone(slots).try_acquire_owned() else {
            return;
        };
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        parked.push(Parked {
            instance,
            since: Instant::now(),
            slot,
        });
        if !self.sweeping.swap(true, Ordering::AcqRel) {
            let idle = Duration::from_secs(reuse.idle_secs);
            tokio::spawn(sweep(Arc::downgrade(self), idle));
        }
    }

    /// How many instances are parked.
    pub fn parked(&self) -> usize {
        self.parked.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Drops the instances unused for longer than `idle`; whether any are
    /// left (if none, sweeping stops, under the lock `park` takes).
    fn sweep_once(&self, idle: Duration) -> bool {
        let (expired, left) = {
            let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
            // Oldest first: the expired are a prefix.
            let fresh = parked
                .iter()
                .position(|p| p.since.elapsed() <= idle)
                .unwrap_or(parked.len());
            let expired: Vec<Parked<I>> = parked.drain(..fresh).collect();
            if parked.is_empty() {
                self.sweeping.store(false, Ordering::Release);
            }
            (expired, !parked.is_empty())
        };
        // Instances are dropped outside the lock: that takes a while.
        drop(expired);
        left
    }
}

/// Sweeps `pool` every `idle` until it is empty or gone.
async fn sweep<I: Send + 'static>(pool: Weak<Pool<I>>, idle: Duration) {
    loop {
        tokio::time::sleep(idle / 2 + Duration::from_millis(10)).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        if !pool.sweep_once(idle) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reuse(idle_secs: u64) -> Reuse {
        Reuse {
            requests: 10,
            concurrent: 1,
            idle_secs,
        }
    }

    #[tokio::test]
    async fn the_newest_is_taken_first_and_slots_bound_the_parked() {
        let pool: Arc<Pool<u32>> = Arc::default();
        let slots = Arc::new(Semaphore::new(2));
        for n in 1..=3 {
            pool.park(n, &reuse(60), &slots);
        }
        assert_eq!(pool.parked(), 2, "the third found no idle slot");
        let (two, slot) = pool.take(&reuse(60)).expect("two");
        assert_eq!(two, 2);
        assert_eq!(slots.available_permits(), 0, "taken, it keeps its slot");
        drop(slot);
        assert_eq!(slots.available_permits(), 1);
        assert_eq!(pool.take(&reuse(60)).map(|(n, _)| n), Some(1));
        assert!(pool.take(&reuse(60)).is_none());
    }

    #[tokio::test]
    async fn instances_unused_past_their_idle_time_are_dropped() {
        let pool: Arc<Pool<u32>> = Arc::default();
        let slots = Arc::new(Semaphore::new(4));
        pool.park(1, &reuse(1), &slots);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        pool.park(2, &reuse(1), &slots);
        assert!(pool.sweep_once(Duration::from_secs(1)), "one is left");
        assert_eq!(pool.parked(), 1, "the first went after 1 s");
        assert_eq!(pool.take(&reuse(1)).map(|(n, _)| n), Some(2));
        // The sweeper, left to itself, empties the pool and stops.
        pool.park(3, &reuse(1), &slots);
        let waited = Instant::now();
        while pool.parked() > 0 || pool.sweeping.load(Ordering::Acquire) {
            assert!(waited.elapsed() < Duration::from_secs(10), "not swept");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(slots.available_permits(), 4);
    }
}
