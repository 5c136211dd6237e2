//! End to end, over raw sockets: request parsing, limits, framing, keep-alive,
//! timeouts, the connection cap and the access log.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::{Response, Server, read_response, read_to_close, site, write};

fn server() -> (tempfile::TempDir, Server) {
    let dir = site();
    write(dir.path(), "f.txt", "hello");
    let server = Server::start(dir.path(), &[]);
    (dir, server)
}

/// Sends `raw`; the server must answer `status` with its error page, a real
/// status line, and close the connection.
fn assert_rejected(server: &Server, raw: &[u8], status: u16) -> Response {
    let bytes = server.raw(raw);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 "),
        "no status line for {raw:?}: {text:?}"
    );
    let r = Response::parse(&bytes, false).unwrap_or_else(|| panic!("bad response {text:?}"));
    assert_eq!(r.status, status, "{raw:?} → {text}");
    assert_eq!(r.header("connection"), Some("close"), "{raw:?}");
    assert!(
        r.text().contains(&format!("<p>Error code: {status}</p>")),
        "{text}"
    );
    assert!(r.rest.is_empty(), "nothing after the error: {text:?}");
    r
}

#[test]
fn malformed_request_lines_get_400_with_pythons_message() {
    let (_dir, server) = server();
    let r = assert_rejected(&server, b"GARBAGE\r\n\r\n", 400);
    assert!(
        r.text()
            .contains("Message: Bad request syntax ('GARBAGE')."),
        "{}",
        r.text()
    );
    assert_rejected(&server, b"GET / HTTP/1.1 extra\r\nHost: t\r\n\r\n", 400);
    assert_rejected(&server, b"GET\r\n\r\n", 400);
    assert_rejected(&server, b"GET nopath HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    assert_rejected(&server, b"G@T / HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    assert_rejected(&server, b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    assert_rejected(
        &server,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        400,
    );
}

#[test]
fn http_0_9_style_requests_are_refused_not_hung() {
    let (_dir, server) = server();
    assert_rejected(&server, b"GET /\r\n", 400);
}

#[test]
fn bad_versions() {
    let (_dir, server) = server();
    let r = assert_rejected(&server, b"GET / HTTP/2.0\r\n\r\n", 505);
    assert!(
        r.text().contains("Invalid HTTP version (2.0)"),
        "{}",
        r.text()
    );
    assert_rejected(&server, b"GET / HTTP/3.0\r\n\r\n", 505);
    let r = assert_rejected(&server, b"GET / HTTP/1\r\n\r\n", 400);
    assert!(r.text().contains("Bad request version"), "{}", r.text());
    assert_rejected(&server, b"GET / HTTP/one.one\r\n\r\n", 400);
    assert_rejected(&server, b"GET / HTTX/1.1\r\n\r\n", 400);
    assert_rejected(&server, b"GET / http/1.1\r\n\r\n", 400);
}

#[test]
fn higher_minor_version_is_served_as_1_1() {
    let (_dir, server) = server();
    let r = Response::parse(
        &server.raw(b"GET /f.txt HTTP/1.7\r\nHost: t\r\nConnection: close\r\n\r\n"),
        false,
    )
    .expect("response");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
}

#[test]
fn oversize_request_line_is_414() {
    let (_dir, server) = server();
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(20_000));
    assert_rejected(&server, long.as_bytes(), 414);
    // Even one that never ends, and one far beyond any buffer.
    let endless = format!("GET /{}", "a".repeat(100_000));
    assert_rejected(&server, endless.as_bytes(), 414);
    let line = server.wait_for_log(|l| l.contains(" 414 "));
    assert!(
        line.contains("] \"\" 414 "),
        "an unloggable line is logged as \"\", as Python does: {line}"
    );
}

#[test]
fn too_many_or_too_large_headers_are_431() {
    let (_dir, server) = server();
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = assert_rejected(
        &server,
        format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes(),
        431,
    );
    assert!(r.text().contains("Too many headers"), "{}", r.text());
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "v".repeat(100_000)
    );
    assert_rejected(&server, big.as_bytes(), 431);
    // A hundred fields (Host, Connection and 98 more) is within the limit.
    let fine: String = (0..98).map(|i| format!("X-H{i}: v\r\n")).collect();
    let raw = format!("GET /f.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{fine}\r\n");
    assert_eq!(
        Response::parse(&server.raw(raw.as_bytes()), false)
            .expect("r")
            .status,
        200
    );
}

