//! What the test guests share: reading the request, writing a response.

use std::io::{Read, Write};

/// The request body, from stdin.
pub fn body() -> Vec<u8> {
    let mut body = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut body);
    body
}

/// Writes a `text/plain` response.
pub fn respond(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "Content-Type: text/plain\n\n{text}");
    let _ = out.flush();
}
