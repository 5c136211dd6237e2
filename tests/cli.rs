//! End to end: the command line, startup errors, binding and shutdown.

mod support;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Response, Server, binary, site, write};

fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(binary()).args(args).output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn banner_reads_like_pythons_with_the_bound_port() {
    let dir = site();
    let server = Server::start(dir.path(), &[]);
    let port = server.addr.port();
    assert_ne!(port, 0);
    assert_eq!(
        server.banner,
        format!("Serving HTTP on 127.0.0.1 port {port} (http://127.0.0.1:{port}/) ...")
    );
}

#[test]
fn default_bind_is_dual_stack() {
    let dir = site();
    write(dir.path(), "f.txt", "both");
    let server = Server::start_raw(&["0", "-d", dir.path().to_str().expect("utf-8")]);
    let port = server.addr.port();
    if server.banner.starts_with("Serving HTTP on 0.0.0.0") {
        eprintln!("skipped: no IPv6 on this machine");
        return;
    }
    assert_eq!(
        server.banner,
        format!("Serving HTTP on :: port {port} (http://[::]:{port}/) ...")
    );
    for addr in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let raw = b"GET /f.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        let bytes = support::exchange(addr.parse().expect("addr"), raw);
        let r = Response::parse(&bytes, false).expect("response");
        assert_eq!(r.body, b"both", "{addr}");
    }
    let line = server.wait_for_log(|l| l.contains("GET /f.txt"));
    assert!(
        line.starts_with("127.0.0.1 - - ["),
        "IPv4 client shown as IPv4: {line}"
    );
}

#[test]
fn ipv6_bind_is_bracketed_in_the_banner() {
    let dir = site();
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback");
        return;
    }
    let server = Server::start_raw(&["0", "-b", "::1", "-d", dir.path().to_str().expect("utf-8")]);
    let port = support::banner_port(&server.banner).expect("port");
    assert_eq!(
        server.banner,
        format!("Serving HTTP on ::1 port {port} (http://[::1]:{port}/) ...")
    );
}

#[test]
fn directory_defaults_to_the_current_directory() {
    let dir = site();
    write(dir.path(), "here.txt", "cwd");
    let server = Server::start_in(Some(dir.path()), &["0", "-b", "127.0.0.1"]);
    let body = server.get("/here.txt").body;
    assert_eq!(body, b"cwd");
}

#[test]
fn bad_flags_exit_2_with_one_clear_line() {
    for args in [
        &["--no-such-flag"][..],
        &["notaport"],
        &["70000"],
        &["-p", "HTTP/2"],
        &["--header-timeout", "0"],
    ] {
        let (code, stderr) = run_to_exit(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line, got {stderr:?}"
        );
        assert!(stderr.starts_with("wasmhttpd: "), "{stderr}");
    }
}

#[test]
fn missing_directory_exits_1_with_one_clear_line() {
    let (code, stderr) = run_to_exit(&["0", "-d", "/no/such/directory"]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains("/no/such/directory"), "{stderr}");
}

#[test]
fn port_in_use_exits_1_with_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let (code, stderr) = run_to_exit(&[&port, "-b", "127.0.0.1"]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains("in use"), "{stderr}");
}

#[test]
fn a_bad_cgi_dir_or_cache_dir_exits_1_with_one_clear_line() {
    let (code, stderr) = run_to_exit(&["0", "--cgi-dir", "cgi-bin"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains("must start with /"), "{stderr}");
    let file = tempfile::NamedTempFile::new().expect("file");
    let under_a_file = file.path().join("cache");
    let (code, stderr) = run_to_exit(&[
        "0",
        "-b",
        "127.0.0.1",
        "--cgi",
        "--cache-dir",
        under_a_file.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains("cannot use cache directory"), "{stderr}");
}

#[test]
fn unresolvable_bind_address_exits_1() {
    let (code, stderr) = run_to_exit(&["0", "-b", "no-such-host.invalid"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no-such-host.invalid"), "{stderr}");
}

#[test]
fn help_and_version_exit_0() {
    let out = Command::new(binary()).arg("--help").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--bind",
        "--directory",
        "--protocol",
        "--quiet",
        "--follow-symlinks",
        "[PORT]",
    ] {
        assert!(help.contains(flag), "help mentions {flag}");
    }
    let out = Command::new(binary())
        .arg("--version")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn sigterm_lets_the_response_in_flight_finish_then_exits_0() {
    const SIZE: u64 = 64 << 20;
    let dir = site();
    std::fs::File::create(dir.path().join("big.bin"))
        .expect("create")
        .set_len(SIZE)
        .expect("len");
    let mut server = Server::start(dir.path(), &["-q"]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let mut buf = vec![0u8; 65536];
    let first = stream.read(&mut buf).expect("first bytes");
    assert!(first > 0);

    server.signal("TERM");
    // New connections are no longer accepted once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(server.addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "listener still open after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The response in flight completes, announcing the close.
    let mut received = first as u64;
    loop {
        let n = stream.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        received += n as u64;
    }
    // Head (a few hundred bytes) plus the whole body.
    assert!(
        received > SIZE && received - SIZE < 1024,
        "whole body received ({received} bytes)"
    );
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0));
}

#[test]
fn sigterm_with_only_idle_connections_exits_promptly() {
    let dir = site();
    write(dir.path(), "f.txt", "x");
    let mut server = Server::start(dir.path(), &[]);
    let mut idle = server.connect();
    idle.write_all(b"GET /f.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    support::read_response(&mut idle, false);
    let started = Instant::now();
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "idle connections do not hold shutdown"
    );
}

#[test]
fn sigint_prints_pythons_farewell_and_exits_0() {
    let dir = site();
    let mut child = Command::new(binary())
        .args([
            "0",
            "-b",
            "127.0.0.1",
            "-d",
            dir.path().to_str().expect("utf-8"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut banner = [0u8; 16];
    stdout.read_exact(&mut banner).expect("banner");
    let status = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("rest of stdout");
    assert!(
        rest.contains("\nKeyboard interrupt received, exiting."),
        "{rest:?}"
    );
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}
