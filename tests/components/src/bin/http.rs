//! A wasi:http handler that does what the last segment of its path says:
//! - `report`: method, path, scheme, authority, headers, body length;
//! - `echo`: sets its response first, then copies the request body into
//!   it as it arrives (both bodies streaming at once);
//! - `big?N`: N bytes of `x`, streamed;
//! - `status?N`: status N with an `X-Handler` field and a body;
//! - `env`: its environment in the body; lines to stdout and stderr;
//! - `sleep?MS`: answers after MS milliseconds;
//! - `fetch?URL`: GETs URL and answers with what came back, or the error;
//! - `panic`, `late-panic` (after 256 KiB of body), `spin`, `hog`, `none`
//!   (no response), `error` (an error code instead of a response);
//! - attacks through host calls, each answering with how far it got if the
//!   host stops it without a trap: `fields-flood?N` (header objects of N
//!   bytes each, kept, without end), `handle-flood` (empty header objects
//!   without end), `body-flood` (responses whose bodies each hold a full
//!   write, without end), `outbound-flood?URL` (64 requests to URL at once:
//!   how many the host refused).
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use wasip2::io::streams::StreamError;

struct Handler;

wasip2::http::proxy::export!(Handler);

fn main() {}

fn method_name(method: &Method) -> String {
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
        Method::Other(other) => other.clone(),
    }
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut body = Vec::new();
    let Ok(incoming) = request.consume() else {
        return body;
    };
    if let Ok(stream) = incoming.stream() {
        while let Ok(chunk) = stream.blocking_read(64 * 1024) {
            body.extend_from_slice(&chunk);
        }
    }
    body
}

/// Sets a response with `status` and `fields`; returns its body.
fn start(out: ResponseOutparam, status: u16, fields: &[(&str, &str)]) -> OutgoingBody {
    let list: Vec<(String, Vec<u8>)> = fields
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
    let response = OutgoingResponse::new(Fields::from_list(&list).expect("fields"));
    response.set_status_code(status).expect("status");
    let body = response.body().expect("body");
    ResponseOutparam::set(out, Ok(response));
    body
}

fn write_all(body: &OutgoingBody, bytes: &[u8]) {
    let stream = body.write().expect("stream");
    for chunk in bytes.chunks(4096) {
        stream.blocking_write_and_flush(chunk).expect("write");
    }
}

fn respond(out: ResponseOutparam, status: u16, text: &str) {
    let body = start(out, status, &[("content-type", "text/plain")]);
    write_all(&body, text.as_bytes());
    OutgoingBody::finish(body, None).expect("finish");
}

/// `http://authority/path` → (authority, path).
fn split_url(url: &str) -> (&str, &str) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    }
}

fn fetch(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("bad url {url}");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request.set_scheme(Some(&scheme)).expect("scheme");
    request.set_authority(Some(authority)).expect("authority");
    request.set_path_with_query(Some(path)).expect("path");
    let error = |code: ErrorCode| format!("error: {code:?}");
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return error(code),
    };
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return error(code),
        other => return format!("error: {other:?}"),
    };
    let mut text = format!("status {}\n", response.status());
    let body = response.consume().expect("consume");
    let stream = body.stream().expect("stream");
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Err(StreamError::Closed) => break,
            Err(e) => return format!("{text}\nbody error: {e:?}"),
        }
    }
    text
}

