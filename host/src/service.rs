//! `handle()`: route → dispatch → finalize. It never fails.
//!
//! Every backend returns `Result<Response, HttpError>`; an error becomes
//! Python's error page here, so whatever happens, the client gets a real
//! response. Finalising adds the headers every response carries (`Server`,
//! `Date`). The connection layer then frames and writes the response and
//! records it in the access log.

use std::net::SocketAddr;

use http::{HeaderValue, StatusCode, header};

use crate::access_log::AccessLog;
use crate::error::HttpError;
use crate::fs_root::Root;
use crate::request::Request;
use crate::response::Response;
use crate::route::{Route, Router};
use crate::static_files;

/// The `Server` header value.
pub const SERVER: &str = concat!("wasmhttpd/", env!("CARGO_PKG_VERSION"));

/// Everything needed to answer requests.
#[derive(Debug)]
pub struct Service {
    router: Router,
    root: Root,
    access_log: AccessLog,
}

impl Service {
    /// A service serving `root`.
    pub fn new(root: Root, access_log: AccessLog) -> Service {
        Service {
            router: Router::default(),
            root,
            access_log,
        }
    }

    /// Answers one request.
    pub async fn handle(&self, request: &Request) -> Response {
        let result = match self.router.route(request) {
            Route::Static => static_files::serve(&self.root, request),
            Route::Unsupported => Err(HttpError::UnsupportedMethod(
                request.method.as_str().to_owned(),
            )),
        };
        let response = result.unwrap_or_else(|error| self.error_page(&error));
        finalize(response)
    }

    /// The finalised error page for a request that never reached a backend.
    pub fn error_response(&self, error: &HttpError) -> Response {
        finalize(self.error_page(error))
    }

    fn error_page(&self, error: &HttpError) -> Response {
        if let HttpError::Internal(detail) = error {
            eprintln!("wasmhttpd: internal error: {detail}");
        }
        error.to_response()
    }

    /// Records a response in the access log.
    pub fn log(
        &self,
        peer: SocketAddr,
        request_line: &[u8],
        status: StatusCode,
        size: Option<u64>,
    ) {
        self.access_log
            .record(peer.ip(), request_line, status, size);
    }
}

/// Adds the header fields every response carries.
/// They come first, in Python's order (`Server`, `Date`, then the rest).
fn finalize(mut response: Response) -> Response {
    let mut headers = http::HeaderMap::with_capacity(response.headers.len() + 2);
    headers.insert(header::SERVER, HeaderValue::from_static(SERVER));
    headers.insert(header::DATE, crate::clock::http_date());
    headers.extend(response.headers);
    response.headers = headers;
    response
}
