//! End to end, differential: the same `BaseHTTPRequestHandler` file served
//! by python3's own `http.server` (ThreadingHTTPServer) and, built by
//! `wasmhttpd build`, as a plugin; the answers compared request by request.
//!
//! Set aside in the comparison: the `Server` and `Date` values, the
//! client's port, the servers' ports and the Python version (python3 here,
//! CPython 3.14 in the plugin), and the framing fields (`Content-Length`
//! where Python closes instead, `Transfer-Encoding`, `Connection`): the
//! bodies must be the same bytes. Where wasmhttpd answers differently on
//! purpose, the test's name says so. Skipped, loudly, without python3.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::{Server, Setup, build_command, python_plugin, python_plugin_with, workspace};

/// Serves a handler class from a file with python3's ThreadingHTTPServer
/// on 127.0.0.1, port 0, and prints the port.
const RUNNER: &str = r#"
import http.server, importlib.util, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), getattr(module, sys.argv[2]))
print("port", server.server_address[1], flush=True)
server.serve_forever()
"#;

/// python3 serving a handler file.
struct Python {
    child: Child,
    addr: SocketAddr,
}

impl Python {
    fn start(file: &Path, class: &str) -> Option<Python> {
        let mut child = match Command::new("python3")
            .args(["-W", "ignore", "-c", RUNNER])
            .arg(file)
            .arg(class)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(_) => {
                eprintln!(
                    "SKIPPED: python3 not found; the Python handler parity tests did not run"
                );
                return None;
            }
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port line");
        let port = line.trim().strip_prefix("port ")?.parse().ok()?;
        Some(Python {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer with what the comparison sets aside taken out.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// Sends `raw` on a new connection and reads one response: to its
/// `Content-Length`, its last chunk, or the connection's close.
fn ask(addr: SocketAddr, raw: &[u8]) -> (support::Response, u16) {
    let mut stream = support::connect(addr);
    let port = stream.local_addr().expect("local").port();
    stream.write_all(raw).expect("send");
    let head_only = raw.starts_with(b"HEAD ");
    (read_one(&mut stream, head_only), port)
}

fn read_one(stream: &mut TcpStream, head_only: bool) -> support::Response {
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    // Parsed once the head is in, and the body then read to its end (its
    // length, its last chunk, or the close) without parsing it again.
    let mut framing = None;
    loop {
        if framing.is_none()
            && let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n")
        {
            let head = support::Response::parse(&bytes[..end + 4], true).expect("head");
            let bodiless = head_only || head.status == 204 || head.status == 304;
            framing = Some(match head.header("content-length") {
                _ if bodiless => Framing::Length(end + 4),
                Some(n) => Framing::Length(end + 4 + n.parse::<usize>().expect("length")),
                None if head.header("transfer-encoding") == Some("chunked") => Framing::Chunked,
                None => Framing::Close,
            });
        }
        let complete = match framing {
            Some(Framing::Length(total)) => bytes.len() >= total,
            Some(Framing::Chunked) => {
                bytes.ends_with(b"\r\n0\r\n\r\n") || bytes.ends_with(b"\n\n0\r\n\r\n")
            }
            Some(Framing::Close) | None => false,
        };
        if complete {
            return support::Response::parse(&bytes, head_only).expect("response");
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                return support::Response::parse(&bytes, head_only).unwrap_or_else(|| {
                    panic!(
                        "no response before close: {:?}",
                        String::from_utf8_lossy(&bytes)
                    )
                });
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return support::Response::parse(&bytes, head_only).expect("response before reset");
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// How a response's end is found.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// After this many bytes, head included.
    Length(usize),
    /// At the last chunk.
    Chunked,
    /// At the close.
    Close,
}

fn answer(response: support::Response, ports: &[u16]) -> Answer {
    let chunked = response.header("transfer-encoding") == Some("chunked");
    let body = if chunked {
        support::dechunk(&response.body).expect("whole chunked body")
    } else {
        response.body.clone()
    };
    let framing = [
        "server",
        "date",
        "connection",
        "keep-alive",
        "content-length",
        "transfer-encoding",
    ];
    let headers = response
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .filter(|(name, _)| !framing.contains(&name.as_str()))
        .collect();
    let mut body = String::from_utf8_lossy(&body).into_owned();
    for port in ports {
        body = body.replace(&port.to_string(), "PORT");
    }
    Answer {
        status: response.status,
        headers,
        body: without_style(&without_python_version(&body)),
    }
}

/// Python's error page without the `<style>` block that Python 3.13 added.
fn without_style(page: &str) -> String {
    match (page.find("        <style"), page.find("</style>\n")) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{}", &page[..start], &page[end + "</style>\n".len()..])
        }
        _ => page.to_string(),
    }
}

/// `Python/3.14.0` → `Python/3`.
fn without_python_version(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("Python/3.") {
        out.push_str(&rest[..at + "Python/3".len()]);
        rest = rest[at + "Python/3".len()..]
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    }
    out.push_str(rest);
    out
}

/// Python and the plugin side by side.
struct Pair {
    python: Python,
    server: Server,
    _setup: Setup,
}

impl Pair {
    /// `source` under python3 (class `class`) and `wasm` as plugin `name`,
    /// with an optional sidecar.
    fn start(
        source: &Path,
        class: &str,
        wasm: &Path,
        name: &str,
        sidecar: Option<&str>,
    ) -> Option<Pair> {
        let python = Python::start(source, class)?;
        let mut setup = Setup::new().with(wasm, name);
        if let Some(toml) = sidecar {
            setup = setup.sidecar(name, toml);
        }
        let server = setup.start(&[]);
        // Loaded (compiled from the cache, or in the background).
        let prefix = format!("Plugin {name}: ");
        server.wait_for_stdout(|l| l.starts_with(&prefix) && l.contains("wasi:http component"));
        Some(Pair {
            python,
            server,
            _setup: setup,
        })
    }

    /// The same raw request to both; both answers, normalised.
    fn both(&self, raw: &str) -> (Answer, Answer) {
        let ports = [self.python.addr.port(), self.server.addr.port()];
        let (expected, port) = ask(self.python.addr, raw.as_bytes());
        let expected = answer(expected, &[&ports[..], &[port]].concat());
        let (actual, port) = ask(self.server.addr, raw.as_bytes());
        let actual = answer(actual, &[&ports[..], &[port]].concat());
        (expected, actual)
    }

    /// Asserts that both answer `raw` alike.
    fn same(&self, raw: &str) -> Answer {
        let (expected, actual) = self.both(raw);
        assert_eq!(actual, expected, "for {raw:?}");
        actual
    }
}

fn example(dir: &str, file: &str) -> (PathBuf, PathBuf) {
    let root = workspace().join("plugins");
    let wasm = root.join(format!("{dir}.wasm"));
    assert!(
        wasm.is_file(),
        "{} is missing: run plugins/build",
        wasm.display()
    );
    (root.join(dir).join(file), wasm)
}

fn cases(sidecar: Option<&str>) -> Option<Pair> {
    let wasm = python_plugin("cases.py", Some("Cases"));
    let source = workspace().join("tests/python/cases.py");
    Pair::start(&source, "Cases", &wasm, "cases", sidecar)
}

#[test]
fn the_get_handler_example_sees_the_request_exactly_as_under_python() {
    let (source, wasm) = example("py-get", "get.py");
    let Some(pair) = Pair::start(&source, "GetHandler", &wasm, "py-get", None) else {
        return;
    };
    // Fields in their order and case as sent, repeated ones, odd ones.
    let answer = pair.same(
        "GET /py-get/a%20b/c?x=1&y=%2F HTTP/1.1\r\nHost: example.test:81\r\n\
         user-agent: raw/1\r\nX-Mixed-CASE: one\r\nAccept: */*\r\nX-Mixed-CASE: two\r\n\r\n",
    );
    assert!(
        answer.body.contains("path=/py-get/a%20b/c?x=1&y=%2F"),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("X-Mixed-CASE=one"), "{}", answer.body);
    assert!(answer.body.contains("user-agent=raw/1"), "{}", answer.body);
    // HTTP/1.0 without Host: none is added.
    let answer = pair.same("GET /py-get HTTP/1.0\r\nX-Only: this\r\n\r\n");
    assert!(
        answer.body.contains("request_version=HTTP/1.0"),
        "{}",
        answer.body
    );
    assert!(!answer.body.contains("Host="), "{}", answer.body);
    // The handler's own Date and Server go out, not the server's.
    let (response, _) = ask(pair.server.addr, b"GET /py-get HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(
        response
            .header("server")
            .is_some_and(|s| s.starts_with("BaseHTTP/0.6 Python/3."))
    );
    assert_eq!(
        response
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("date"))
            .count(),
        1
    );
    // A method it has no do_X for: Python's 501 page.
    pair.same("DELETE /py-get HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn the_form_example_parses_fields_and_uploads_with_cgi_field_storage_as_under_python() {
    let (source, wasm) = example("py-form", "form.py");
    let Some(pair) = Pair::start(&source, "PostHandler", &wasm, "py-form", None) else {
        return;
    };
    pair.same("GET /py-form HTTP/1.1\r\nHost: h\r\n\r\n");
    let form = "name=Ada+L%C3%B6velace&lang=en";
    let answer = pair.same(&format!(
        "POST /py-form HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    ));
    assert!(answer.body.contains("name=Ada Lövelace"), "{}", answer.body);
    // A multipart upload larger than FieldStorage keeps in memory (it
    // spools to a file under Python; to memory in the sandbox).
    let file: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let multipart = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"notes.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n{file}\r\n--XyZ--\r\n"
    );
    let answer = pair.same(&format!(
        "POST /py-form HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n{multipart}",
        multipart.len()
    ));
    assert!(
        answer
            .body
            .contains("Uploaded upload as 'notes.txt' (200000 bytes)"),
        "{}",
        answer.body
    );
}

#[test]
fn the_json_api_example_keeps_its_items_with_reuse_as_under_python() {
    let (source, wasm) = example("py-api", "api.py");
    let sidecar =
        std::fs::read_to_string(workspace().join("plugins/py-api.toml")).expect("sidecar");
    let Some(pair) = Pair::start(&source, "ApiHandler", &wasm, "py-api", Some(&sidecar)) else {
        return;
    };
    let post = |body: &str| {
        format!(
            "POST /py-api/items HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    assert_eq!(pair.same(&post(r#"{"name": "tea"}"#)).status, 201);
    assert_eq!(pair.same(&post(r#"{"name": "cake"}"#)).status, 201);
    assert_eq!(pair.same(&post("not json")).status, 400);
    let list = pair.same("GET /py-api/items HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(list.body.contains("cake"), "{}", list.body);
    pair.same("GET /py-api/items/2 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        pair.same("DELETE /py-api/items/1 HTTP/1.1\r\nHost: h\r\n\r\n")
            .status,
        204
    );
    assert_eq!(
        pair.same("GET /py-api/items/1 HTTP/1.1\r\nHost: h\r\n\r\n")
            .status,
        404
    );
    pair.same("GET /py-api/nothing HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn send_error_date_time_string_logging_and_missing_methods_behave_as_under_python() {
    let Some(pair) = cases(None) else {
        return;
    };
    let error = pair.same("GET /cases/error HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(error.status, 404);
    assert!(error.body.contains("Nothing here"), "{}", error.body);
    assert!(
        error.body.contains("Not under this name, anyway"),
        "{}",
        error.body
    );
    let dated = pair.same("GET /cases/dated HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(
        dated.headers.contains(&(
            "last-modified".into(),
            "Thu, 01 Jan 1970 00:00:00 GMT".into()
        )),
        "{dated:?}"
    );
    // A custom status with a reason phrase: the code is the handler's (the
    // phrase is the server's own: clients ignore it).
    assert_eq!(
        pair.same("GET /cases/reason HTTP/1.1\r\nHost: h\r\n\r\n")
            .status,
        299
    );
    // No do_PUT: Python's 501.
    let put = pair.same("PUT /cases/x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(put.status, 501);
    assert!(
        put.body.contains("Unsupported method ('PUT')"),
        "{}",
        put.body
    );
    // The handler's log_message goes to the log, tagged with the plugin.
    pair.same("GET /cases/log HTTP/1.1\r\nHost: h\r\n\r\n");
    pair.server.wait_for_log(|line| {
        line.starts_with("[plugin cases] 127.0.0.1 - - [")
            && line.ends_with("] a message from the handler")
    });
    // The echo: the request as the handler sees it.
    let echo =
        pair.same("GET /cases/echo?q HTTP/1.1\r\nHost: h\r\nX-B: 1\r\nx-a: 2\r\nX-B: 3\r\n\r\n");
    assert!(
        echo.body.contains("X-B: 1\nx-a: 2\nX-B: 3\n"),
        "{}",
        echo.body
    );
}

#[test]
fn an_overridden_send_response_and_a_body_ended_by_closing_work_as_under_python_on_a_kept_connection()
 {
    let wasm = python_plugin("framework.py", None);
    let source = workspace().join("tests/python/framework.py");
    let Some(pair) = Pair::start(&source, "Framework", &wasm, "framework", None) else {
        return;
    };
    let answer = pair.same("GET /framework HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(
        answer
            .headers
            .contains(&("x-framework".into(), "yes".into())),
        "{answer:?}"
    );
    // Python ends the body by closing; wasmhttpd frames it, so the
    // connection carries the next request.
    let mut stream = support::connect(pair.server.addr);
    for _ in 0..3 {
        stream
            .write_all(b"GET /framework HTTP/1.1\r\nHost: h\r\n\r\n")
            .expect("send");
        let response = read_one(&mut stream, false);
        assert!(
            response
                .header("server")
                .is_some_and(|s| s.starts_with("Framework/2.1 "))
        );
        let body = match response.header("transfer-encoding") {
            Some("chunked") => support::dechunk(&response.body).expect("body"),
            _ => {
                assert!(response.header("content-length").is_some(), "{response:?}");
                response.body.clone()
            }
        };
        assert!(String::from_utf8_lossy(&body).ends_with("<p>part 2</p>\n"));
    }
}

#[test]
fn a_large_upload_streams_to_the_handler_within_a_memory_cap_smaller_than_it() {
    // 48 MiB of guest memory (CPython itself takes part), a body of
    // 64 MiB: whole, it could not fit.
    let sidecar = "[limits]\nmemory_mib = 48\nrequest_body_kib = 131072\n";
    let Some(pair) = cases(Some(sidecar)) else {
        return;
    };
    let size = 64 << 20;
    let upload: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let head = format!("POST /cases/upload HTTP/1.1\r\nHost: h\r\nContent-Length: {size}\r\n\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(&upload);
    let (python, _) = ask(pair.python.addr, &raw);
    let (plugin, _) = ask(pair.server.addr, &raw);
    assert_eq!(plugin.status, 200);
    assert!(
        plugin
            .text()
            .starts_with(&format!("read {size} bytes, sha256 ")),
        "{}",
        plugin.text()
    );
    assert_eq!(plugin.text(), python.text());
}

#[test]
fn a_large_response_streams_and_then_an_instance_near_its_memory_cap_is_retired() {
    // componentize-py 0.25.1 keeps a copy of every byte written to a
    // stream until the instance ends: an 88 MiB response needs that much
    // guest memory beside CPython's 17 MiB, and leaves the instance too
    // full (past 3/4 of its cap) to be reused.
    let sidecar = "[limits]\nmemory_mib = 128\n\n[reuse]\nrequests = 10\n";
    let Some(pair) = cases(Some(sidecar)) else {
        return;
    };
    let count = |n: u32| {
        let (response, _) = ask(
            pair.server.addr,
            b"GET /cases/count HTTP/1.1\r\nHost: h\r\n\r\n",
        );
        assert!(
            response.text().starts_with(&format!("count={n} ")),
            "{}",
            response.text()
        );
    };
    count(1);
    let size = 88 << 20;
    let raw = format!("GET /cases/stream?{size} HTTP/1.1\r\nHost: h\r\n\r\n");
    let (response, _) = ask(pair.server.addr, raw.as_bytes());
    assert_eq!(response.status, 200);
    let body = support::dechunk(&response.body).expect("whole body");
    assert_eq!(body.len(), size);
    let (expected, _) = ask(pair.python.addr, raw.as_bytes());
    assert!(expected.body == body, "the same bytes as Python's");
    pair.server.wait_for_log(|line| {
        line.starts_with("[plugin cases] instance retired: it uses ")
            && line.ends_with(" of its 128 MiB of memory")
    });
    count(1);
    count(2);
}

#[test]
fn an_exception_is_a_500_with_the_traceback_in_the_log_where_python_sends_nothing() {
    let Some(pair) = cases(None) else {
        return;
    };
    for (path, message) in [
        ("raise-early", "ValueError: before any response"),
        // Mid-body: a clean 500, not Python's truncated 200.
        ("raise-late", "ValueError: in the middle of the body"),
    ] {
        let raw = format!("GET /cases/{path} HTTP/1.1\r\nHost: h\r\n\r\n");
        let (response, _) = ask(pair.server.addr, raw.as_bytes());
        assert_eq!(response.status, 500, "{path}");
        assert!(
            !response.text().contains("Traceback"),
            "{}",
            response.text()
        );
        assert!(
            !response.text().contains("ValueError"),
            "{}",
            response.text()
        );
        pair.server
            .wait_for_log(|line| line == format!("[plugin cases] {message}"));
    }
    pair.server
        .wait_for_log(|line| line.starts_with("[plugin cases] Traceback (most recent call last):"));
    // A handler that sends nothing: 502, where Python closes in silence.
    let (response, _) = ask(
        pair.server.addr,
        b"GET /cases/silent HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    assert_eq!(response.status, 502);
    pair.server
        .wait_for_log(|line| line == "[plugin cases] Cases sent no response");
}

#[test]
fn with_reuse_globals_persist_and_a_crashed_instance_is_never_reused() {
    let get = |server: &Server, path: &str| {
        let raw = format!("GET /cases/{path} HTTP/1.1\r\nHost: h\r\n\r\n");
        ask(server.addr, raw.as_bytes()).0
    };
    // By default every request gets a fresh instance.
    let Some(fresh) = cases(None) else {
        return;
    };
    for _ in 0..3 {
        assert!(get(&fresh.server, "count").text().starts_with("count=1 "));
    }
    drop(fresh);
    let Some(pair) = cases(Some("[reuse]\nrequests = 4\n")) else {
        return;
    };
    let count = |server: &Server| get(server, "count").text();
    for n in 1..=4 {
        assert!(count(&pair.server).starts_with(&format!("count={n} ")));
    }
    // Four requests served: the next instance is new.
    assert!(count(&pair.server).starts_with("count=1 "));
    assert!(count(&pair.server).starts_with("count=2 "));
    // An instance that crashes is dropped; an exception the handler raised
    // is a 500, and the instance (whose interpreter is fine) serves on.
    assert_eq!(get(&pair.server, "abort").status, 500);
    pair.server
        .wait_for_log(|line| line.starts_with("[plugin cases] trapped"));
    assert!(count(&pair.server).starts_with("count=1 "));
    assert_eq!(get(&pair.server, "raise-early").status, 500);
    assert!(count(&pair.server).starts_with("count=2 "));
    // One that exits mid-response, even with status 0, has ended: its
    // response fails at once (it is not kept, holding the response open).
    let response = get(&pair.server, "exit");
    assert_eq!(response.status, 502, "{response:?}");
    assert!(count(&pair.server).starts_with("count=1 "));
}

fn build(args: &[&str]) -> (i32, String) {
    let output = build_command(args).output().expect("run wasmhttpd build");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

#[test]
fn a_handler_that_cannot_be_built_is_one_line_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.wasm");
    let out = out.to_str().expect("utf-8");
    let broken = workspace().join("tests/python/broken");
    let file = |name: &str| broken.join(name).to_str().expect("utf-8").to_string();
    let cases = workspace().join("tests/python/cases.py");
    let cases = cases.to_str().expect("utf-8");
    for (args, expected) in [
        (
            vec![file("syntax.py")],
            format!("{}:5: SyntaxError: expected ':'", file("syntax.py")),
        ),
        (
            vec![file("missing_import.py")],
            format!(
                "{}:3: ModuleNotFoundError: No module named 'surely_not_a_module_anywhere'",
                file("missing_import.py")
            ),
        ),
        (
            vec![file("no_class.py")],
            format!(
                "{}: defines no subclass of http.server.BaseHTTPRequestHandler",
                file("no_class.py")
            ),
        ),
        (
            vec![cases.to_string()],
            format!(
                "{cases}: defines several handler classes (Cases, QuietCases); choose one with --handler"
            ),
        ),
        (
            vec![cases.to_string(), "--handler".into(), "Nope".into()],
            format!(
                "{cases}: no BaseHTTPRequestHandler subclass named Nope (it defines Cases, QuietCases)"
            ),
        ),
    ] {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(["-o", out]);
        let (code, stderr) = build(&all);
        assert_eq!(code, 1, "{stderr}");
        let last = stderr.lines().last().unwrap_or("");
        assert_eq!(last, format!("wasmhttpd build: {expected}"), "{stderr}");
        assert!(!stderr.contains("Traceback"), "{stderr}");
        assert!(!Path::new(out).exists(), "nothing is written");
    }
    // Bad arguments.
    let (code, stderr) = build(&["nothing-here.py"]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("wasmhttpd build: cannot read nothing-here.py"),
        "{stderr}"
    );
    let (code, stderr) = build(&[out]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not a Python file"), "{stderr}");
    let (code, stderr) = build(&[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("HANDLER.py"), "{stderr}");
}

#[test]
fn modules_beside_the_handler_and_under_path_are_bundled() {
    let lib = workspace().join("tests/python/lib");
    let wasm = python_plugin_with(
        "modules.py",
        None,
        &["--path", lib.to_str().expect("utf-8")],
    );
    let setup = Setup::new().with(&wasm, "modules");
    let server = setup.start(&[]);
    server.wait_for_stdout(|l| {
        l.starts_with("Plugin modules: ") && l.contains("wasi:http component")
    });
    let response = server.get("/modules");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "Hello, plugin! (from beside)\n");
}
