//! Routing: which backend answers a request.
//!
//! The order is DESIGN.md's: a plugin route that claims the path *and* the
//! method; a CGI directory (with `--cgi`), for GET, HEAD and POST; static
//! files for GET and HEAD; otherwise 501 `Unsupported method ('X')`,
//! exactly as Python answers a method its handler has no `do_X` for. So a
//! site serves its files natively for GET while a plugin takes POST on the
//! same paths. Routing is a pure function of the method, the decoded path,
//! the plugin table and the CGI directories, testable without a socket.

use http::Method;

use crate::cgi::dirs::CgiDirs;
use crate::plugin::Matched;
use crate::plugin::registry::Table;

/// The backend chosen for a request.
#[derive(Debug, Clone)]
pub enum Route<'a> {
    /// A plugin claims the path and the method.
    Plugin(Matched),
    /// A script in this CGI directory (`/cgi-bin`).
    Cgi(&'a str),
    /// Serve from the directory: files, index pages, listings.
    Static,
    /// Nothing answers this method.
    Unsupported,
}

/// Chooses the backend for `method` on the decoded, normalised `path`.
pub fn route<'a>(
    method: &Method,
    path: &str,
    plugins: Option<&Table>,
    cgi: Option<&'a CgiDirs>,
) -> Route<'a> {
    if let Some(matched) = plugins.and_then(|table| table.find(path, method)) {
        return Route::Plugin(matched);
    }
    let runs_scripts = matches!(*method, Method::GET | Method::HEAD | Method::POST);
    if let Some(dir) = cgi.filter(|_| runs_scripts).and_then(|d| d.matching(path)) {
        return Route::Cgi(dir);
    }
    match *method {
        Method::GET | Method::HEAD => Route::Static,
        _ => Route::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgi::dirs::DEFAULT_DIRS;

    fn method(m: &str) -> Method {
        Method::from_bytes(m.as_bytes()).expect("method")
    }

    #[test]
    fn get_and_head_are_static_others_unsupported() {
        for m in ["GET", "HEAD"] {
            assert!(
                matches!(route(&method(m), "/", None, None), Route::Static),
                "{m}"
            );
        }
        for m in ["POST", "PUT", "DELETE", "OPTIONS", "get", "BREW"] {
            assert!(
                matches!(route(&method(m), "/", None, None), Route::Unsupported),
                "{m}"
            );
        }
    }

    #[test]
    fn cgi_directories_run_get_head_and_post() {
        let dirs = CgiDirs::new(&DEFAULT_DIRS).expect("dirs");
        for m in ["GET", "HEAD", "POST"] {
            assert!(
                matches!(
                    route(&method(m), "/cgi-bin/x", None, Some(&dirs)),
                    Route::Cgi("/cgi-bin")
                ),
                "{m}"
            );
        }
        assert!(matches!(
            route(&method("PUT"), "/cgi-bin/x", None, Some(&dirs)),
            Route::Unsupported
        ));
        assert!(matches!(
            route(&method("POST"), "/x", None, Some(&dirs)),
            Route::Unsupported
        ));
        assert!(matches!(
            route(&method("GET"), "/cgi-bin", None, Some(&dirs)),
            Route::Static
        ));
        assert!(matches!(
            route(&method("GET"), "/cgi-bin/x", None, None),
            Route::Static
        ));
    }
}
