//! Counts its requests in a global: a fresh instance always says 1.
use std::sync::atomic::{AtomicU32, Ordering};

static SEEN: AtomicU32 = AtomicU32::new(0);

fn main() {
    let n = SEEN.fetch_add(1, Ordering::SeqCst) + 1;
    test_guests::respond(&format!("requests seen by this instance: {n}\n"));
}
