//! The same handler as a wasi:http component (`wasm32-wasip2`): the
//! incoming request becomes a [`Request`], and what the handler writes —
//! the CGI-style head from `end_headers`, then the body — becomes the
//! outgoing response, streamed as it is written.
//!
//! [`plugin`](crate::plugin) exports `wasi:http/incoming-handler` through
//! [`handle`] when building for `wasm32-wasip2`; nothing here is called by
//! hand. Under wasmhttpd the request carries where the plugin is mounted
//! (`wasmhttpd-script-name`, `wasmhttpd-path-info`, percent-encoded) and
//! who asked (`wasmhttpd-client-addr`), fields the server sets itself;
//! under another wasi:http host the script name is empty, the path info is
//! the whole path and the client is unknown.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

use crate::dispatch::{Handler, serve};
use crate::form::percent_decode;
use crate::request::Request;

/// The most bytes handed to one blocking write (wasi:io's own bound).
const WRITE_CHUNK: usize = 4096;

/// Answers `request` with a new `H`, writing the response to `out`.
pub fn handle<H: Handler + Default>(request: IncomingRequest, out: ResponseOutparam) {
    let vars = cgi_variables(&request);
    let body = IncomingReader::new(&request);
    let response = ResponseWriter::new(out);
    let mut cgi = Request::from_parts(vars, Box::new(body), Box::new(response.clone()), false);
    serve::<H>(&mut cgi);
    drop(cgi);
    response.finish();
}

/// The request as CGI/1.1 meta-variables, as wasmhttpd would set them.
fn cgi_variables(request: &IncomingRequest) -> Vec<(String, String)> {
    let target = request.path_with_query().unwrap_or_else(|| "/".into());
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut vars = vec![
        ("REQUEST_METHOD".to_string(), method_name(request.method())),
        ("REQUEST_URI".to_string(), target.clone()),
        ("QUERY_STRING".to_string(), query.to_string()),
        ("SERVER_PROTOCOL".to_string(), "HTTP/1.1".to_string()),
    ];
    if let Some(authority) = request.authority() {
        let (name, port) = match authority.rsplit_once(':') {
            Some((name, port)) if !port.contains(']') => (name.to_string(), port.to_string()),
            _ => (authority.clone(), "80".to_string()),
        };
        vars.push(("HTTP_HOST".to_string(), authority));
        vars.push(("SERVER_NAME".to_string(), name));
        vars.push(("SERVER_PORT".to_string(), port));
    }
    let mut script_name = String::new();
    let mut path_info = percent_decode(path, false);
    for (name, value) in request.headers().entries() {
        let value = String::from_utf8_lossy(&value).into_owned();
        match name.to_ascii_lowercase().as_str() {
            "wasmhttpd-script-name" => script_name = percent_decode(&value, false),
            "wasmhttpd-path-info" => path_info = percent_decode(&value, false),
            "wasmhttpd-client-addr" => {
                if let Some((host, port)) = value.rsplit_once(':') {
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    vars.push(("REMOTE_ADDR".to_string(), host.to_string()));
                    vars.push(("REMOTE_PORT".to_string(), port.to_string()));
                }
            }
            "content-type" => vars.push(("CONTENT_TYPE".to_string(), value)),
            "content-length" => vars.push(("CONTENT_LENGTH".to_string(), value)),
            other => {
                let variable = format!("HTTP_{}", other.to_ascii_uppercase().replace('-', "_"));
                match vars.iter_mut().find(|(n, _)| *n == variable) {
                    Some((_, joined)) => {
                        joined.push_str(", ");
                        joined.push_str(&value);
                    }
                    None => vars.push((variable, value)),
                }
            }
        }
    }
    vars.push(("SCRIPT_NAME".to_string(), script_name));
    vars.push(("PATH_INFO".to_string(), path_info));
    vars
}

fn method_name(method: Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other,
    }
}

/// The request body, read as the client sends it.
struct IncomingReader {
    // Declared before `body`: a stream is dropped before its body.
    stream: Option<InputStream>,
    _body: Option<IncomingBody>,
    pending: Vec<u8>,
    taken: usize,
}

