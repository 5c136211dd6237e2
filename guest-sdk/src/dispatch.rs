//! The handler trait and the dispatch from the request's method to it.

use std::io;

use crate::request::Request;

/// A plugin's request handler: implement the methods it answers.
///
/// Each `do_METHOD` gets the request and writes the response through it. Put
/// [`plugin`](crate::plugin) on the impl to record which methods are
/// implemented and generate `main`; the type must implement `Default` (one
/// value is made per request).
#[expect(
    non_snake_case,
    reason = "the names of Python's BaseHTTPRequestHandler"
)]
pub trait Handler {
    /// The methods the impl defines, recorded by [`plugin`](crate::plugin).
    const IMPLEMENTED: &'static [&'static str] = &[];

    /// Answers GET.
    fn do_GET(&mut self, request: &mut Request) -> io::Result<()> {
        not_implemented(request)
    }
    /// Answers HEAD (the server sends no body, whatever is written).
    fn do_HEAD(&mut self, request: &mut Request) -> io::Result<()> {
        not_implemented(request)
    }
    /// Answers POST.
    fn do_POST(&mut self, request: &mut Request) -> io::Result<()> {
        not_implemented(request)
    }
    /// Answers PUT.
    fn do_PUT(&mut self, request: &mut Request) -> io::Result<()> {
        not_implemented(request)
    }
    /// Answers DELETE.
    fn do_DELETE(&mut self, request: &mut Request) -> io::Result<()> {
        not_implemented(request)
    }
    /// Answers PATCH.
    fn do_PATCH(&mut self, request: &mut Request) -> io::Result<()> {
        not_implemented(request)
    }
    /// Answers OPTIONS (by default: `Allow` with the implemented methods).
    fn do_OPTIONS(&mut self, request: &mut Request) -> io::Result<()> {
        not_implemented(request)
    }
}

fn not_implemented(request: &mut Request) -> io::Result<()> {
    let message = format!("Unsupported method ('{}')", request.command);
    request.send_error(501, Some(&message))
}

/// Reads the request from the CGI environment and standard input, runs
/// `H`, and writes the response to standard output. [`plugin`](crate::plugin)
/// calls it from the `main` it generates.
pub fn run<H: Handler + Default>() {
    let mut request = Request::from_env();
    serve::<H>(&mut request);
}

/// Runs a new `H` on `request`: dispatch by method, 501 for a method `H`
/// does not implement, `Allow` for OPTIONS, 500 for an error returned
/// before the response started.
///
/// ```
/// use std::io::Write;
/// use wasmhttpd_guest::{Handler, Request, serve};
///
/// #[derive(Default)]
/// struct Hi;
/// impl Handler for Hi {
///     const IMPLEMENTED: &'static [&'static str] = &["GET"];
///     fn do_GET(&mut self, r: &mut Request) -> std::io::Result<()> {
///         r.send_response(200);
///         r.end_headers()?;
///         r.wfile.write_all(b"hi")
///     }
/// }
///
/// let (mut request, output) = Request::for_test("POST", "/hi", &[], b"");
/// serve::<Hi>(&mut request);
/// let text = output.text();
/// assert!(text.starts_with("Status: 501 Not Implemented\n"));
/// assert!(text.contains("Unsupported method ('POST')"));
/// ```
pub fn serve<H: Handler + Default>(request: &mut Request) {
    let mut handler = H::default();
    let method = request.command.clone();
    let result = if H::IMPLEMENTED.contains(&method.as_str()) {
        match method.as_str() {
            "GET" => handler.do_GET(request),
            "HEAD" => handler.do_HEAD(request),
            "POST" => handler.do_POST(request),
            "PUT" => handler.do_PUT(request),
            "DELETE" => handler.do_DELETE(request),
            "PATCH" => handler.do_PATCH(request),
            "OPTIONS" => handler.do_OPTIONS(request),
            _ => not_implemented(request),
        }
    } else if method == "OPTIONS" {
        allow(request, H::IMPLEMENTED)
    } else {
        not_implemented(request)
    };
    if let Err(error) = result {
        eprintln!("{} {}: {error}", request.command, request.path);
        if !request.headers_sent() {
            let _ = request.send_error(500, None);
        }
    }
    let _ = request.wfile.flush();
}

fn allow(request: &mut Request, implemented: &[&str]) -> io::Result<()> {
    let mut methods: Vec<&str> = implemented.to_vec();
    methods.push("OPTIONS");
    request.send_response(204);
    request.send_header("Allow", &methods.join(", "))?;
    request.end_headers()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[derive(Default)]
    struct Both;

    impl Handler for Both {
        const IMPLEMENTED: &'static [&'static str] = &["GET", "POST"];
        fn do_GET(&mut self, r: &mut Request) -> io::Result<()> {
            r.send_response(200);
            r.send_header("Content-Type", "text/plain")?;
            r.end_headers()?;
            r.wfile.write_all(b"got")
        }
        fn do_POST(&mut self, _: &mut Request) -> io::Result<()> {
            Err(io::Error::other("the database is down"))
        }
    }

    fn run_as(method: &str) -> String {
        let (mut request, output) = Request::for_test(method, "/x", &[], b"");
        serve::<Both>(&mut request);
        output.text()
    }

    #[test]
    fn implemented_methods_run() {
        assert_eq!(
            run_as("GET"),
            "Status: 200 OK\nContent-Type: text/plain\n\ngot"
        );
    }

    #[test]
    fn other_methods_are_501_like_python() {
        let text = run_as("DELETE");
        assert!(
            text.starts_with(
                "Status: 501 Not Implemented\nContent-Type: text/html;charset=utf-8\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("<p>Message: Unsupported method ('DELETE').</p>"),
            "{text}"
        );
    }

    #[test]
    fn options_lists_the_implemented_methods() {
        assert_eq!(
            run_as("OPTIONS"),
            "Status: 204 No Content\nAllow: GET, POST, OPTIONS\n\n"
        );
    }

    #[test]
    fn an_error_before_the_response_is_500() {
        assert!(run_as("POST").starts_with("Status: 500 Internal Server Error\n"));
    }
}