#[test]
fn content_length_with_transfer_encoding_is_400_and_closes_in_either_order() {
    let (_dir, server) = server();
    // The body would smuggle a second request if either framing were believed.
    let smuggle = "GET /f.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    for framing in [
        format!("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggle}"),
        format!("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n{smuggle}"),
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: t\r\n{framing}");
        let r = assert_rejected(&server, raw.as_bytes(), 400);
        assert!(
            r.text().contains("Content-Length with Transfer-Encoding"),
            "{}",
            r.text()
        );
    }
}

#[test]
fn conflicting_or_malformed_content_length_is_400() {
    let (_dir, server) = server();
    assert_rejected(
        &server,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
    );
    assert_rejected(
        &server,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc",
        400,
    );
    assert_rejected(
        &server,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3 4\r\n\r\nabc",
        400,
    );
    assert_rejected(
        &server,
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    assert_rejected(
        &server,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n",
        400,
    );
    assert_rejected(
        &server,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
    );
}

#[test]
fn header_syntax_that_parsers_disagree_on_is_400() {
    let (_dir, server) = server();
    assert_rejected(
        &server,
        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n",
        400,
    );
    assert_rejected(&server, b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400);
    assert_rejected(
        &server,
        b"GET / HTTP/1.1\r\nHost: t\r\nBad\x00Name: v\r\n\r\n",
        400,
    );
    assert_rejected(&server, b"GET / HTTP/1.1\r\n\r\n", 400);
    assert_rejected(
        &server,
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
    );
}

#[test]
fn method_nothing_handles_is_501_like_python() {
    let (_dir, server) = server();
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "get", "BREW"] {
        let r = server.request(method, "/f.txt", &[]);
        assert_eq!(r.status, 501, "{method}");
        assert!(
            r.text()
                .contains(&format!("Message: Unsupported method ('{method}').")),
            "{}",
            r.text()
        );
    }
}

