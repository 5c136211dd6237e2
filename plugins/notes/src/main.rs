//! Notes kept in a file: GET lists them, POST appends one. The file lives
//! in /data, a read-write directory granted by notes.toml; without that
//! grant the plugin can open nothing.
use std::io::Write;

use wasmhttpd_guest::form::parse_urlencoded;
use wasmhttpd_guest::{Handler, Request};

const NOTES: &str = "/data/notes.txt";

#[derive(Default)]
struct Notes;

#[wasmhttpd_guest::plugin]
impl Handler for Notes {
    fn do_GET(&mut self, r: &mut Request) -> std::io::Result<()> {
        let notes = match std::fs::read_to_string(NOTES) {
            Ok(notes) => notes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return r.send_error(500, Some(&format!("cannot read the notes: {e}"))),
        };
        let items: String = notes.lines().map(|note| format!("<li>{}</li>\n", escape(note))).collect();
        let action = r.script_name().to_string();
        r.send_response(200);
        r.send_header("Content-Type", "text/html; charset=utf-8")?;
        r.end_headers()?;
        write!(
            r.wfile,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Notes</title></head><body>\n\
             <h1>Notes</h1>\n<ul>\n{items}</ul>\n\
             <form method=\"post\" action=\"{action}\"><input name=\"note\" autofocus>\
             <button>Add</button></form>\n</body></html>\n"
        )
    }

    fn do_POST(&mut self, r: &mut Request) -> std::io::Result<()> {
        let body = r.read_body(64 * 1024)?;
        let note = parse_urlencoded(&String::from_utf8_lossy(&body))
            .into_iter()
            .find(|(name, _)| name == "note")
            .map(|(_, value)| value.replace(['\r', '\n'], " "))
            .unwrap_or_default();
        if note.trim().is_empty() {
            return r.send_error(400, Some("An empty note"));
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(NOTES)?;
        writeln!(file, "{}", note.trim())?;
        // Post/Redirect/Get: back to the list.
        let list = r.script_name().to_string();
        r.send_response(303);
        r.send_header("Location", &list)?;
        r.end_headers()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
