//! What the server and the client said, like the GetHandler example in
//! Python's http.server documentation (PyMOTW's classic).
use std::io::Write;

use wasmhttpd_guest::{Handler, Request};

#[derive(Default)]
struct Headers;

#[wasmhttpd_guest::plugin]
impl Handler for Headers {
    fn do_GET(&mut self, r: &mut Request) -> std::io::Result<()> {
        let mut text = String::new();
        text.push_str("CLIENT VALUES:\n");
        text.push_str(&format!("client_address={:?}\n", r.client_address));
        text.push_str(&format!("command={}\n", r.command));
        text.push_str(&format!("path={}\n", r.path));
        text.push_str(&format!("real path={}{}\n", r.script_name(), r.path_info()));
        text.push_str(&format!("query={}\n", r.query()));
        text.push_str(&format!("request_version={}\n", r.request_version));
        text.push_str("\nSERVER VALUES:\n");
        for name in ["SERVER_SOFTWARE", "SERVER_NAME", "SERVER_PORT", "GATEWAY_INTERFACE"] {
            text.push_str(&format!("{name}={}\n", r.variable(name).unwrap_or_default()));
        }
        text.push_str("\nHEADERS RECEIVED:\n");
        for (name, value) in r.headers.iter() {
            text.push_str(&format!("{name}={value}\n"));
        }
        r.send_response(200);
        r.send_header("Content-Type", "text/plain; charset=utf-8")?;
        r.end_headers()?;
        r.wfile.write_all(text.as_bytes())
    }
}
