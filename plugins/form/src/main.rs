//! A form and what was posted with it — text fields and uploaded files,
//! urlencoded or multipart — like the FieldStorage example in Python's
//! documentation.
use std::io::Write;

use wasmhttpd_guest::form;
use wasmhttpd_guest::{Handler, Request};

/// The most body this plugin reads.
const LIMIT: u64 = 8 << 20;

#[derive(Default)]
struct Form;

#[wasmhttpd_guest::plugin]
impl Handler for Form {
    fn do_GET(&mut self, r: &mut Request) -> std::io::Result<()> {
        let action = r.script_name().to_string();
        r.send_response(200);
        r.send_header("Content-Type", "text/html; charset=utf-8")?;
        r.end_headers()?;
        write!(
            r.wfile,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Form</title></head><body>\n\
             <h1>A form, answered by a plugin</h1>\n\
             <form method=\"post\" action=\"{action}\">\n\
             <p><label>Name <input name=\"name\" value=\"Ada\"></label>\n\
             <button>Send (urlencoded)</button></p></form>\n\
             <form method=\"post\" action=\"{action}\" enctype=\"multipart/form-data\">\n\
             <p><label>Title <input name=\"title\" value=\"notes\"></label>\n\
             <label>File <input type=\"file\" name=\"upload\"></label>\n\
             <button>Upload (multipart)</button></p></form>\n</body></html>\n"
        )
    }

    fn do_POST(&mut self, r: &mut Request) -> std::io::Result<()> {
        let content_type = r.headers.get("Content-Type").unwrap_or("").to_string();
        let body = match r.read_body(LIMIT) {
            Ok(body) => body,
            Err(_) => return r.send_error(413, Some("Form too large")),
        };
        let fields = match form::parse(&content_type, &body) {
            Ok(fields) => fields,
            Err(error) => return r.send_error(400, Some(&error.to_string())),
        };
        let mut text = format!(
            "Client: {}\nUser-agent: {}\nPath: {}\nForm data:\n",
            r.client_address.0,
            r.headers.get("User-Agent").unwrap_or("-"),
            r.path
        );
        for field in &fields {
            match &field.filename {
                Some(filename) => text.push_str(&format!(
                    "\tUploaded {} as {:?} ({} bytes)\n",
                    field.name,
                    filename,
                    field.value.len()
                )),
                None => text.push_str(&format!("\t{}={}\n", field.name, String::from_utf8_lossy(&field.value))),
            }
        }
        r.send_response(200);
        r.send_header("Content-Type", "text/plain; charset=utf-8")?;
        r.end_headers()?;
        r.wfile.write_all(text.as_bytes())
    }
}
