//! The sidecar parser: any text gives a manifest or one error line,
//! never a panic; a manifest's routes are absolute and its limits within
//! their ranges.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wasmhttpd::plugin::manifest::{Manifest, RoutePattern};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::parse(text, "fuzz", Path::new("/nonexistent-fuzz-base")) {
        Ok(manifest) => {
            assert!(!manifest.routes.is_empty());
            for route in &manifest.routes {
                let (RoutePattern::Exact(path) | RoutePattern::Prefix(path)) = route;
                assert!(path.starts_with('/'), "{path}");
            }
            if let Some(memory) = manifest.limits.memory_mib {
                assert!((1..=65_536).contains(&memory));
            }
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
