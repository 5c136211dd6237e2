//! End to end: the framing corpus. Malformed and ambiguous requests, each
//! sent with a pipelined follow-up (`GET /secret.txt`) to every backend
//! kind — static files, classic CGI, a CGI-over-WASI plugin and a wasi:http
//! component — and answered as a strict parser would: either one error
//! response and a close, or exactly the responses that parser gives. A
//! request hidden in another is never answered.
//!
//! The cases come from RFC 9112 (§2.2 line ends, §3 request line, §5 field
//! syntax, §6 framing, §7.1 chunked coding), from the discrepancies the
//! HTTP Garden's differential fuzzing published (empty or signed
//! `Content-Length`, `,chunked`, `chunked, identity`, bare CR, NUL, LF-only
//! lines, obs-fold, size overflow, chunk-size junk, duplicate or conflicting
//! framing) and from the smuggling defects found in this server (a chunk
//! error that resumed parsing one byte later; `Connection: keep-alive,
//! close`).

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::{Response, Server, Setup, connect, write};

/// What a strict parser makes of a case.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// One request with this body, then the follow-up: two 200s.
    Body(&'static str),
    /// Refused: one error response (4xx or 5xx) with `Connection: close`,
    /// then the connection closes.
    Refused,
    /// Exactly these statuses, then the connection closes (the follow-up's
    /// `Connection: close`, or the server's).
    Statuses(&'static [u16]),
}

use Expect::{Body, Refused, Statuses};

/// The follow-up request pipelined after every case. It closes the
/// connection, so a case that leaves the connection usable ends too.
const FOLLOW_UP: &str = "GET /secret.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
/// The follow-up's answer: it must appear only where a strict parser would
/// see the follow-up as a request.
const SECRET: &str = "SECRET-FOLLOW-UP";

/// `{M}` is the backend's method, `{T}` its target.
const REQ: &str = "{M} {T} HTTP/1.1\r\nHost: t\r\n";

/// The corpus: a name, the request up to where the follow-up starts, and
/// what a strict parser makes of it. `{R}` stands for [`REQ`].
#[rustfmt::skip]
fn cases() -> Vec<(String, String, Expect)> {
    let mut cases: Vec<(String, String, Expect)> = Vec::new();
    let mut add = |name: &str, raw: &str, expect: Expect| {
        cases.push((name.to_string(), raw.replace("{R}", REQ), expect));
    };

    // Content-Length (RFC 9112 §6.2, §6.3; HTTP Garden).
    add("length", "{R}Content-Length: 5\r\n\r\nhello", Body("hello"));
    add("length leading OWS", "{R}Content-Length:   5\r\n\r\nhello", Body("hello"));
    add("length trailing OWS", "{R}Content-Length: 5 \t\r\n\r\nhello", Body("hello"));
    add("length repeated, equal", "{R}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", Body("hello"));
    add("length zero", "{R}Content-Length: 0\r\n\r\n", Body(""));
    add("length leading zeros", "{R}Content-Length: 005\r\n\r\nhello", Body("hello"));
    add("length empty", "{R}Content-Length: \r\n\r\nhello", Refused);
    add("length plus sign", "{R}Content-Length: +5\r\n\r\nhello", Refused);
    add("length minus sign", "{R}Content-Length: -5\r\n\r\nhello", Refused);
    add("length list equal", "{R}Content-Length: 5, 5\r\n\r\nhello", Refused);
    add("length list differing", "{R}Content-Length: 5, 6\r\n\r\nhello", Refused);
    add("length comma first", "{R}Content-Length: ,5\r\n\r\nhello", Refused);
    add("length conflicting fields", "{R}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello", Refused);
    add("length hex", "{R}Content-Length: 0x5\r\n\r\nhello", Refused);
    add("length decimal point", "{R}Content-Length: 5.0\r\n\r\nhello", Refused);
    add("length exponent", "{R}Content-Length: 5e0\r\n\r\nhello", Refused);
    add("length overflow", "{R}Content-Length: 18446744073709551621\r\n\r\nhello", Refused);
    add("length twenty digits", "{R}Content-Length: 00000000000000000005\r\n\r\nhello", Refused);
    add("length unicode digit", "{R}Content-Length: \u{0665}\r\n\r\nhello", Refused);
    add("length NUL", "{R}Content-Length: 5\0\r\n\r\nhello", Refused);
    add("length quoted", "{R}Content-Length: \"5\"\r\n\r\nhello", Refused);
    add("length space inside", "{R}Content-Length: 5 5\r\n\r\nhello", Refused);
    add("length space before colon", "{R}Content-Length : 5\r\n\r\nhello", Refused);
    add("length shorter than body", "{R}Content-Length: 3\r\n\r\nhello", Statuses(&[200, 501]));
    add("length underscore is another field", "{R}Content_Length: 5\r\n\r\nhello", Statuses(&[200, 501]));
    add("length obs-folded", "{R}Content-Length:\r\n 5\r\n\r\nhello", Refused);

    // Transfer-Encoding (§6.1, §6.3).
    let body = "5\r\nhello\r\n0\r\n\r\n";
    let te = |value: &str| format!("{{R}}Transfer-Encoding: {value}\r\n\r\n{body}");
    add("chunked", &te("chunked"), Body("hello"));
    add("chunked upper case", &te("CHUNKED"), Body("hello"));
    add("chunked tab before", &te("\tchunked"), Body("hello"));
    add("chunked with length", &format!("{{R}}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n{body}"), Refused);
    add("length with chunked", &format!("{{R}}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n{body}"), Refused);
    add("chunked twice in one field", &te("chunked, chunked"), Refused);
    add("chunked in two fields", &format!("{{R}}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n{body}"), Refused);
    add("chunked then identity", &te("chunked, identity"), Refused);
    add("identity", &te("identity"), Refused);
    add("identity then chunked", &te("identity, chunked"), Refused);
    add("gzip then chunked", &te("gzip, chunked"), Refused);
    add("empty element then chunked", &te(",chunked"), Refused);
    add("chunked then empty element", &te("chunked,"), Refused);
    add("xchunked", &te("xchunked"), Refused);
    add("chunked with a suffix", &te("chunked-false"), Refused);
    add("chunked quoted", &te("\"chunked\""), Refused);
    add("chunked NUL", &te("chunked\0"), Refused);
    add("chunked vertical tab", &te("\x0bchunked"), Refused);
    add("chunked empty value", &te(""), Refused);
    add("chunked space before colon", &format!("{{R}}Transfer-Encoding : chunked\r\n\r\n{body}"), Refused);
    add("chunked obs-folded", &format!("{{R}}Transfer-Encoding:\r\n chunked\r\n\r\n{body}"), Refused);
    add("chunked folded into another field", &format!("{{R}}X-A: b\r\n Transfer-Encoding: chunked\r\n\r\n{body}"), Refused);
    add("chunked in HTTP/1.0", &format!("{{M}} {{T}} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n{body}"), Refused);
    add("underscore is another field", &format!("{{R}}Transfer_Encoding: chunked\r\n\r\n{body}"), Statuses(&[200, 400]));

    // Chunk-size lines (§7.1) and chunk data.
    let chunked = |rest: &str| format!("{{R}}Transfer-Encoding: chunked\r\n\r\n{rest}");
    add("data longer than its size", &chunked("3\r\nabcX\r\n0\r\n\r\n"), Refused);
    add("data shorter than its size", &chunked("5\r\nabc\r\n0\r\n\r\n"), Refused);
    add("bare LF after size", &chunked("5\nhello\r\n0\r\n\r\n"), Refused);
    add("bare CR after size", &chunked("5\rhello\r\n0\r\n\r\n"), Refused);
    add("bare LF after data", &chunked("5\r\nhello\n0\r\n\r\n"), Refused);
    add("bare CR after data", &chunked("5\r\nhello\r0\r\n\r\n"), Refused);
    add("bare LF after last size", &chunked("5\r\nhello\r\n0\n\r\n"), Refused);
    add("bare LF at the end", &chunked("5\r\nhello\r\n0\r\n\n"), Refused);
    add("no CRLF after data", &chunked("5\r\nhello0\r\n\r\n"), Refused);
    add("junk after size", &chunked("5 zz\r\nhello\r\n0\r\n\r\n"), Refused);
    add("second number after tab", &chunked("5\t6\r\nhello\r\n0\r\n\r\n"), Refused);
    add("second number after space", &chunked("5 6\r\nhello\r\n0\r\n\r\n"), Refused);
    add("space before size", &chunked(" 5\r\nhello\r\n0\r\n\r\n"), Refused);
    add("size with plus", &chunked("+5\r\nhello\r\n0\r\n\r\n"), Refused);
    add("size with minus", &chunked("-5\r\nhello\r\n0\r\n\r\n"), Refused);
    add("size with 0x", &chunked("0x5\r\nhello\r\n0\r\n\r\n"), Refused);
    add("size with underscore", &chunked("0_5\r\nhello\r\n0\r\n\r\n"), Refused);
    add("size NUL", &chunked("5\0\r\nhello\r\n0\r\n\r\n"), Refused);
    add("size missing", &chunked("\r\nhello\r\n0\r\n\r\n"), Refused);
    add("size overflow", &chunked("10000000000000005\r\nhello\r\n0\r\n\r\n"), Refused);
    add("size overflow to zero", &chunked("10000000000000000\r\n\r\n"), Refused);
    add("size leading zeros", &chunked("0005\r\nhello\r\n0\r\n\r\n"), Body("hello"));
    add("size upper-case hex", &chunked("A\r\n0123456789\r\n0\r\n\r\n"), Body("0123456789"));
    add("size lower-case hex", &chunked("a\r\n0123456789\r\n0\r\n\r\n"), Body("0123456789"));
    add("two chunks", &chunked("2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"), Body("hello"));
    add("empty body", &chunked("0\r\n\r\n"), Body(""));
    add("size with trailing BWS", &chunked("5 \t \r\nhello\r\n0\r\n\r\n"), Body("hello"));
    add("last chunk missing", &chunked("5\r\nhello\r\n"), Refused);
    add("last chunk's CRLF missing", &chunked("5\r\nhello\r\n0\r\n"), Refused);
    add("last chunk with data", &chunked("0\r\nhello\r\n\r\n"), Refused);

    // Chunk extensions.
    add("extension", &chunked("5;name\r\nhello\r\n0\r\n\r\n"), Body("hello"));
    add("extension with value", &chunked("5;a=b\r\nhello\r\n0\r\n\r\n"), Body("hello"));
    add("extension quoted", &chunked("5;a=\"b c;d\"\r\nhello\r\n0\r\n\r\n"), Body("hello"));
    add("extension with BWS", &chunked("5 ; a = b\r\nhello\r\n0\r\n\r\n"), Body("hello"));
    add("extensions, several", &chunked("5;a;b=c;d\r\nhello\r\n0;e\r\n\r\n"), Body("hello"));
    add("extension empty", &chunked("5;\r\nhello\r\n0\r\n\r\n"), Refused);
    add("extension without name", &chunked("5;=b\r\nhello\r\n0\r\n\r\n"), Refused);
    add("extension without value", &chunked("5;a=\r\nhello\r\n0\r\n\r\n"), Refused);
    add("extension unterminated quote", &chunked("5;a=\"b\r\nhello\r\n0\r\n\r\n"), Refused);
    add("extension bare LF", &chunked("5;a\nhello\r\n0\r\n\r\n"), Refused);
    add("extension bare CR", &chunked("5;a\rhello\r\n0\r\n\r\n"), Refused);
    add("extension NUL", &chunked("5;a\0\r\nhello\r\n0\r\n\r\n"), Refused);
    add("extension control", &chunked("5;a=\x01\r\nhello\r\n0\r\n\r\n"), Refused);
    add("extension two values", &chunked("5;a=b c\r\nhello\r\n0\r\n\r\n"), Refused);
    let long_extensions: String = (0..5)
        .map(|_| format!("1;e={}\r\nx\r\n", "v".repeat(4000)))
        .collect();
    add("extensions past 16 KiB", &chunked(&format!("{long_extensions}0\r\n\r\n")), Refused);

    // Trailers (§7.1.2).
    add("trailer", &chunked("5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"), Body("hello"));
    add("trailers, several", &chunked("5\r\nhello\r\n0\r\nA: 1\r\nB:\r\n\r\n"), Body("hello"));
    add("trailer Content-Length ignored", &chunked("5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n"), Body("hello"));
    add("trailer bare LF", &chunked("5\r\nhello\r\n0\r\nX: 1\n\r\n"), Refused);
    add("trailer no colon", &chunked("5\r\nhello\r\n0\r\nX 1\r\n\r\n"), Refused);
    add("trailer space before colon", &chunked("5\r\nhello\r\n0\r\nX : 1\r\n\r\n"), Refused);
    add("trailer empty name", &chunked("5\r\nhello\r\n0\r\n: 1\r\n\r\n"), Refused);
    add("trailer obs-fold", &chunked("5\r\nhello\r\n0\r\nX: 1\r\n 2\r\n\r\n"), Refused);
    add("trailer NUL", &chunked("5\r\nhello\r\n0\r\nX: \0\r\n\r\n"), Refused);
    add("trailer bare CR", &chunked("5\r\nhello\r\n0\r\nX: a\rb\r\n\r\n"), Refused);
    add("trailer section unterminated", &chunked("5\r\nhello\r\n0\r\nX: 1\r\n"), Refused);
    let many_trailers = "X-Trailer: 1\r\n".repeat(1500);
    add("trailers past 16 KiB", &chunked(&format!("5\r\nhello\r\n0\r\n{many_trailers}\r\n")), Refused);

    // The request line and header fields (§2.2, §3, §5).
    add("LF-only lines", "{M} {T} HTTP/1.1\nHost: t\nContent-Length: 5\n\nhello", Body("hello"));
    add("bare CR in a field", "{R}X-A: a\rb\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("bare CR ending a field", "{R}X-A: a\rContent-Length: 5\r\n\r\nhello", Refused);
    add("NUL in a field value", "{R}X-A: a\0b\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("space in a field name", "{R}X A: b\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("empty field name", "{R}: b\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("obs-fold", "{R}X-A: a\r\n b\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("whitespace before the first field", "{M} {T} HTTP/1.1\r\n Host: t\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("missing Host", "{M} {T} HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("repeated Host", "{R}Host: u\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("HTTP/1.0 without Host", "{M} {T} HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello", Body("hello"));
    add("version lower case", "{M} {T} http/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("version 2.0", "{M} {T} HTTP/2.0\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("version missing", "{M} {T}\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("extra word in the request line", "{M} {T} HTTP/1.1 x\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("NUL in the target", "{M} {T}\0 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("bare CR in the request line", "{M} {T}\r HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("DEL in the target", "{M} {T}\x7f HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", Refused);
    add("field too long", &format!("{{R}}X-A: {}\r\nContent-Length: 5\r\n\r\nhello", "a".repeat(70_000)), Refused);
    add("empty lines before the request line", "\r\n\r\n{R}Content-Length: 5\r\n\r\nhello", Body("hello"));

    // Connection (§9.6): `close` wins in any order or combination.
    add("keep-alive then close", "{R}Connection: keep-alive, close\r\nContent-Length: 5\r\n\r\nhello", Statuses(&[200]));
    add("close then keep-alive", "{R}Connection: close, keep-alive\r\nContent-Length: 5\r\n\r\nhello", Statuses(&[200]));
    add("keep-alive and close fields", "{R}Connection: keep-alive\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello", Statuses(&[200]));
    add("HTTP/1.0 keep-alive and close", "{M} {T} HTTP/1.0\r\nConnection: keep-alive, close\r\nContent-Length: 5\r\n\r\nhello", Statuses(&[200]));
    add("HTTP/1.0 without keep-alive", "{M} {T} HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", Statuses(&[200]));
    cases
}

/// One backend: how to reach it, and what its answer's body holds.
struct Backend {
    name: &'static str,
    method: &'static str,
    target: &'static str,
    /// Whether the body of a 200 ends with the request body.
    echoes: bool,
}

const STATIC: Backend = Backend {
    name: "static",
    method: "GET",
    target: "/file.txt",
    echoes: false,
};
const CGI: Backend = Backend {
    name: "cgi",
    method: "POST",
    target: "/cgi-bin/echo.sh",
    echoes: true,
};
const WAGI: Backend = Backend {
    name: "cgi-over-wasi",
    method: "POST",
    target: "/echo",
    echoes: true,
};
const COMPONENT: Backend = Backend {
    name: "wasi:http",
    method: "POST",
    target: "/web/echo",
    echoes: true,
};

/// A server with every backend kind, and `/secret.txt`.
fn server() -> (Setup, Server) {
    let (setup, server) = support::every_backend(&[]);
    write(&setup.site(), "secret.txt", SECRET);
    (setup, server)
}

/// Every response in `bytes`, in order.
fn responses(mut bytes: &[u8]) -> Result<Vec<Response>, String> {
    let mut all = Vec::new();
    while !bytes.is_empty() {
        let Some(mut response) = Response::parse(bytes, false) else {
            return Err(format!("unparseable: {:?}", String::from_utf8_lossy(bytes)));
        };
        let rest = if response.header("transfer-encoding") == Some("chunked") {
            let (body, rest) = split_chunked(&response.body);
            let rest = rest.len();
            response.body = body;
            rest
        } else {
            response.rest.len()
        };
        bytes = &bytes[bytes.len() - rest..];
        all.push(response);
    }
    Ok(all)
}

/// A chunked body at the start of `bytes` → (decoded body, bytes after it).
fn split_chunked(mut bytes: &[u8]) -> (Vec<u8>, &[u8]) {
    let mut out = Vec::new();
    loop {
        let end = bytes
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&bytes[..end]).expect("size"), 16)
            .expect("hex size");
        bytes = &bytes[end + 2..];
        if size == 0 {
            return (out, &bytes[2..]);
        }
        out.extend_from_slice(&bytes[..size]);
        bytes = &bytes[size + 2..];
    }
}

fn run_corpus(backend: &Backend) {
    let (_setup, server) = server();
    let cases = cases();
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (name, raw, expect) in &cases {
        let raw = raw
            .replace("{M}", backend.method)
            .replace("{T}", backend.target);
        let mut stream = connect(server.addr);
        // The server may refuse and close before it has read everything.
        let _ = stream.write_all(format!("{raw}{FOLLOW_UP}").as_bytes());
        let (bytes, closed) = read_until_closed(&mut stream);
        let checked = if closed {
            check(backend, expect, &bytes)
        } else {
            Err("the connection stayed open".into())
        };
        if let Err(why) = checked {
            failures.push(format!(
                "{name}: {why}\n  sent {raw:?}\n  got {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(600)])
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed against {}:\n{}",
        failures.len(),
        cases.len(),
        backend.name,
        failures.join("\n")
    );
}

/// What arrives until the server closes (or resets) the connection, and
/// whether it did close within the read timeout.
fn read_until_closed(stream: &mut std::net::TcpStream) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

fn check(backend: &Backend, expect: &Expect, bytes: &[u8]) -> Result<(), String> {
    let answered_secret = String::from_utf8_lossy(bytes).contains(SECRET);
    let all = responses(bytes)?;
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    match *expect {
        Body(body) => {
            if statuses != [200, 200] {
                return Err(format!("statuses {statuses:?}, not [200, 200]"));
            }
            if backend.echoes && !all[0].body.ends_with(body.as_bytes()) {
                return Err(format!("body does not end with {body:?}"));
            }
            if all[1].text() != SECRET {
                return Err("the follow-up was not answered".into());
            }
        }
        Refused => {
            if answered_secret {
                return Err("the hidden follow-up was answered".into());
            }
            let [only] = all.as_slice() else {
                return Err(format!("statuses {statuses:?}, not one error"));
            };
            if !(400..600).contains(&only.status) {
                return Err(format!("status {}, not an error", only.status));
            }
            if only.header("connection") != Some("close") {
                return Err("the error does not say Connection: close".into());
            }
        }
        Statuses(expected) => {
            if statuses != expected {
                return Err(format!("statuses {statuses:?}, not {expected:?}"));
            }
            if answered_secret {
                return Err("the hidden follow-up was answered".into());
            }
        }
    }
    Ok(())
}

#[test]
fn the_corpus_against_static_files() {
    run_corpus(&STATIC);
}

#[test]
fn the_corpus_against_classic_cgi() {
    run_corpus(&CGI);
}

#[test]
fn the_corpus_against_a_cgi_over_wasi_plugin() {
    run_corpus(&WAGI);
}

#[test]
fn the_corpus_against_a_wasi_http_component() {
    run_corpus(&COMPONENT);
}

/// The smuggling defect, byte by byte: the request split at every byte
/// arrives in as many segments, and still only one error is answered.
#[test]
fn a_smuggled_request_split_at_every_byte_is_never_answered() {
    let (_setup, server) = server();
    for backend in [&STATIC, &CGI, &WAGI, &COMPONENT] {
        let raw = format!(
            "{} {} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n{FOLLOW_UP}",
            backend.method, backend.target
        );
        let mut stream = connect(server.addr);
        stream.set_nodelay(true).expect("nodelay");
        for byte in raw.as_bytes() {
            // The server may close as soon as it sees the error.
            if stream.write_all(std::slice::from_ref(byte)).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let (bytes, closed) = read_until_closed(&mut stream);
        assert!(closed, "{}: the connection stayed open", backend.name);
        check(backend, &Refused, &bytes).unwrap_or_else(|why| {
            panic!(
                "{}: {why}: {:?}",
                backend.name,
                String::from_utf8_lossy(&bytes)
            )
        });
    }
}
