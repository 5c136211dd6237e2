//! The request, as Python's `BaseHTTPRequestHandler` exposes it, and the
//! response written through it.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

/// Header fields of the request, looked up case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
    /// The value of the field `name` (any case), if present.
    ///
    /// ```
    /// # let (request, _) = wasmhttpd_guest::Request::for_test("GET", "/", &[("User-Agent", "curl/8")], b"");
    /// assert_eq!(request.headers.get("user-agent"), Some("curl/8"));
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every field, as `(Name-In-Title-Case, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// One request and the response to it.
///
/// The request's parts have Python's names: [`command`](Request::command),
/// [`path`](Request::path), [`request_version`](Request::request_version),
/// [`headers`](Request::headers), [`client_address`](Request::client_address)
/// and [`rfile`](Request::rfile), the body. The response is written with
/// [`send_response`](Request::send_response),
/// [`send_header`](Request::send_header),
/// [`end_headers`](Request::end_headers), then the body on
/// [`wfile`](Request::wfile) — or all at once with
/// [`send_error`](Request::send_error).
pub struct Request {
    /// The method: `GET`, `POST`, …
    pub command: String,
    /// The request target as the client sent it: path and query
    /// (`/notes/today?sort=asc`).
    pub path: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub request_version: String,
    /// The header fields.
    pub headers: Headers,
    /// The client's address and port.
    pub client_address: (String, u16),
    /// The request body (exactly `Content-Length` bytes, then end of file).
    pub rfile: Box<dyn Read>,
    /// The response body, after [`end_headers`](Request::end_headers).
    pub wfile: Box<dyn Write>,
    query: String,
    script_name: String,
    path_info: String,
    content_length: u64,
    variables: std::collections::HashMap<String, String>,
    head: Vec<u8>,
    status_set: bool,
    content_type_set: bool,
    headers_sent: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("command", &self.command)
            .field("path", &self.path)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// The request of this process: CGI/1.1 meta-variables from the
    /// environment, the body on standard input, the response on standard
    /// output.
    pub fn from_env() -> Request {
        Request::from_cgi(
            std::env::vars(),
            Box::new(io::stdin()),
            Box::new(io::stdout()),
        )
    }

    /// A request from CGI meta-variables, a body and an output.
    pub fn from_cgi(
        vars: impl IntoIterator<Item = (String, String)>,
        body: Box<dyn Read>,
        output: Box<dyn Write>,
    ) -> Request {
        Request::from_parts(vars, body, output, true)
    }

    /// As [`from_cgi`](Request::from_cgi); without `CONTENT_LENGTH`, the
    /// body is read to its end if `bounded_by_length` is false (a wasi:http
    /// request's chunked body), and is empty if it is true (CGI).
    pub(crate) fn from_parts(
        vars: impl IntoIterator<Item = (String, String)>,
        body: Box<dyn Read>,
        output: Box<dyn Write>,
        bounded_by_length: bool,
    ) -> Request {
        let mut get = std::collections::HashMap::new();
        let mut fields = Vec::new();
        for (name, value) in vars {
            if let Some(header) = name.strip_prefix("HTTP_") {
                fields.push((title_case(header), value.clone()));
            }
            get.insert(name, value);
        }
        let var = |name: &str| get.get(name).cloned().unwrap_or_default();
        for (variable, header) in [
            ("CONTENT_TYPE", "Content-Type"),
            ("CONTENT_LENGTH", "Content-Length"),
        ] {
            if let Some(value) = get.get(variable) {
                fields.push((header.to_string(), value.clone()));
            }
        }
        let declared: Option<u64> = get.get("CONTENT_LENGTH").and_then(|n| n.parse().ok());
        let content_length = declared.unwrap_or(0);
        let rfile: Box<dyn Read> = match declared {
            None if !bounded_by_length => body,
            _ => Box::new(body.take(content_length)),
        };
        let script_name = var("SCRIPT_NAME");
        let path_info = var("PATH_INFO");
        let query = var("QUERY_STRING");
        let path = match get.get("REQUEST_URI") {
            Some(uri) => uri.clone(),
            None if query.is_empty() => format!("{script_name}{path_info}"),
            None => format!("{script_name}{path_info}?{query}"),
        };
        Request {
            command: var("REQUEST_METHOD"),
            path,
            request_version: var("SERVER_PROTOCOL"),
            headers: Headers { fields },
            client_address: (var("REMOTE_ADDR"), var("REMOTE_PORT").parse().unwrap_or(0)),
            rfile,
            wfile: output,
            query,
            script_name,
            path_info,
            content_length,
            variables: get,
            head: Vec::new(),
            status_set: false,
            content_type_set: false,
            headers_sent: false,
        }
    }

    /// A request made up for a test, and where its response goes.
    ///
    /// ```
    /// use std::io::Read;
    /// let (mut request, _) = wasmhttpd_guest::Request::for_test("POST", "/p?q=1", &[], b"body");
    /// assert_eq!(request.query(), "q=1");
    /// let mut body = String::new();
    /// request.rfile.read_to_string(&mut body).unwrap();
    /// assert_eq!(body, "body");
    /// ```
    pub fn for_test(
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (Request, TestOutput) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut vars = vec![
            ("REQUEST_METHOD".to_string(), method.to_string()),
            ("REQUEST_URI".to_string(), target.to_string()),
            ("SCRIPT_NAME".to_string(), String::new()),
            ("PATH_INFO".to_string(), path.to_string()),
            ("QUERY_STRING".to_string(), query.to_string()),
            ("SERVER_PROTOCOL".to_string(), "HTTP/1.1".to_string()),
            ("REMOTE_ADDR".to_string(), "127.0.0.1".to_string()),
            ("REMOTE_PORT".to_string(), "40000".to_string()),
            ("CONTENT_LENGTH".to_string(), body.len().to_string()),
        ];
        for (name, value) in headers {
            let variable = name.to_ascii_uppercase().replace('-', "_");
            match variable.as_str() {
                "CONTENT_TYPE" => vars.push((variable, value.to_string())),
                _ => vars.push((format!("HTTP_{variable}"), value.to_string())),
            }
        }
        let output = TestOutput::default();
        let request = Request::from_cgi(
            vars,
            Box::new(io::Cursor::new(body.to_vec())),
            Box::new(output.clone()),
        );
        (request, output)
    }

    /// A CGI/1.1 meta-variable of the request (`SERVER_NAME`,
    /// `SERVER_PORT`, `REMOTE_ADDR`, …), as the server set it; as a
    /// wasi:http component, those the request implies.
    ///
    /// ```
    /// # let (request, _) = wasmhttpd_guest::Request::for_test("GET", "/x?a", &[], b"");
    /// assert_eq!(request.variable("QUERY_STRING"), Some("a"));
    /// assert_eq!(request.variable("NO_SUCH"), None);
    /// ```
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str)
    }

    /// The query string, raw (`a=1&b=%20`), without `?`.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The path this plugin is mounted at (`SCRIPT_NAME`), e.g. `/notes`.
    pub fn script_name(&self) -> &str {
        &self.script_name
    }

    /// The rest of the path below it (`PATH_INFO`), decoded, e.g. `/today`.
    pub fn path_info(&self) -> &str {
        &self.path_info
    }

    /// The body's length in bytes, as the client declared it.
    pub fn content_length(&self) -> u64 {
        self.content_length
    }

    /// Reads the whole body, refusing one longer than `limit` bytes.
    pub fn read_body(&mut self, limit: u64) -> io::Result<Vec<u8>> {
        let too_large = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("request body over {limit} bytes"),
            )
        };
        if self.content_length > limit {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(self.content_length as usize);
        // A body of undeclared length (chunked, over wasi:http) is read
        // only one byte past the limit.
        (&mut self.rfile)
            .take(limit.saturating_add(1))
            .read_to_end(&mut body)?;
        if body.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(body)
    }

    /// Starts the response with this status code. The server adds `Date`
    /// and `Server`, and frames the body.
    pub fn send_response(&mut self, code: u16) {
        self.head
            .extend_from_slice(format!("Status: {code} {}\n", reason(code)).as_bytes());
        self.status_set = true;
    }

    /// Adds a header field to the response.
    ///
    /// Fails for a name that is not a token or a value with CR, LF or NUL:
    /// they would let request data inject fields into the response.
    pub fn send_header(&mut self, name: &str, value: &str) -> io::Result<()> {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid header field {name:?}"),
            ));
        }
        self.content_type_set |= name.eq_ignore_ascii_case("content-type");
        self.head
            .extend_from_slice(format!("{name}: {value}\n").as_bytes());
        Ok(())
    }

    /// Ends the header fields; the body follows on [`wfile`](Request::wfile).
    /// Without [`send_response`](Request::send_response) the status is 200;
    /// without a `Content-Type`, a response that may have a body gets
    /// `text/plain; charset=utf-8`.
    pub fn end_headers(&mut self) -> io::Result<()> {
        if !self.status_set {
            self.send_response(200);
        }
        let bodyless =
            self.head.starts_with(b"Status: 204") || self.head.starts_with(b"Status: 304");
        if !self.content_type_set && !bodyless {
            self.head
                .extend_from_slice(b"Content-Type: text/plain; charset=utf-8\n");
        }
        self.head.push(b'\n');
        let head = std::mem::take(&mut self.head);
        self.headers_sent = true;
        self.wfile.write_all(&head)
    }

    /// Whether the header fields have been sent.
    pub fn headers_sent(&self) -> bool {
        self.headers_sent
    }

    /// Answers with an error page, as Python's `send_error` does: the code,
    /// the message (default: the status's phrase) and an explanation,
    /// HTML-escaped.
    pub fn send_error(&mut self, code: u16, message: Option<&str>) -> io::Result<()> {
        let message = message.unwrap_or(reason(code));
        let page = format!(
            "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        <meta charset=\"utf-8\">\n        \
             <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n        \
             <p>Error code: {code}</p>\n        <p>Message: {}.</p>\n        \
             <p>Error code explanation: {code} - {}.</p>\n    </body>\n</html>\n",
            escape(message),
            escape(reason(code)),
        );
        self.head.clear();
        self.content_type_set = false;
        self.send_response(code);
        self.send_header("Content-Type", "text/html;charset=utf-8")?;
        self.end_headers()?;
        self.wfile.write_all(page.as_bytes())
    }
}

