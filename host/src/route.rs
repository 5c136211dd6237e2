//! Routing: which backend answers a request.
//!
//! The order is DESIGN.md's: a plugin route that claims the path *and* the
//! method; static files for GET and HEAD; otherwise 501 `Unsupported method
//! ('X')`, exactly as Python answers a method its handler has no `do_X`
//! for. So a site serves its files natively for GET while a plugin takes
//! POST on the same paths. CGI directories join as one more step. Routing
//! is a pure function of the method, the decoded path and the plugin table,
//! testable without a socket.

use http::Method;

use crate::plugin::Matched;
use crate::plugin::registry::Table;

/// The backend chosen for a request.
#[derive(Debug, Clone)]
pub enum Route {
    /// A plugin claims the path and the method.
    Plugin(Matched),
    /// Serve from the directory: files, index pages, listings.
    Static,
    /// Nothing answers this method.
    Unsupported,
}

/// Chooses the backend for `method` on the decoded, normalised `path`.
pub fn route(method: &Method, path: &str, plugins: Option<&Table>) -> Route {
    if let Some(matched) = plugins.and_then(|table| table.find(path, method)) {
        return Route::Plugin(matched);
    }
    match *method {
        Method::GET | Method::HEAD => Route::Static,
        _ => Route::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_head_are_static_others_unsupported() {
        for m in ["GET", "HEAD"] {
            let method = Method::from_bytes(m.as_bytes()).expect("method");
            assert!(matches!(route(&method, "/", None), Route::Static), "{m}");
        }
        for m in ["POST", "PUT", "DELETE", "OPTIONS", "get", "BREW"] {
            let method = Method::from_bytes(m.as_bytes()).expect("method");
            assert!(
                matches!(route(&method, "/", None), Route::Unsupported),
                "{m}"
            );
        }
    }
}
