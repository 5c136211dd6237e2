//! End to end: what bounds a hostile client. A body trickled a byte at a
//! time, or a response read a byte at a time, cannot hold a connection,
//! a CGI script or a plugin beyond the minimum transfer rate; every
//! backend kind is tried.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use support::{Response, Server, Setup, component, write};

/// Every backend kind that reads a body, on one server started with `args`.
fn server(args: &[&str]) -> (Setup, Server) {
    let setup = Setup::new()
        .plugin("echo", "echo")
        .with(&component("http"), "web");
    // Scripts run as nobody when the tests run as root: open the tree.
    let top = setup.site().parent().expect("parent").to_path_buf();
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    write(
        &setup.site(),
        "cgi-bin/echo.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\ncat\n",
    );
    std::fs::set_permissions(
        setup.site().join("cgi-bin/echo.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let mut all = vec!["--cgi"];
    all.extend_from_slice(args);
    let server = setup.start(&all);
    server.wait_for_plugin_line("Plugin web: /web /web/* (all methods; wasi:http component)");
    (setup, server)
}

const BODY_READERS: [&str; 3] = ["/cgi-bin/echo.sh", "/echo", "/web/echo"];

/// A body of 100 bytes, one byte every 300 ms: each read is well within
/// the I/O timeout (60 s), but the body moves at 3 bytes a second, far
/// below the floor. It is cut off with 408 after one window (2 s here),
/// not after the 30 s the whole trickle would take.
#[test]
fn a_trickled_body_is_cut_off_at_the_minimum_rate_with_408() {
    let (_setup, server) = server(&["--min-rate", "500", "--min-rate-window", "2"]);
    for target in BODY_READERS {
        let mut stream = server.connect();
        let head = format!("POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("send");
        let mut writer = stream.try_clone().expect("clone");
        let trickle = std::thread::spawn(move || {
            for _ in 0..100 {
                if writer.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let started = Instant::now();
        let bytes = support::read_to_close(&mut stream);
        let elapsed = started.elapsed();
        let r = Response::parse(&bytes, false).expect("response");
        assert_eq!(r.status, 408, "{target}");
        assert_eq!(r.header("connection"), Some("close"), "{target}");
        assert!(
            elapsed < Duration::from_secs(15),
            "{target}: cut off after {elapsed:?}, not at the floor"
        );
        drop(stream);
        trickle.join().expect("trickle");
        // The backend carries on.
        let r = server.request("POST", target, &[("Content-Length", "0")]);
        assert_eq!(r.status, 200, "{target} after the trickle");
    }
}

/// The same body sent at once is not affected by the floor.
#[test]
fn a_prompt_body_is_not_affected_by_the_floor() {
    let (_setup, server) = server(&["--min-rate", "1000000", "--min-rate-window", "1"]);
    let body = vec![b'b'; 1 << 20];
    for target in BODY_READERS {
        let mut stream = server.connect();
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("send");
        stream.write_all(&body).expect("send body");
        let r = Response::parse(&support::read_to_close(&mut stream), false).expect("response");
        assert_eq!(r.status, 200, "{target}");
    }
}

/// A client that reads a large response at 20 KiB a second (a floor of
/// 100 kB/s here): once the socket buffers are full, the writes wait, and
/// after one window of waiting the server gives the response up (its log
/// line says no size was completed), long before the file would have been
/// read.
#[test]
fn a_slow_reader_is_cut_off_at_the_minimum_rate() {
    let dir = support::site();
    let size = 48usize << 20;
    write(dir.path(), "big.bin", vec![b'z'; size]);
    let server = Server::start(
        dir.path(),
        &["--min-rate", "100000", "--min-rate-window", "2"],
    );
    let mut stream = server.connect();
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let mut reader = stream.try_clone().expect("clone");
    let slow = std::thread::spawn(move || {
        let mut received = 0usize;
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return received,
                Ok(n) => received += n,
            }
            // Past what the socket buffers take at once, read slowly.
            if received > 8 << 20 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    let started = Instant::now();
    let line = server.wait_for_log_within(Duration::from_secs(30), |l| {
        l.contains("\"GET /big.bin HTTP/1.1\" 200")
    });
    assert!(line.ends_with(" 200 -"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let received = slow.join().expect("reader");
    assert!(
        received < size,
        "the whole file was read: the floor did nothing"
    );
    // Others are served as before.
    assert_eq!(server.get("/big.bin").body.len(), size);
}
