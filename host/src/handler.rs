//! The seam between the protocol front ends and what answers requests.
//!
//! HTTP/1 and HTTP/2 each turn their wire format into a [`Request`] and a
//! [`RequestBody`], call a [`Handler`], and frame the [`Response`] it gives
//! back. They know nothing of routing or backends, and the service knows
//! nothing of framing.

use std::future::Future;
use std::net::SocketAddr;

use http::StatusCode;

use crate::request::Request;
use crate::request_body::RequestBody;
use crate::response::Response;

/// Answers requests, whichever protocol carried them.
pub trait Handler: Send + Sync + 'static {
    /// Answers `request`, whose body the backend may read from `body`.
    /// It never fails: an error becomes its error page.
    fn handle<'a>(
        &'a self,
        request: &'a Request,
        body: &'a mut RequestBody<'_>,
    ) -> impl Future<Output = Response> + Send + 'a;

    /// Records an answered request: `request_line` as the client's
    /// request line (HTTP/2's rebuilt from its pseudo-headers), and the
    /// body bytes sent, if the response went out whole.
    fn log(&self, peer: SocketAddr, request_line: &[u8], status: StatusCode, size: Option<u64>);
}
