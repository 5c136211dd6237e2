//! The request a wasi:http guest (0.2 or 0.3) receives: method, the path
//! and query as the client sent them, `http` scheme (`https` over TLS), the
//! `Host` header (or the address the client connected to) as authority,
//! the header fields except the connection's own (`Connection`,
//! `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`), and the body.
//! Fields that the server sets (a client's own are dropped) say what
//! wasi:http cannot:
//! - `wasmhttpd-script-name` and `wasmhttpd-path-info`: the route and the
//!   rest of the path, decoded, then percent-encoded whole (CGI's
//!   `SCRIPT_NAME` and `PATH_INFO`);
//! - `wasmhttpd-client-addr` and `wasmhttpd-server-addr`: the client's
//!   `ip:port`, and the one it connected to;
//! - `wasmhttpd-request-line`: the request line as sent (the version is
//!   nowhere else); for HTTP/2, whose semantics are HTTP/1.1's, the line
//!   made from its parts says `HTTP/1.1`;
//! - `wasmhttpd-field-names`: the names of the fields passed on, in the
//!   client's order and case, comma-separated (wasi:http lower-cases them).
//!
//! These let Python's http.server run inside a guest exactly as it runs
//! behind a socket (see `pybuild`).

use bytes::Bytes;

use super::wagi::Invocation;
use crate::error::HttpError;
use crate::listing::percent_encode;
use crate::request::Request;

/// The `http::Request` the guest receives.
pub fn incoming_request<B>(
    request: &Request,
    run: &Invocation<'_>,
    body: B,
) -> Result<http::Request<B>, HttpError> {
    let authority = request
        .authority()
        .and_then(|host| http::uri::Authority::try_from(host).ok())
        .map_or_else(|| request.local.to_string(), |a| a.to_string());
    let mut path_and_query = request.path().to_vec();
    if let Some(query) = request.query() {
        path_and_query.push(b'?');
        path_and_query.extend_from_slice(query);
    }
    let uri = http::Uri::builder()
        .scheme(if request.secure { "https" } else { "http" })
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| HttpError::BadRequest("Bad request path".into()))?;
    let mut headers = request.headers.clone();
    for hop in HOP_BY_HOP {
        headers.remove(hop);
    }
    for name in SERVER_FIELDS {
        headers.remove(name);
    }
    let mut add = |name: &'static str, value: String| {
        if let Ok(value) = http::HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    };
    add(SCRIPT_NAME, percent_encode(run.script_name.as_bytes()));
    add(PATH_INFO, percent_encode(run.path_info.as_bytes()));
    let canonical = |addr: std::net::SocketAddr| {
        std::net::SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
    };
    add(CLIENT_ADDR, canonical(request.peer));
    add(SERVER_ADDR, canonical(request.local));
    let (line, names) = as_sent(request);
    for (name, value) in [(REQUEST_LINE, line), (FIELD_NAMES, names)] {
        if let Ok(value) = http::HeaderValue::from_maybe_shared(value) {
            headers.insert(name, value);
        }
    }
    let mut incoming = http::Request::new(body);
    *incoming.method_mut() = request.method.clone();
    *incoming.uri_mut() = uri;
    *incoming.headers_mut() = headers;
    Ok(incoming)
}

/// The request line as sent, and the names of the fields the guest gets in
/// the client's order and case. A request that did not arrive as HTTP/1
/// text gets a line made from its parts, and no names.
fn as_sent(request: &Request) -> (Bytes, Bytes) {
    let mut lines = request.head.split(|&b| b == b'\n');
    let Some(first) = lines.next().filter(|line| !line.is_empty()) else {
        // HTTP/2's semantics are HTTP/1.1's; a handler written for HTTP/1
        // (Python's refuses any version from 2.0 on with 505) is told so.
        let version = request.version.min(http::Version::HTTP_11);
        let line = format!(
            "{} {} {version:?}",
            request.method,
            String::from_utf8_lossy(&request.target),
        );
        return (Bytes::from(line), Bytes::new());
    };
    let line = request
        .head
        .slice_ref(first.strip_suffix(b"\r").unwrap_or(first));
    let mut names = Vec::with_capacity(request.headers.len() * 12);
    for field in lines {
        let Some(colon) = field.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &field[..colon];
        let passed_on = !HOP_BY_HOP
            .iter()
            .any(|hop| name.eq_ignore_ascii_case(hop.as_bytes()))
            && !SERVER_FIELDS
                .iter()
                .any(|own| name.eq_ignore_ascii_case(own.as_bytes()));
        if passed_on {
            if !names.is_empty() {
                names.push(b',');
            }
            names.extend_from_slice(name);
        }
    }
    (line, Bytes::from(names))
}

/// The connection's own fields, which the guest does not get.
const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// The fields the server sets.
const SERVER_FIELDS: [&str; 6] = [
    SCRIPT_NAME,
    PATH_INFO,
    CLIENT_ADDR,
    SERVER_ADDR,
    REQUEST_LINE,
    FIELD_NAMES,
];

/// Where the plugin is mounted (`SCRIPT_NAME`), percent-encoded.
const SCRIPT_NAME: &str = "wasmhttpd-script-name";
/// The rest of the path (`PATH_INFO`), percent-encoded.
const PATH_INFO: &str = "wasmhttpd-path-info";
/// The client's `ip:port`.
const CLIENT_ADDR: &str = "wasmhttpd-client-addr";
/// The `ip:port` the client connected to.
const SERVER_ADDR: &str = "wasmhttpd-server-addr";
/// The request line as sent.
const REQUEST_LINE: &str = "wasmhttpd-request-line";
/// The names of the fields passed on, as sent.
const FIELD_NAMES: &str = "wasmhttpd-field-names";
