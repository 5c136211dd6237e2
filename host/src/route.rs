//! Routing: which backend answers a request.
//!
//! The order is DESIGN.md's: a plugin route that claims the path and the
//! method; a CGI directory; static files for GET and HEAD; otherwise 501
//! `Unsupported method ('X')`, exactly as Python answers a method its
//! handler has no `do_X` for. Plugins and CGI arrive as further variants of
//! [`Route`]; the table stays a pure function of the request, testable
//! without a socket.

use http::Method;

use crate::request::Request;

/// The backend chosen for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Serve from the directory: files, index pages, listings.
    Static,
    /// Nothing answers this method.
    Unsupported,
}

/// The routing table.
#[derive(Debug, Default)]
pub struct Router {}

impl Router {
    /// Chooses the backend for `request`.
    pub fn route(&self, request: &Request) -> Route {
        match request.method {
            Method::GET | Method::HEAD => Route::Static,
            _ => Route::Unsupported,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, Version};

    fn request(method: &str) -> Request {
        let addr = "127.0.0.1:1".parse().expect("addr");
        Request {
            method: Method::from_bytes(method.as_bytes()).expect("method"),
            target: Bytes::from_static(b"/"),
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            peer: addr,
            local: addr,
        }
    }

    #[test]
    fn get_and_head_are_static_others_unsupported() {
        let router = Router::default();
        assert_eq!(router.route(&request("GET")), Route::Static);
        assert_eq!(router.route(&request("HEAD")), Route::Static);
        for m in ["POST", "PUT", "DELETE", "OPTIONS", "get", "BREW"] {
            assert_eq!(router.route(&request(m)), Route::Unsupported, "{m}");
        }
    }
}