#[test]
fn no_body_for_head_errors_or_304() {
    let (_dir, server) = server();
    let r = server.request("HEAD", "/missing", &[]);
    assert_eq!(r.status, 404);
    assert!(
        r.header("content-length").is_some_and(|l| l != "0"),
        "HEAD carries GET's length"
    );
    let raw = server.raw(b"HEAD /missing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(
        raw.ends_with(b"\r\n\r\n"),
        "no body after the head: {:?}",
        String::from_utf8_lossy(&raw)
    );
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let (_dir, server) = server();
    let mut stream = server.connect();
    for _ in 0..5 {
        stream
            .write_all(b"GET /f.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
        let r = read_response(&mut stream, false);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(r.header("connection"), None);
    }
    // Errors that leave the framing intact keep the connection too.
    stream
        .write_all(b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    assert_eq!(read_response(&mut stream, false).status, 404);
    stream
        .write_all(b"HEAD /f.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    assert_eq!(read_response(&mut stream, true).status, 200);
    stream
        .write_all(b"GET /f.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    let rest = read_to_close(&mut stream);
    let r = Response::parse(&rest, false).expect("last response");
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_dir, server) = server();
    let bytes = server.raw(
        b"GET /f.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /missing HTTP/1.1\r\nHost: t\r\n\r\n\
          HEAD /f.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let first = Response::parse(&bytes, false).expect("first");
    assert_eq!(first.status, 200);
    let second = Response::parse(&first.rest, false).expect("second");
    assert_eq!(second.status, 404);
    let third = Response::parse(&second.rest, true).expect("third");
    assert_eq!(third.status, 200);
    assert!(third.rest.is_empty());
}

#[test]
fn http_1_0_closes_unless_keep_alive_is_asked() {
    let (_dir, server) = server();
    let r = Response::parse(&server.raw(b"GET /f.txt HTTP/1.0\r\n\r\n"), false).expect("r");
    assert_eq!(r.status, 200);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /f.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .expect("send");
    let r = read_response(&mut stream, false);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    stream
        .write_all(b"GET /f.txt HTTP/1.0\r\n\r\n")
        .expect("send");
    assert_eq!(
        Response::parse(&read_to_close(&mut stream), false)
            .expect("r")
            .status,
        200
    );
}

#[test]
fn protocol_http_1_0_closes_after_every_response() {
    let dir = site();
    write(dir.path(), "f.txt", "hello");
    let server = Server::start(dir.path(), &["-p", "HTTP/1.0"]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /f.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let bytes = read_to_close(&mut stream);
    let r = Response::parse(&bytes, false).expect("r");
    assert_eq!(r.version, "HTTP/1.0");
    assert_eq!(r.body, b"hello");
}

#[test]
fn unread_request_body_is_drained_so_keep_alive_continues() {
    let (_dir, server) = server();
    let mut stream = server.connect();
    stream
        .write_all(b"POST /f.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde")
        .expect("send");
    assert_eq!(read_response(&mut stream, false).status, 501);
    stream.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").expect("send");
    assert_eq!(read_response(&mut stream, false).status, 501);
    stream
        .write_all(b"GET /f.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    assert_eq!(read_response(&mut stream, false).body, b"hello");
}

#[test]
fn large_unread_body_closes_the_connection_instead_of_reading_it() {
    let (_dir, server) = server();
    let mut stream = server.connect();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000000\r\n\r\npartial")
        .expect("send");
    let r = Response::parse(&read_to_close(&mut stream), false).expect("r");
    assert_eq!(r.status, 501);
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn leading_empty_lines_are_ignored() {
    let (_dir, server) = server();
    let r = Response::parse(
        &server.raw(b"\r\n\r\nGET /f.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        false,
    )
    .expect("r");
    assert_eq!(r.status, 200);
}

#[test]
fn absolute_form_targets_are_understood() {
    let (_dir, server) = server();
    let r = server.get("http://example.com/f.txt");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
}

#[test]
fn slow_request_head_gets_408_after_the_header_timeout() {
    let dir = site();
    let server = Server::start(dir.path(), &["--header-timeout", "1"]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        .expect("send");
    let started = Instant::now();
    let r = Response::parse(&read_to_close(&mut stream), false).expect("408");
    assert_eq!(r.status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn silent_connection_is_closed_after_the_header_timeout() {
    let dir = site();
    let server = Server::start(dir.path(), &["--header-timeout", "1"]);
    let mut stream = server.connect();
    assert!(
        read_to_close(&mut stream).is_empty(),
        "closed without a response"
    );
}

#[test]
fn idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let dir = site();
    write(dir.path(), "f.txt", "hello");
    let server = Server::start(dir.path(), &["--keep-alive-timeout", "1"]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /f.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    assert_eq!(read_response(&mut stream, false).status, 200);
    let mut buf = [0u8; 16];
    assert_eq!(
        stream.read(&mut buf).expect("read"),
        0,
        "server closed the idle connection"
    );
}

#[test]
fn connections_beyond_the_cap_wait_until_one_closes() {
    let dir = site();
    write(dir.path(), "f.txt", "hello");
    let server = Server::start(dir.path(), &["--max-connections", "1"]);
    let mut first = server.connect();
    first
        .write_all(b"GET /f.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    assert_eq!(read_response(&mut first, false).status, 200);

    let mut second = server.connect();
    second
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    second
        .write_all(b"GET /f.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut buf = [0u8; 64];
    let waiting = second.read(&mut buf);
    assert!(
        matches!(&waiting, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "second connection must wait: {waiting:?}"
    );
    drop(first);
    second
        .set_read_timeout(Some(support::READ_TIMEOUT))
        .expect("timeout");
    let r =
        Response::parse(&read_to_close(&mut second), false).expect("served once the first closed");
    assert_eq!(r.status, 200);
}

#[test]
fn access_log_uses_pythons_format() {
    let (_dir, server) = server();
    server.get("/f.txt");
    server.get("/missing");
    let line = server.wait_for_log(|l| l.contains("GET /f.txt"));
    let (prefix, rest) = line.split_once(" [").expect("timestamp");
    assert_eq!(prefix, "127.0.0.1 - -");
    let (time, request) = rest.split_once("] ").expect("timestamp end");
    assert_eq!(time.len(), "21/Nov/2026 14:00:00".len(), "{time}");
    assert_eq!(request, "\"GET /f.txt HTTP/1.1\" 200 5");
    let line = server.wait_for_log(|l| l.contains("GET /missing"));
    let size: usize = line
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("size logged");
    assert!(
        line.contains("\"GET /missing HTTP/1.1\" 404 ") && size > 0,
        "{line}"
    );
}

#[test]
fn access_log_escapes_control_characters() {
    let (_dir, server) = server();
    server.raw(b"GET /\x1b[31mred HTTP/1.1\r\nHost: t\r\n\r\n");
    let line = server.wait_for_log(|l| l.contains(" 400 "));
    assert!(line.contains("\\x1b[31mred"), "{line}");
    assert!(!line.contains('\x1b'), "{line:?}");
}

#[test]
fn quiet_silences_the_access_log() {
    let dir = site();
    write(dir.path(), "f.txt", "hello");
    let server = Server::start(dir.path(), &["-q"]);
    assert_eq!(server.get("/f.txt").status, 200);
    assert_eq!(server.get("/missing").status, 404);
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.log().is_empty(), "{:?}", server.log());
}

#[test]
fn expect_100_continue_on_a_request_nothing_reads_is_answered_at_once_and_closed() {
    let (_dir, server) = server();
    let mut stream = server.connect();
    // The body is never sent: the client waits for 100 Continue.
    stream
        .write_all(
            b"POST /f.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .expect("send");
    let bytes = read_to_close(&mut stream);
    let r = Response::parse(&bytes, false).expect("final response without the body");
    assert_eq!(r.status, 501, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn request_dribbled_one_byte_at_a_time_is_served() {
    let (_dir, server) = server();
    let mut stream = server.connect();
    stream.set_nodelay(true).expect("nodelay");
    let request =
        b"GET /f.txt HTTP/1.1\r\nHost: t\r\nX-Padding: abcdefghij\r\nConnection: close\r\n\r\n";
    for byte in request {
        stream.write_all(std::slice::from_ref(byte)).expect("send");
        std::thread::sleep(Duration::from_millis(1));
    }
    let r = Response::parse(&read_to_close(&mut stream), false).expect("response");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
}

#[test]
fn header_line_that_never_ends_is_431_not_a_hang() {
    let (_dir, server) = server();
    let mut stream = server.connect();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Endless: ")
        .expect("send");
    let chunk = vec![b'a'; 8192];
    for _ in 0..12 {
        if stream.write_all(&chunk).is_err() {
            break; // the server already answered and closed
        }
    }
    let r = Response::parse(&read_to_close(&mut stream), false).expect("response");
    assert_eq!(r.status, 431);
}

#[test]
fn trickled_unread_body_cannot_hold_the_connection() {
    let dir = site();
    let server = Server::start(dir.path(), &["--io-timeout", "1"]);
    let mut stream = server.connect();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        .expect("send");
    let mut writer = stream.try_clone().expect("clone");
    // One byte every 200 ms: each read is well within the I/O timeout.
    let trickle = std::thread::spawn(move || {
        for _ in 0..50 {
            if writer.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let started = Instant::now();
    let bytes = read_to_close(&mut stream);
    assert_eq!(Response::parse(&bytes, false).expect("501").status, 501);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after the drain deadline, not after the whole trickle: {:?}",
        started.elapsed()
    );
    drop(stream);
    trickle.join().expect("trickle");
}
