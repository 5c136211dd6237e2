//! End to end: WebAssembly components as plugins — wasi:http handlers
//! (`tests/components`), `wasi:cli/run` commands (`tests/guests` built for
//! wasm32-wasip2), outbound HTTP and its allow-list, and the components the
//! server must refuse, each against the real binary.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::{Response, Server, Setup, component, dechunk, guest_component, install_file, write};

/// The wasi:http test handler installed as `web`, with `sidecar`.
fn web(sidecar: &str) -> (Setup, Server) {
    let setup = Setup::new()
        .with(&component("http"), "web")
        .sidecar("web", sidecar);
    let server = setup.start(&[]);
    (setup, server)
}

fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(prefix))
}

#[test]
fn a_wasi_http_component_is_recognised_and_gets_the_request() {
    let (_setup, server) = web("");
    server.wait_for_plugin_line("Plugin web: /web /web/* (all methods; wasi:http component)");
    let raw = b"PUT /web/a%20b/report?x=1&y=%20 HTTP/1.1\r\nHost: example.test:8080\r\nConnection: close\r\n\
                X-Multi: a\r\nX-Multi: b\r\nContent-Length: 5\r\n\r\nhello";
    let r = Response::parse(&server.raw(raw), false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let text = r.text();
    assert_eq!(line(&text, "method="), Some("PUT"));
    assert_eq!(
        line(&text, "path="),
        Some("/web/a%20b/report?x=1&y=%20"),
        "the path and query as sent"
    );
    assert_eq!(line(&text, "scheme="), Some("http"));
    assert_eq!(line(&text, "authority="), Some("example.test:8080"));
    assert_eq!(line(&text, "x-multi: "), Some("a"));
    assert!(text.contains("x-multi: b\n"), "{text}");
    assert_eq!(
        line(&text, "connection: "),
        None,
        "hop-by-hop fields are dropped"
    );
    assert_eq!(line(&text, "body="), Some("5"));

    // An absolute-form target's authority wins over Host (RFC 9112 §3.2.2).
    let raw = b"GET http://target.test:81/web/report HTTP/1.1\r\nHost: host.test\r\nConnection: close\r\n\r\n";
    let text = Response::parse(&server.raw(raw), false)
        .expect("response")
        .text();
    assert_eq!(line(&text, "authority="), Some("target.test:81"));
    assert_eq!(line(&text, "path="), Some("/web/report"));

    // Its status and fields reach the client; the connection's own fields
    // are the server's.
    let r = server.get("/web/status?201");
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-handler"), Some("test"));
    assert_eq!(
        r.header("server").map(|s| s.starts_with("wasmhttpd/")),
        Some(true)
    );
    assert_eq!(r.text(), "status ok");

    let head = server.request("HEAD", "/web/report", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(server.get("/file.txt").text(), "static file\n");
}

#[test]
fn request_and_response_bodies_stream_both_ways() {
    let (_setup, server) = web("");
    // 4 MiB in, the same 4 MiB out: the guest sets its response first and
    // copies the body across as it arrives.
    let body: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let head = format!(
        "POST /web/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let r =
        Response::parse(&server.raw(&[head.as_bytes(), &body].concat()), false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(dechunk(&r.body) == Some(body.clone()), "echoed whole");

    // A chunked upload, de-chunked for the guest.
    let mut chunked = Vec::new();
    for piece in body.chunks(100_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /web/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
    let r = Response::parse(&server.raw(&[head.as_bytes(), &chunked].concat()), false)
        .expect("response");
    assert!(dechunk(&r.body) == Some(body), "echoed whole");
}

#[test]
fn a_large_response_streams_in_bounded_memory() {
    let (_setup, server) = web("");
    assert_eq!(server.get("/web/big?1000").status, 200);
    let before = server.peak_rss_kib();
    let size = 256usize << 20;
    let mut stream = server.connect();
    stream
        .write_all(
            format!("GET /web/big?{size} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("request");
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) => panic!("read: {e}"),
        }
    }
    assert!(received > size, "{received} bytes");
    let grown = server.peak_rss_kib().saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "peak RSS grew by {grown} KiB while streaming {size} bytes"
    );
}

#[test]
fn bodies_beyond_the_limits_are_refused_or_cut() {
    let (_setup, server) = web("[limits]\nrequest_body_kib = 64\nresponse_kib = 1024\n");
    let big = vec![b'a'; 100 << 10];
    let head = format!(
        "POST /web/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    let r =
        Response::parse(&server.raw(&[head.as_bytes(), &big].concat()), false).expect("response");
    assert_eq!(r.status, 413, "declared too large");

    let mut chunked = format!("{:x}\r\n", big.len()).into_bytes();
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let head = "POST /web/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
    let r = Response::parse(&server.raw(&[head.as_bytes(), &chunked].concat()), false)
        .expect("response");
    assert_eq!(r.status, 413, "found too large while streaming");

    let r = Response::parse(
        &server.raw(b"GET /web/big?2000000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        false,
    )
    .expect("response");
    assert_eq!(r.status, 200, "committed before the limit");
    assert!(dechunk(&r.body).is_none(), "cut without a final chunk");
    assert!(
        r.body.len() < (1 << 20) + (1 << 17),
        "stopped near the cap: {}",
        r.body.len()
    );
    assert_eq!(server.get("/web/big?1000").status, 200);
}

#[test]
fn failures_get_clean_errors_and_the_plugin_carries_on() {
    let (_setup, server) = web("[limits]\ntimeout_secs = 2\nmemory_mib = 32\n");
    let cases = [
        ("panic", 500, "trapped: unreachable"),
        ("none", 502, "returned without setting a response"),
        (
            "error",
            502,
            "responded with an error: ErrorCode::InternalError",
        ),
        ("hog", 500, "memory limit of 32 MiB reached"),
        ("spin", 504, "stopped after its time limit of 2s"),
    ];
    for (mode, status, logged) in cases {
        let started = Instant::now();
        let r = server.get(&format!("/web/{mode}"));
        assert_eq!(r.status, status, "{mode}");
        assert!(started.elapsed() < Duration::from_secs(10), "{mode}");
        server.wait_for_log(|l| l.starts_with("[plugin web] ") && l.contains(logged));
        assert_eq!(server.get("/web/status?200").status, 200, "after {mode}");
    }
    // Past the commit threshold a failure cuts the response.
    let bytes = server.raw(b"GET /web/late-panic HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = Response::parse(&bytes, false).expect("response");
    assert_eq!(r.status, 200);
    assert!(dechunk(&r.body).is_none(), "no final chunk");
}

/// A guest's 1xx or out-of-range status, sent as a final one, would make
/// every client and proxy on a kept-alive connection take the next
/// response for this one's.
#[test]
fn a_guest_status_that_cannot_end_a_response_becomes_502() {
    let (_setup, server) = web("");
    for status in [100, 101, 103, 199, 600, 999] {
        let mut stream = server.connect();
        let raw = format!(
            "GET /web/status?{status} HTTP/1.1\r\nHost: t\r\n\r\n\
             GET /web/status?201 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(raw.as_bytes()).expect("send");
        let bytes = support::read_to_close(&mut stream);
        let first = Response::parse(&bytes, false).expect("first response");
        assert_eq!(first.status, 502, "guest status {status}");
        let second = Response::parse(&first.rest, false).expect("second response");
        assert_eq!(second.status, 201, "after guest status {status}");
        assert!(second.rest.is_empty(), "after guest status {status}");
        server.wait_for_log(|l| {
            l.starts_with("[plugin web] ")
                && l.contains(&format!(
                    "responded with status {status}, which cannot end a response"
                ))
        });
    }
}

#[test]
fn output_goes_to_the_log_and_the_environment_is_only_what_is_granted() {
    let (_setup, server) = web("env = { GREETING = \"hi\" }\n");
    let r = server.get("/web/env");
    assert_eq!(r.text(), "GREETING=hi\n");
    server.wait_for_log(|l| l == "[plugin web] a line on stdout");
    server.wait_for_log(|l| l == "[plugin web] a line on stderr");
}

/// A static file server on loopback: the upstream of outbound requests.
fn upstream() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "data.txt", "from upstream\n");
    let server = Server::start(dir.path(), &[]);
    (dir, server)
}

#[test]
fn outbound_requests_are_denied_unless_granted() {
    let (_dir, up) = upstream();
    let port = up.addr.port();
    let target = format!("/web/fetch?http://127.0.0.1:{port}/data.txt");

    let (_setup, denied) = web("");
    let text = denied.get(&target).text();
    assert_eq!(
        text, "error: ErrorCode::HttpRequestDenied",
        "fails inside the guest"
    );
    denied.wait_for_log(|l| {
        l == format!("[plugin web] outbound request to http://127.0.0.1:{port} denied: not in allowed_outbound_hosts")
    });
    assert!(
        up.log().iter().all(|l| !l.contains("data.txt")),
        "never sent"
    );

    let (_setup, allowed) = web("allowed_outbound_hosts = [\"http://127.0.0.1:*\"]\n");
    assert_eq!(allowed.get(&target).text(), "status 200\nfrom upstream\n");
    up.wait_for_log(|l| l.contains("\"GET /data.txt HTTP/1.1\" 200"));
    let other_host = format!("/web/fetch?http://localhost:{port}/data.txt");
    assert_eq!(
        allowed.get(&other_host).text(),
        "error: ErrorCode::HttpRequestDenied"
    );

    let (_setup, other_port) = web(&format!(
        "allowed_outbound_hosts = [\"http://127.0.0.1:{}\", \"https://127.0.0.1\"]\n",
        port.wrapping_add(1).max(1)
    ));
    assert_eq!(
        other_port.get(&target).text(),
        "error: ErrorCode::HttpRequestDenied"
    );
}

#[test]
fn a_bad_outbound_pattern_is_a_load_error_with_its_line() {
    let setup = Setup::new().with(&component("http"), "web").sidecar(
        "web",
        "routes = [\"/web/*\"]\nallowed_outbound_hosts = [\"example.com\"]\n",
    );
    let server = setup.start(&[]);
    server.wait_for_log(|l| {
        l.contains("web.toml: line 2: allowed_outbound_hosts: \"example.com\": no scheme")
    });
    assert_eq!(server.get("/web/report").status, 404, "not routed");
}

#[test]
fn a_wasi_cli_run_component_runs_as_cgi_over_wasi() {
    let setup = Setup::new()
        .with(&guest_component("echo"), "echo")
        .with(&guest_component("hostile"), "hostile");
    let server = setup.start(&["--plugin-timeout", "2", "--plugin-memory", "32"]);
    server
        .wait_for_plugin_line("Plugin echo: /echo /echo/* (all methods; CGI-over-WASI component)");
    let r = Response::parse(
        &server.raw(b"POST /echo/x?y=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"),
        false,
    )
    .expect("response");
    let text = r.text();
    assert_eq!(line(&text, "SCRIPT_NAME="), Some("/echo"));
    assert_eq!(line(&text, "PATH_INFO="), Some("/x"));
    assert_eq!(line(&text, "QUERY_STRING="), Some("y=1"));
    assert!(text.ends_with("--body 5 bytes--\nhello"), "{text}");

    assert_eq!(server.get("/hostile?panic").status, 500);
    assert_eq!(server.get("/hostile?hog").status, 500);
    server.wait_for_log(|l| l == "[plugin hostile] memory limit of 32 MiB reached");
    assert_eq!(server.get("/hostile?spin").status, 504);
    assert_eq!(server.get("/hostile?ok").text(), "ok\n");
}

#[test]
fn components_of_other_kinds_are_refused_with_what_they_are() {
    let setup = Setup::new()
        .with(&component("test_components"), "library")
        .with(&component("missing_import"), "needs-kv")
        .with(&component("http"), "web");
    let server = setup.start(&[]);
    server.wait_for_log(|l| {
        l.contains("library.wasm: a component that exports none of wasi:http/handler@0.3, wasi:http/incoming-handler@0.2 and wasi:cli/run@0.2 (it exports nothing)")
    });
    server.wait_for_log(|l| {
        l.contains("needs-kv.wasm: cannot link: component imports instance `test:missing/kv`")
    });
    assert_eq!(server.get("/library").status, 404);
    assert_eq!(server.get("/needs-kv").status, 404);
    assert_eq!(server.get("/web/status?200").status, 200, "the rest serve");
}

#[test]
fn a_module_replaced_by_a_component_is_reloaded_as_one() {
    let setup = Setup::new().with(&support::guest("echo"), "live");
    let server = setup.start(&[]);
    assert!(server.get("/live").text().contains("SCRIPT_NAME=/live"));
    install_file(&setup.plugins(), &component("http"), "live");
    let started = Instant::now();
    while server.get("/live/status?200").text() != "status ok" {
        assert!(started.elapsed() < Duration::from_secs(10), "not reloaded");
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = server.stdout_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Plugin live:") && l.contains("wasi:http component")),
        "{lines:?}"
    );
}

#[test]
fn reuse_is_refused_for_a_cgi_over_wasi_command_which_may_start_only_once() {
    let setup = Setup::new()
        .plugin("echo", "echo")
        .sidecar("echo", "[reuse]\nrequests = 10\n");
    let server = setup.start(&[]);
    server.wait_for_log(|l| {
        l.contains(
            "echo.wasm: its sidecar asks for [reuse], which only a wasi:http component can have",
        )
    });
    assert_eq!(server.get("/echo").status, 404, "left out");
}