impl IncomingReader {
    fn new(request: &IncomingRequest) -> IncomingReader {
        let body = request.consume().ok();
        let stream = body.as_ref().and_then(|b| b.stream().ok());
        IncomingReader {
            stream,
            _body: body,
            pending: Vec::new(),
            taken: 0,
        }
    }
}

impl Read for IncomingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.taken == self.pending.len() {
            let Some(stream) = &self.stream else {
                return Ok(0);
            };
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    self.pending = chunk;
                    self.taken = 0;
                }
                Err(StreamError::Closed) => return Ok(0),
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(io::Error::other(e.to_debug_string()));
                }
            }
        }
        let available = &self.pending[self.taken..];
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.taken += n;
        Ok(n)
    }
}

/// The response: the head is gathered until its blank line, then set; the
/// body after it streams out.
#[derive(Clone)]
struct ResponseWriter(Rc<RefCell<Outgoing>>);

enum Outgoing {
    /// The head so far, and where the response goes.
    Head(Vec<u8>, Option<ResponseOutparam>),
    /// Sent: the body and its stream.
    Body(Option<OutputStream>, Option<OutgoingBody>),
    /// Failed or finished.
    Done,
}

impl ResponseWriter {
    fn new(out: ResponseOutparam) -> ResponseWriter {
        ResponseWriter(Rc::new(RefCell::new(Outgoing::Head(Vec::new(), Some(out)))))
    }

    /// Ends the body. A response whose head never ended is not sent: the
    /// server answers for it, as for a CGI script without output.
    fn finish(&self) {
        let state = std::mem::replace(&mut *self.0.borrow_mut(), Outgoing::Done);
        if let Outgoing::Body(stream, Some(body)) = state {
            drop(stream);
            let _ = OutgoingBody::finish(body, None);
        }
    }
}

impl Write for ResponseWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        let rest = match &mut *state {
            Outgoing::Done => return Err(io::Error::other("the response has ended")),
            Outgoing::Body(Some(stream), _) => {
                write_all(stream, buf)?;
                return Ok(buf.len());
            }
            Outgoing::Body(None, _) => return Err(io::Error::other("no response body")),
            Outgoing::Head(head, out) => {
                head.extend_from_slice(buf);
                let Some(end) = head_end(head) else {
                    return Ok(buf.len());
                };
                let rest = head.split_off(end);
                let (status, fields) = parse_head(head)?;
                let Some(out) = out.take() else {
                    return Err(io::Error::other("the response has ended"));
                };
                let response = OutgoingResponse::new(fields);
                response
                    .set_status_code(status)
                    .map_err(|()| io::Error::other(format!("bad status {status}")))?;
                let body = response
                    .body()
                    .map_err(|()| io::Error::other("no response body"))?;
                let stream = body.write().ok();
                ResponseOutparam::set(out, Ok(response));
                *state = Outgoing::Body(stream, Some(body));
                rest
            }
        };
        if let Outgoing::Body(Some(stream), _) = &*state {
            write_all(stream, &rest)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_all(stream: &OutputStream, bytes: &[u8]) -> io::Result<()> {
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, format!("{e:?}")))?;
    }
    Ok(())
}

/// Where the head ends (after its blank line), if it has.
fn head_end(head: &[u8]) -> Option<usize> {
    let lf = head.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `Status: NNN reason` and the fields of a CGI head.
fn parse_head(head: &[u8]) -> io::Result<(u16, Fields)> {
    let text = String::from_utf8_lossy(head);
    let mut status = None;
    let mut location = false;
    let mut fields = Vec::new();
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| io::Error::other(format!("bad header line {line:?}")))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.get(..3).and_then(|c| c.parse().ok());
            status = Some(code.ok_or_else(|| io::Error::other(format!("bad status {value:?}")))?);
            continue;
        }
        location |= name.eq_ignore_ascii_case("location");
        fields.push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
    }
    let status = status.unwrap_or(if location { 302 } else { 200 });
    let fields = Fields::from_list(&fields).map_err(|e| io::Error::other(format!("{e:?}")))?;
    Ok((status, fields))
}
