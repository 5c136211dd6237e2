//! Writes a large, well-formed response: a streamed body.
use std::io::Write;

fn main() {
    let size: usize = std::env::var("QUERY_STRING").ok().and_then(|q| q.parse().ok()).unwrap_or(1 << 20);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b"Content-Type: application/octet-stream\nX-Size: yes\n\n");
    let line: Vec<u8> = (0..64u8).map(|i| b'a' + i % 26).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(line.len());
        if out.write_all(&line[..n]).is_err() {
            return;
        }
        left -= n;
    }
}
