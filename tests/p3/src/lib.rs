//! A wasi:http p3 handler for the end-to-end tests. What it does is chosen
//! by the last segment of the request's path:
//!
//! - `hello`: a short text;
//! - `info`: the request as the guest sees it (method, path, scheme,
//!   authority, header fields);
//! - `count`: how many requests this instance has served, and its id (the
//!   tests tell reuse from it);
//! - `sleep?MS`: answers after MS milliseconds of waiting (not spinning),
//!   with its instance's id;
//! - `echo`: answers at once, then streams the request body back as it
//!   arrives;
//! - `spin`: loops without end;
//! - `never`: waits on a future nobody will resolve;
//! - `endless`: streams a body without end;
//! - `spawn`: spawns tasks without end, each waiting an hour;
//! - `trap`: panics, which traps the instance;
//! - `fetch?http://HOST:PORT/PATH`: sends a GET there and says how it went
//!   (`status=N`, or `error=CODE`).

use std::cell::Cell;

use wasip3::clocks::monotonic_clock;
use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

wasip3::http::service::export!(Handler);

struct Handler;

thread_local! {
    static SERVED: Cell<u64> = const { Cell::new(0) };
    static ID: Cell<u64> = const { Cell::new(0) };
}

impl wasip3::exports::http::handler::Guest for Handler {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let served = SERVED.with(|s| {
            s.set(s.get() + 1);
            s.get()
        });
        let path = request.get_path_with_query().unwrap_or_default();
        let (route, query) = path.split_once('?').unwrap_or((&path, ""));
        let last = route.rsplit('/').next().unwrap_or("");
        match last {
            "hello" => Ok(text("Hello from a wasi:http p3 component\n")),
            "info" => Ok(text(&info(&request, &path))),
            "count" => Ok(text(&format!("served={served}\ninstance={:x}\n", id()))),
            "sleep" => {
                let ms: u64 = query.parse().unwrap_or(500);
                monotonic_clock::wait_for(ms * 1_000_000).await;
                Ok(text(&format!("slept {ms} ms\ninstance={:x}\n", id())))
            }
            "echo" => Ok(echo(request)),
            "spin" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "never" => {
                let (never, waits) = wit_future::new(|| Ok::<(), ErrorCode>(()));
                std::mem::forget(never);
                let _ = waits.await;
                Ok(text("unreachable\n"))
            }
            "endless" => Ok(endless()),
            "spawn" => loop {
                for _ in 0..1000 {
                    wit_bindgen::spawn(async {
                        monotonic_clock::wait_for(3_600_000_000_000).await;
                    });
                }
                monotonic_clock::wait_for(0).await;
            },
            "trap" => panic!("asked to trap"),
            "fetch" => Ok(text(&fetch(query).await)),
            _ => Ok(status(404, "no such test route\n")),
        }
    }
}

/// This instance's id, drawn at its first use.
fn id() -> u64 {
    ID.with(|id| {
        if id.get() == 0 {
            id.set(wasip3::random::random::get_random_u64() | 1);
        }
        id.get()
    })
}

fn info(request: &Request, path: &str) -> String {
    let method = match request.get_method() {
        wasip3::http::types::Method::Get => "GET".to_string(),
        wasip3::http::types::Method::Post => "POST".to_string(),
        wasip3::http::types::Method::Put => "PUT".to_string(),
        wasip3::http::types::Method::Other(other) => other,
        other => format!("{other:?}"),
    };
    let scheme = match request.get_scheme() {
        Some(wasip3::http::types::Scheme::Http) => "http".to_string(),
        Some(wasip3::http::types::Scheme::Https) => "https".to_string(),
        Some(wasip3::http::types::Scheme::Other(other)) => other,
        None => "-".to_string(),
    };
    let authority = request.get_authority().unwrap_or_else(|| "-".into());
    let mut out = format!("method={method}\npath={path}\nscheme={scheme}\nauthority={authority}\n");
    for (name, value) in request.get_headers().copy_all() {
        out.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(&value)));
    }
    out
}

fn text(body: &str) -> Response {
    status(200, body)
}

fn status(code: u16, body: &str) -> Response {
    let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
        .expect("valid fields");
    let (mut writer, reader) = wit_stream::new();
    let (trailers_writer, trailers) = wit_future::new(|| Ok(None));
    drop(trailers_writer);
    let (response, _sent) = Response::new(headers, Some(reader), trailers);
    response.set_status_code(code).expect("a valid status");
    let body = body.as_bytes().to_vec();
    wit_bindgen::spawn(async move {
        writer.write_all(body).await;
    });
    response
}

/// A GET to `url` (`http://host:port/path`), and how it went.
async fn fetch(url: &str) -> String {
    let Some(rest) = url.strip_prefix("http://") else {
        return "error=not an http:// URL".into();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (trailers_writer, trailers) = wit_future::new(|| Ok(None));
    drop(trailers_writer);
    let (request, _sent) = Request::new(Fields::new(), None, trailers, None);
    let path = if path.is_empty() { "/" } else { path };
    if request.set_scheme(Some(&wasip3::http::types::Scheme::Http)).is_err()
        || request.set_authority(Some(authority)).is_err()
        || request.set_path_with_query(Some(path)).is_err()
    {
        return "error=bad URL".into();
    }
    match wasip3::http::client::send(request).await {
        Ok(response) => format!("status={}\n", response.get_status_code()),
        Err(code) => format!("error={code:?}\n"),
    }
}

/// Answers before the request body is read, then streams it back.
fn echo(request: Request) -> Response {
    let (consumed_writer, consumed) = wit_future::new(|| Ok(()));
    let (mut body, _trailers) = Request::consume_body(request, consumed);
    let (mut writer, reader) = wit_stream::new();
    let (trailers_writer, trailers) = wit_future::new(|| Ok(None));
    drop(trailers_writer);
    let headers = Fields::from_list(&[("content-type".into(), b"application/octet-stream".to_vec())])
        .expect("valid fields");
    let (response, _sent) = Response::new(headers, Some(reader), trailers);
    wit_bindgen::spawn(async move {
        loop {
            let (status, chunk) = body.read(Vec::with_capacity(16 << 10)).await;
            if chunk.is_empty() && !matches!(status, wit_bindgen::StreamResult::Complete(_)) {
                break;
            }
            if !writer.write_all(chunk).await.is_empty() {
                break;
            }
        }
        drop(consumed_writer);
    });
    response
}

/// A body that never ends.
fn endless() -> Response {
    let (mut writer, reader) = wit_stream::new();
    let (trailers_writer, trailers) = wit_future::new(|| Ok(None));
    drop(trailers_writer);
    let (response, _sent) = Response::new(Fields::new(), Some(reader), trailers);
    wit_bindgen::spawn(async move {
        let chunk = vec![b'x'; 64 << 10];
        loop {
            if !writer.write_all(chunk.clone()).await.is_empty() {
                return;
            }
        }
    });
    response
}
