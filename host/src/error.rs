//! The request path's error type, and the error page every error becomes.
//!
//! Backends return `Result<Response, HttpError>`; the service turns an
//! `HttpError` into Python's error page (`send_error`): a real status line,
//! `Content-Type: text/html;charset=utf-8`, `Content-Length`, and a small HTML
//! document with the code, message and explanation, each HTML-escaped so that
//! a request path cannot inject markup into the page (bpo-1100201).

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use crate::response::{Body, Response};

/// Why a request failed; each variant knows its status code, and its
/// `Display` is the message shown to the client, in Python's wording where
/// Python has one.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// 400, with Python's message (e.g. `Bad request syntax ('GET')`).
    #[error("{0}")]
    BadRequest(String),
    /// 404, with Python's message (`File not found`, `No permission to list directory`).
    #[error("{0}")]
    NotFound(&'static str),
    /// 404 for a CGI script that does not exist (`No such CGI script
    /// ('/cgi-bin/x')`).
    #[error("No such CGI script ({})", py_repr(.0))]
    NoSuchScript(String),
    /// 403 for a CGI script that cannot run (`CGI script is not executable
    /// ('/cgi-bin/x')`, `… is not a plain file …`).
    #[error("CGI script is {why} ({})", py_repr(.script))]
    ScriptForbidden {
        /// The script's URL path.
        script: String,
        /// `not a plain file`, `not executable`.
        why: &'static str,
    },
    /// 408: the client was too slow to send its request.
    #[error("Request timed out")]
    RequestTimeout,
    /// 413: the request body is longer than the backend accepts.
    #[error("Request body too large")]
    PayloadTooLarge,
    /// 414: the request line exceeds the limit.
    #[error("Request-URI Too Long")]
    UriTooLong,
    /// 417: an `Expect` other than `100-continue`.
    #[error("Expectation Failed")]
    ExpectationFailed,
    /// 431: too many header fields, or too many bytes of them.
    #[error("{0}")]
    HeaderFieldsTooLarge(&'static str),
    /// A backend (a plugin, a CGI script) failed: 500 when it crashed, 502
    /// when its output was not a response, 504 when it ran out of time.
    /// The details are logged, not shown.
    #[error("{}", .0.canonical_reason().unwrap_or("Error"))]
    Upstream(StatusCode),
    /// 503: the backend cannot answer yet (a plugin still compiling) or
    /// any more (one whose compile failed as the request came).
    #[error("{0}")]
    Unavailable(&'static str),
    /// 503 with `Retry-After`: a server-wide budget (guest memory, buffered
    /// or spooled bodies) is in use by the requests already running.
    #[error("Server busy: its {0} budget is in use; retry shortly")]
    Overloaded(&'static str),
    /// 501: no backend answers this method (`Unsupported method ('X')`).
    #[error("Unsupported method ({})", py_repr(.0))]
    UnsupportedMethod(String),
    /// 501: a transfer coding other than `chunked`.
    #[error("Unsupported transfer coding")]
    UnsupportedTransferCoding,
    /// 505: a major HTTP version other than 1 (`Invalid HTTP version (2.0)`).
    #[error("Invalid HTTP version ({0})")]
    VersionNotSupported(String),
}

impl HttpError {
    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::NotFound(_) | HttpError::NoSuchScript(_) => StatusCode::NOT_FOUND,
            HttpError::ScriptForbidden { .. } => StatusCode::FORBIDDEN,
            HttpError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            HttpError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::UriTooLong => StatusCode::URI_TOO_LONG,
            HttpError::ExpectationFailed => StatusCode::EXPECTATION_FAILED,
            HttpError::HeaderFieldsTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HttpError::UnsupportedMethod(_) | HttpError::UnsupportedTransferCoding => {
                StatusCode::NOT_IMPLEMENTED
            }
            HttpError::VersionNotSupported(_) => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            HttpError::Unavailable(_) | HttpError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Upstream(status) => *status,
        }
    }

    /// Python's error page for this error.
    pub fn to_response(&self) -> Response {
        let mut response = error_page(self.status(), &self.to_string());
        if let HttpError::Overloaded(_) = self {
            response
                .headers
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Python's `send_error` page for `status`, with `message` (HTML-escaped).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let code = status.as_u16();
    let explain = explanation(status);
    let body = format!(
        "<!DOCTYPE HTML>\n\
         <html lang=\"en\">\n    \
             <head>\n        \
                 <meta charset=\"utf-8\">\n        \
                 <title>Error response</title>\n    \
             </head>\n    \
             <body>\n        \
                 <h1>Error response</h1>\n        \
                 <p>Error code: {code}</p>\n        \
                 <p>Message: {message}.</p>\n        \
                 <p>Error code explanation: {code} - {explain}.</p>\n    \
             </body>\n\
         </html>\n",
        message = html_escape(message),
        explain = html_escape(explain),
    );
    let mut response = Response::new(status, Body::Bytes(Bytes::from(body)));
    response.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=utf-8"),
    );
    response
}

/// Python's `HTTPStatus.description` for the codes this server sends.
fn explanation(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad request syntax or unsupported method",
        403 => "Request forbidden -- authorization will not help",
        404 => "Nothing matches the given URI",
        405 => "Specified method is invalid for this resource",
        408 => "Request timed out; try again later",
        411 => "Client must specify Content-Length",
        413 => "Entity is too large",
        414 => "URI is too long",
        416 => "Cannot satisfy request range",
        417 => "Expect condition could not be satisfied",
        431 => {
            "The server is unwilling to process the request because its header fields are too large"
        }
        500 => "Server got itself in trouble",
        501 => "Server does not support this operation",
        502 => "Invalid responses from another server/proxy",
        503 => "The server cannot process the request due to a high load",
        504 => "The gateway server did not receive a timely response",
        505 => "Cannot fulfill request",
        _ => "???",
    }
}

/// Escapes `&`, `<` and `>` for HTML text, as Python's
/// `html.escape(s, quote=False)` does. Not for attribute values: those this
/// server writes are percent-encoded or numeric.
pub fn html_escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Quotes `text` the way Python's `repr` of a `str` does, so that messages
/// read as Python's do: `'GET'`, with control characters as `\xHH`.
pub fn py_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_method_reads_like_python() {
        let err = HttpError::UnsupportedMethod("POST".into());
        assert_eq!(err.to_string(), "Unsupported method ('POST')");
        assert_eq!(err.status(), StatusCode::NOT_IMPLEMENTED);
    }

    #[test]
    fn cgi_errors_read_like_python() {
        let err = HttpError::NoSuchScript("/cgi-bin/x".into());
        assert_eq!(err.to_string(), "No such CGI script ('/cgi-bin/x')");
        let err = HttpError::ScriptForbidden {
            script: "/cgi-bin/".into(),
            why: "not a plain file",
        };
        assert_eq!(
            err.to_string(),
            "CGI script is not a plain file ('/cgi-bin/')"
        );
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn repr_escapes_quotes_and_controls() {
        assert_eq!(py_repr("a'b"), "\"a'b\"");
        assert_eq!(py_repr("a'\"b"), "'a\\'\"b'");
        assert_eq!(py_repr("x\x01y"), "'x\\x01y'");
    }

    #[test]
    fn error_page_escapes_message() {
        let resp = error_page(StatusCode::NOT_FOUND, "<script>");
        let Body::Bytes(body) = resp.body else {
            panic!("error page has a body")
        };
        let body = std::str::from_utf8(&body).expect("utf-8");
        assert!(body.contains("<p>Message: &lt;script&gt;.</p>"));
        assert!(
            body.contains("<p>Error code explanation: 404 - Nothing matches the given URI.</p>")
        );
    }
}