/// `USER_AGENT` → `User-Agent`.
fn title_case(variable: &str) -> String {
    variable
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => {
                    first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The reason phrase for a status code.
fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Where a [`Request::for_test`] response goes: read it with
/// [`text`](TestOutput::text) or [`bytes`](TestOutput::bytes).
#[derive(Debug, Clone, Default)]
pub struct TestOutput(Arc<Mutex<Vec<u8>>>);

impl TestOutput {
    /// Everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

impl Write for TestOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_variables_become_pythons_attributes() {
        let vars = [
            ("REQUEST_METHOD", "POST"),
            ("REQUEST_URI", "/notes/x?y=1"),
            ("SCRIPT_NAME", "/notes"),
            ("PATH_INFO", "/x"),
            ("QUERY_STRING", "y=1"),
            ("SERVER_PROTOCOL", "HTTP/1.0"),
            ("REMOTE_ADDR", "10.0.0.2"),
            ("REMOTE_PORT", "5555"),
            ("HTTP_USER_AGENT", "t/1"),
            ("HTTP_X_REQUEST_ID", "abc"),
            ("CONTENT_TYPE", "text/plain"),
            ("CONTENT_LENGTH", "3"),
        ];
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let mut request = Request::from_cgi(
            vars,
            Box::new(io::Cursor::new(b"abcEXTRA".to_vec())),
            Box::new(io::sink()),
        );
        assert_eq!(request.command, "POST");
        assert_eq!(request.path, "/notes/x?y=1");
        assert_eq!(request.request_version, "HTTP/1.0");
        assert_eq!(request.client_address, ("10.0.0.2".to_string(), 5555));
        assert_eq!(request.headers.get("X-Request-Id"), Some("abc"));
        assert_eq!(request.headers.get("content-type"), Some("text/plain"));
        assert_eq!(
            (request.script_name(), request.path_info(), request.query()),
            ("/notes", "/x", "y=1")
        );
        assert_eq!(
            request.read_body(10).expect("body"),
            b"abc",
            "exactly CONTENT_LENGTH bytes"
        );
    }

    #[test]
    fn response_head_and_defaults() {
        let (mut request, output) = Request::for_test("GET", "/", &[], b"");
        request.end_headers().expect("end");
        request.wfile.write_all(b"x").expect("write");
        assert_eq!(
            output.text(),
            "Status: 200 OK\nContent-Type: text/plain; charset=utf-8\n\nx"
        );
        assert!(request.headers_sent());
    }

    #[test]
    fn header_injection_is_refused() {
        let (mut request, _) = Request::for_test("GET", "/", &[], b"");
        assert!(request.send_header("X", "a\r\nSet-Cookie: evil").is_err());
        assert!(request.send_header("Bad Name", "v").is_err());
        assert!(request.send_header("X-Fine", "v").is_ok());
    }

    #[test]
    fn send_error_escapes_and_matches_the_servers_page() {
        let (mut request, output) = Request::for_test("GET", "/", &[], b"");
        request
            .send_error(404, Some("<no such note>"))
            .expect("error");
        let text = output.text();
        assert!(text.starts_with(
            "Status: 404 Not Found\nContent-Type: text/html;charset=utf-8\n\n<!DOCTYPE HTML>"
        ));
        assert!(text.contains("<p>Message: &lt;no such note&gt;.</p>"));
    }

    #[test]
    fn oversize_bodies_are_refused_before_reading() {
        let (mut request, _) = Request::for_test("POST", "/", &[], &[0; 100]);
        assert!(request.read_body(10).is_err());
    }
}
