//! The `Range` parser: any header value and file length give the whole
//! file, a range within the file, or 416, never a panic or a range past
//! the end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmhttpd::range::{RangeRequest, parse};

fuzz_target!(|data: &[u8]| {
    let (len_bytes, value) = data.split_at(data.len().min(8));
    let mut len = [0u8; 8];
    len[..len_bytes.len()].copy_from_slice(len_bytes);
    // Small lengths are the interesting ones, and the largest.
    let len = match u64::from_le_bytes(len) {
        n if n % 2 == 0 => n % 4096,
        n => n,
    };
    match parse(value, len) {
        RangeRequest::Full => {}
        RangeRequest::Partial { start, end } => {
            assert!(start <= end, "{start}-{end}");
            assert!(end < len, "{start}-{end} of {len}");
        }
        RangeRequest::Unsatisfiable => {}
    }
});