impl wasip2::exports::http::incoming_handler::Guest for Handler {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mode = path.rsplit('/').next().unwrap_or("");
        match mode {
            "report" => {
                let body = read_body(&request);
                let mut headers: Vec<String> = request
                    .headers()
                    .entries()
                    .iter()
                    .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
                    .collect();
                headers.sort();
                let scheme = match request.scheme() {
                    Some(Scheme::Http) => "http".to_string(),
                    Some(Scheme::Https) => "https".to_string(),
                    Some(Scheme::Other(s)) => s,
                    None => "none".to_string(),
                };
                let text = format!(
                    "method={}\npath={target}\nscheme={scheme}\nauthority={}\n{}\nbody={}\n",
                    method_name(&request.method()),
                    request.authority().unwrap_or_default(),
                    headers.join("\n"),
                    body.len()
                );
                respond(out, 200, &text);
            }
            "echo" => {
                let incoming = request.consume().expect("consume");
                let input = incoming.stream().expect("stream");
                let body = start(out, 200, &[("content-type", "application/octet-stream")]);
                {
                    let output = body.write().expect("stream");
                    loop {
                        match input.blocking_read(64 * 1024) {
                            Ok(chunk) => {
                                for piece in chunk.chunks(4096) {
                                    output.blocking_write_and_flush(piece).expect("write");
                                }
                            }
                            Err(StreamError::Closed) => break,
                            Err(e) => panic!("request body failed: {e:?}"),
                        }
                    }
                }
                OutgoingBody::finish(body, None).expect("finish");
            }
            "big" => {
                let n: usize = query.parse().unwrap_or(0);
                let body = start(out, 200, &[("content-type", "application/octet-stream")]);
                {
                    let stream = body.write().expect("stream");
                    let chunk = [b'x'; 4096];
                    let mut left = n;
                    while left > 0 {
                        let take = left.min(chunk.len());
                        stream.blocking_write_and_flush(&chunk[..take]).expect("write");
                        left -= take;
                    }
                }
                OutgoingBody::finish(body, None).expect("finish");
            }
            "status" => {
                let status = query.parse().unwrap_or(200);
                let body = start(
                    out,
                    status,
                    &[
                        ("content-type", "text/plain"),
                        ("x-handler", "test"),
                        ("content-length", "9"),
                    ],
                );
                write_all(&body, b"status ok");
                OutgoingBody::finish(body, None).expect("finish");
            }
            "env" => {
                println!("a line on stdout");
                eprintln!("a line on stderr");
                let mut vars: Vec<String> =
                    std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                vars.sort();
                respond(out, 200, &format!("{}\n", vars.join("\n")));
            }
            "fetch" => respond(out, 200, &fetch(query)),
            "panic" => panic!("boom"),
            "late-panic" => {
                let body = start(out, 200, &[("content-type", "text/plain")]);
                write_all(&body, &vec![b'a'; 256 * 1024]);
                panic!("failed after the response started");
            }
            "spin" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            "fields-flood" => {
                let size: usize = query.parse().unwrap_or(120 << 10);
                let entry = vec![("x-flood".to_string(), vec![b'a'; size])];
                let mut kept = Vec::new();
                let why = loop {
                    match Fields::from_list(&entry) {
                        Ok(fields) => kept.push(fields),
                        Err(e) => break format!("{e:?}"),
                    }
                };
                let made = kept.len();
                drop(kept);
                respond(out, 200, &format!("made {made} header objects, then {why}\n"));
            }
            "handle-flood" => {
                let mut kept = Vec::new();
                loop {
                    kept.push(Fields::new());
                }
            }
            "body-flood" => {
                let chunk = vec![b'b'; 1 << 20];
                let mut kept = Vec::new();
                loop {
                    let response = OutgoingResponse::new(Fields::new());
                    let body = response.body().expect("body");
                    let stream = body.write().expect("stream");
                    // As much as the host will take in one write.
                    let permitted = stream.check_write().unwrap_or(0) as usize;
                    let _ = stream.write(&chunk[..permitted.min(chunk.len())]);
                    kept.push((response, body, stream));
                }
            }
            "outbound-flood" => {
                let mut refused = 0;
                let mut pending = Vec::new();
                for _ in 0..64 {
                    let (authority, path) = split_url(query);
                    let request = OutgoingRequest::new(Fields::new());
                    request.set_scheme(Some(&Scheme::Http)).expect("scheme");
                    request.set_authority(Some(authority)).expect("authority");
                    request.set_path_with_query(Some(path)).expect("path");
                    match outgoing_handler::handle(request, None) {
                        Ok(future) => pending.push(future),
                        Err(ErrorCode::ConnectionLimitReached) => refused += 1,
                        Err(other) => return respond(out, 500, &format!("{other:?}")),
                    }
                }
                // A refused request's future resolves at once; the others
                // wait on an upstream that never answers.
                for future in &pending {
                    let ready = future.subscribe();
                    let timer = wasip2::clocks::monotonic_clock::subscribe_duration(50_000_000);
                    wasip2::io::poll::poll(&[&ready, &timer]);
                    drop(ready);
                    if let Some(Ok(Err(ErrorCode::ConnectionLimitReached))) = future.get() {
                        refused += 1;
                    }
                }
                let waited = pending.len();
                drop(pending);
                respond(out, 200, &format!("refused {refused} of 64 ({waited} pending)\n"));
            }
            "sleep" => {
                let ms: u64 = query.parse().unwrap_or(1000);
                wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                respond(out, 200, "slept\n");
            }
            "none" => drop(out),
            "error" => ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some("on purpose".into())))),
            _ => respond(out, 404, &format!("no mode {mode:?}\n")),
        }
    }
}
