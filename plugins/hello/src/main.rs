//! The smallest plugin: answers GET with a greeting.
use std::io::Write;

use wasmhttpd_guest::{Handler, Request};

#[derive(Default)]
struct Hello;

#[wasmhttpd_guest::plugin]
impl Handler for Hello {
    fn do_GET(&mut self, request: &mut Request) -> std::io::Result<()> {
        request.send_response(200);
        request.send_header("Content-Type", "text/plain; charset=utf-8")?;
        request.end_headers()?;
        writeln!(request.wfile, "Hello from a WebAssembly plugin!")?;
        writeln!(request.wfile, "You asked for {}", request.path)
    }
}
