//! `handle()`: route → dispatch → finalize. It never fails.
//!
//! Every backend returns `Result<Response, HttpError>`; an error becomes
//! Python's error page here, so whatever happens, the client gets a real
//! response. The connection layer then frames and writes it (adding the
//! headers every response carries: `Server`, `Date`, `Content-Length`) and
//! records it in the access log.

use std::net::SocketAddr;

use http::StatusCode;

use crate::access_log::AccessLog;
use crate::error::HttpError;
use crate::fs_root::Root;
use crate::http1::body::RequestBody;
use crate::request::Request;
use crate::response::Response;
use crate::route::{Route, Router};
use crate::static_files;

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

    /// Answers one request; `body` is its body, for the backends that read one.
    pub async fn handle(&self, request: &Request, _body: &mut RequestBody<'_>) -> Response {
        let result = match self.router.route(request) {
            Route::Static => static_files::serve(&self.root, request),
            Route::Unsupported => Err(HttpError::UnsupportedMethod(
                request.method.as_str().to_owned(),
            )),
        };
        result.unwrap_or_else(|error| self.error_response(&error))
    }

    /// The error page for `error`.
    pub fn error_response(&self, error: &HttpError) -> Response {
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
