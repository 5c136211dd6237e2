//! End to end: HTTP/2 on the plain port (prior knowledge), to every
//! backend; the static file server's answers over HTTP/2; Python's
//! handlers; bodies streaming both ways; the attacks of the last years
//! (rapid reset, CONTINUATION, SETTINGS and PING floods, a client that
//! never reads) with the server's memory, descriptors and threads sampled
//! throughout; GOAWAY on shutdown; the connection cap.
//!
//! The clients are curl (`--http2-prior-knowledge`) and, for what needs
//! frames, `tests/h2/attack.py` on Python's `h2` package (from PyPI, in a
//! virtual environment the tests make once under `target/toolchains/h2`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::{
    Curled, Sampler, Server, Setup, Usage, curl, every_backend, site, usage, workspace, write,
};

/// curl with `args` against `path` on `server`, over HTTP/2 without TLS.
fn h2c(server: &Server, path: &str, args: &[&str]) -> Curled {
    let mut all = vec!["--http2-prior-knowledge"];
    all.extend_from_slice(args);
    curl(
        &all,
        &format!("http://127.0.0.1:{}{path}", server.addr.port()),
    )
}

/// The python3 with the `h2` package, installed once.
fn python_h2() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = workspace().join("target/toolchains/h2");
        let python = venv.join("bin/python");
        let has_h2 = |python: &Path| {
            Command::new(python)
                .args(["-c", "import h2"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !has_h2(&python) {
            let made = Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&venv)
                .status();
            assert!(
                made.is_ok_and(|s| s.success()),
                "python3 -m venv {}",
                venv.display()
            );
            let pip = Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "h2==4.4.1"])
                .status();
            assert!(pip.is_ok_and(|s| s.success()), "pip install h2 (PyPI)");
        }
        assert!(has_h2(&python), "no h2 in {}", venv.display());
        python
    })
}

/// What `tests/h2/attack.py KIND ARG` reports about the server.
fn attack(server: &Server, kind: &str, arg: &str) -> serde_json::Value {
    let out = Command::new(python_h2())
        .arg(workspace().join("tests/h2/attack.py"))
        .args(["127.0.0.1", &server.addr.port().to_string(), kind, arg])
        .output()
        .expect("attack.py");
    assert!(
        out.status.success(),
        "attack.py {kind}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("attack.py's JSON")
}

/// Two requests on one connection, each of which waits for the other to
/// have started: they meet only if the server runs a connection's streams
/// at once (its streams share the connection's task, but a backend that
/// waits must not hold the others up). Over TLS: curl 7.88 cannot
/// multiplex with `--http2-prior-knowledge`.
#[test]
fn the_streams_of_one_connection_are_answered_at_once() {
    use std::os::unix::fs::PermissionsExt;
    let (setup, server) = every_backend(&["--tls-self-signed"]);
    let meet = setup.site().join("meet");
    std::fs::create_dir(&meet).expect("mkdir");
    std::fs::set_permissions(&meet, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let script = format!(
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
         touch {dir}/$QUERY_STRING\n\
         other=a; [ \"$QUERY_STRING\" = a ] && other=b\n\
         i=0; while [ ! -e {dir}/$other ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n\
         [ -e {dir}/$other ] && echo met || echo alone\n",
        dir = meet.display()
    );
    write(&setup.site(), "cgi-bin/meet.sh", script);
    std::fs::set_permissions(
        setup.site().join("cgi-bin/meet.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let base = format!("https://127.0.0.1:{}/cgi-bin/meet.sh", server.addr.port());
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "30", "--http2", "-Z"])
        .args(["-w", " version=%{http_version} connects=%{num_connects} "])
        .arg(format!("{base}?a"))
        .arg(format!("{base}?b"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(text.matches("met").count(), 2, "{text}");
    // One connection: the second transfer connected nowhere.
    let connects: u32 = text
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("connects=")?.parse::<u32>().ok())
        .sum();
    assert!(
        text.matches("version=2 ").count() == 2 && connects == 1,
        "{text}"
    );
}

#[test]
fn every_backend_answers_over_http2_with_the_same_log_line() {
    let (setup, server) = every_backend(&[]);
    write(
        &setup.site(),
        "cgi-bin/env.sh",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
         echo \"protocol=$SERVER_PROTOCOL scheme=$REQUEST_SCHEME length=$CONTENT_LENGTH\"\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        setup.site().join("cgi-bin/env.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");

    let file = h2c(&server, "/file.txt", &[]);
    assert_eq!((file.status, file.version.as_str()), (200, "2"));
    assert_eq!(file.body, b"static file\n");

    let cgi = h2c(
        &server,
        "/cgi-bin/echo.sh",
        &["--data-binary", "to the script"],
    );
    assert_eq!(
        (cgi.status, cgi.body.as_slice()),
        (200, &b"to the script"[..])
    );
    let env = h2c(&server, "/cgi-bin/env.sh", &[]);
    assert_eq!(
        String::from_utf8_lossy(&env.body),
        "protocol=HTTP/2.0 scheme=http length=\n"
    );

    let wasi = h2c(&server, "/echo", &["--data-binary", "to the guest"]);
    let text = String::from_utf8_lossy(&wasi.body).into_owned();
    assert_eq!(wasi.status, 200, "{text}");
    assert!(text.contains("SERVER_PROTOCOL=HTTP/2.0"), "{text}");
    assert!(text.ends_with("--body 12 bytes--\nto the guest"), "{text}");

    let component = h2c(&server, "/web/echo", &["--data-binary", "to the component"]);
    assert_eq!(
        (component.status, component.body.as_slice()),
        (200, &b"to the component"[..])
    );
    let report = String::from_utf8_lossy(&h2c(&server, "/web/report?q=1", &[]).body).into_owned();
    assert!(report.contains("scheme=http\n"), "{report}");
    assert!(report.contains("path=/web/report?q=1"), "{report}");
    assert!(
        report.contains(&format!("authority=127.0.0.1:{}", server.addr.port())),
        "{report}"
    );

    for line in [
        "\"GET /file.txt HTTP/2.0\" 200 12",
        "\"POST /cgi-bin/echo.sh HTTP/2.0\" 200 13",
        "\"POST /echo HTTP/2.0\" 200",
        "\"POST /web/echo HTTP/2.0\" 200 16",
    ] {
        server.wait_for_log(|l| l.contains(line));
    }
}

#[test]
fn the_file_server_answers_over_http2_as_over_http1() {
    let site = site();
    write(site.path(), "a.txt", "0123456789");
    write(site.path(), "dir/b.txt", "b");
    let big: Vec<u8> = (0..24u32 << 20).map(|i| (i % 251) as u8).collect();
    write(site.path(), "big.bin", &big);
    let server = Server::start(site.path(), &[]);

    let range = h2c(&server, "/a.txt", &["-r", "2-4"]);
    assert_eq!((range.status, range.body.as_slice()), (206, &b"234"[..]));
    assert!(
        range.headers.contains("content-range: bytes 2-4/10"),
        "{}",
        range.headers
    );

    let first = h2c(&server, "/a.txt", &[]);
    let modified = first
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("last-modified: "))
        .expect("last-modified")
        .trim()
        .to_owned();
    let since = format!("If-Modified-Since: {modified}");
    let cached = h2c(&server, "/a.txt", &["-H", &since]);
    assert_eq!((cached.status, cached.body.len()), (304, 0));

    let head = h2c(&server, "/a.txt", &["-I"]);
    assert_eq!(head.status, 200);
    assert!(
        head.headers.contains("content-length: 10"),
        "{}",
        head.headers
    );
    assert!(
        !head.headers.contains("connection:"),
        "no connection fields: {}",
        head.headers
    );

    let listing = String::from_utf8_lossy(&h2c(&server, "/dir/", &[]).body).into_owned();
    assert!(listing.contains("<a href=\"b.txt\">b.txt</a>"), "{listing}");
    let moved = h2c(&server, "/dir", &[]);
    assert_eq!(moved.status, 301);
    assert!(
        moved.headers.contains("location: /dir/"),
        "{}",
        moved.headers
    );

    // Python's error page, over HTTP/2 too.
    let missing = h2c(&server, "/nope", &[]);
    assert_eq!(missing.status, 404);
    assert!(
        String::from_utf8_lossy(&missing.body).contains("<p>Message: File not found.</p>"),
        "{}",
        String::from_utf8_lossy(&missing.body)
    );

    // A large file whole, the server's memory no larger for it.
    let before = server.peak_rss_kib();
    let whole = h2c(&server, "/big.bin", &[]);
    assert_eq!(whole.status, 200);
    assert!(
        whole.body == big,
        "24 MiB intact ({} bytes)",
        whole.body.len()
    );
    let grew = server.peak_rss_kib().saturating_sub(before);
    assert!(
        grew < 16 * 1024,
        "24 MiB file sent in pieces, RSS grew {grew} KiB"
    );
}

#[test]
fn curl_asking_for_an_upgrade_gets_http1_1() {
    let site = site();
    write(site.path(), "a.txt", "plain");
    let server = Server::start(site.path(), &[]);
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "--http2",
            "-w",
            "\n%{http_version}",
        ])
        .arg(format!("http://127.0.0.1:{}/a.txt", server.addr.port()))
        .output()
        .expect("curl");
    // h2c upgrade (RFC 7540 §3.2) is gone from RFC 9113: HTTP/1.1 answers.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "plain\n1.1");
}

#[test]
fn bodies_stream_both_ways_and_may_come_without_a_length() {
    let (_setup, server) = every_backend(&[]);
    let upload: Vec<u8> = (0..6u32 << 20).map(|i| (i % 253) as u8).collect();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("upload");
    std::fs::write(&file, &upload).expect("write");
    let at = format!("@{}", file.display());
    for path in ["/web/echo", "/cgi-bin/echo.sh"] {
        let got = h2c(&server, path, &["--data-binary", &at]);
        assert_eq!(got.status, 200, "{path}");
        assert!(
            got.body == upload,
            "{path}: 6 MiB back intact ({} bytes)",
            got.body.len()
        );
    }
    // 20 MB out of a guest, as it writes it.
    let big = h2c(&server, "/web/big?20000000", &[]);
    assert_eq!((big.status, big.body.len()), (200, 20_000_000));
    // DATA frames without Content-Length: the CGI script still gets its
    // CONTENT_LENGTH (the body is spooled), the guest its stream.
    for path in ["/cgi-bin/echo.sh", "/web/echo", "/echo"] {
        let posted = attack(&server, "post", &format!("{path},100000"));
        assert_eq!(posted["status"], 200, "{path}: {posted}");
        assert_eq!(posted["ended"], true, "{path}: {posted}");
        let expect = if path == "/echo" { None } else { Some(99_840) };
        if let Some(len) = expect {
            assert_eq!(posted["body"], len, "{path}: {posted}");
        } else {
            assert!(
                posted["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("CONTENT_LENGTH=99840")),
                "{posted}"
            );
        }
    }
}

#[test]
fn python_handlers_answer_over_http2_as_over_http1_1() {
    let wasm = workspace().join("plugins/py-get.wasm");
    assert!(
        wasm.is_file(),
        "{} is missing: run plugins/build",
        wasm.display()
    );
    let setup = Setup::new().with(&wasm, "py-get");
    let server = setup.start(&[]);
    server.wait_for_stdout(|l| l.starts_with("Plugin py-get: ") && l.contains("wasi:http"));
    let got = h2c(&server, "/py-get/a?x=1", &["-H", "X-Custom: yes"]);
    let text = String::from_utf8_lossy(&got.body).into_owned();
    assert_eq!(got.status, 200, "{text}");
    // Python refuses HTTP/2.0 with 505: it is told HTTP/1.1, whose
    // semantics these are.
    assert!(text.contains("request_version=HTTP/1.1"), "{text}");
    assert!(text.contains("path=/py-get/a?x=1"), "{text}");
    assert!(text.contains("x-custom=yes"), "{text}");
    server.wait_for_log(|l| l.contains("\"GET /py-get/a?x=1 HTTP/2.0\" 200"));
}

/// Runs `run` while sampling `server`; what it returned and how far the
/// server grew past its usage before.
fn sampled<T>(server: &Server, run: impl FnOnce() -> T) -> (T, Usage) {
    let pid = server.pid();
    let before = usage(pid);
    let sampler = Sampler::start(pid);
    let result = run();
    let peak = sampler.stop();
    let grew = Usage {
        rss_kib: peak.rss_kib.saturating_sub(before.rss_kib),
        fds: peak.fds.saturating_sub(before.fds),
        threads: peak.threads.saturating_sub(before.threads),
    };
    (result, grew)
}

/// The server's answers to others after an attack, and its bounds during.
fn still_serves(server: &Server, grew: Usage, what: &str) {
    assert!(
        grew.rss_kib < 48 * 1024,
        "{what}: RSS grew {} KiB",
        grew.rss_kib
    );
    assert!(grew.fds < 16, "{what}: {} more descriptors", grew.fds);
    assert!(grew.threads < 8, "{what}: {} more threads", grew.threads);
    let after = h2c(server, "/file.txt", &[]);
    assert_eq!(
        (after.status, after.body.as_slice()),
        (200, &b"static file\n"[..]),
        "{what}"
    );
}

#[test]
fn rapid_reset_is_cut_off_with_goaway() {
    // Each accepted stream may start a script (three descriptors) before
    // its reset is read, and a reset frees its stream's place at once:
    // until hyper's GOAWAY, scripts being killed and reaped pile up
    // beyond --max-streams (300 descriptors measured at the peak). They
    // are bounded by the streams the GOAWAY allows, and all let go.
    let (_setup, server) = every_backend(&["--max-streams", "16"]);
    let baseline = usage(server.pid()).fds;
    for path in ["/file.txt", "/web/big?1000000", "/cgi-bin/echo.sh"] {
        let (result, grew) = sampled(&server, || attack(&server, "rapid-reset", path));
        // CVE-2023-44487: 20,000 streams opened and reset at once. The
        // server stops with ENHANCE_YOUR_CALM (0xb) long before the end.
        assert_eq!(result["goaway"], 11, "{path}: {result}");
        assert_eq!(result["closed"], true, "{path}: {result}");
        assert!(grew.fds < 640, "{path}: {} more descriptors", grew.fds);
        let grew = Usage { fds: 0, ..grew };
        still_serves(&server, grew, &format!("rapid reset on {path}"));
        // And nothing is left behind.
        let settled = Instant::now() + Duration::from_secs(10);
        while usage(server.pid()).fds > baseline + 2 {
            assert!(Instant::now() < settled, "{path}: descriptors leaked");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_continuation_flood_is_refused_within_the_header_list_limit() {
    let (_setup, server) = every_backend(&[]);
    let (result, grew) = sampled(&server, || attack(&server, "continuation", "10485760"));
    // 10 MB of header block in CONTINUATION frames, never ended: the
    // server gives up past its 64 KiB header list, and closes.
    assert_eq!(result["closed"], true, "{result}");
    assert!(result["goaway"].is_u64(), "GOAWAY sent: {result}");
    assert!(
        result["sent"].as_u64().is_some_and(|n| n < 8 << 20),
        "stopped early: {result}"
    );
    still_serves(&server, grew, "CONTINUATION flood");
}

#[test]
fn settings_and_ping_floods_from_a_client_that_never_reads_are_bounded() {
    let (_setup, server) = every_backend(&["--keep-alive-timeout", "2", "--io-timeout", "2"]);
    for kind in ["settings", "ping"] {
        let started = Instant::now();
        let (result, grew) = sampled(&server, || attack(&server, kind, "2000000"));
        // Owed ACKs pile up in no queue: the server stops reading until it
        // can send them (the attacker's writes stall), then closes the
        // connection when its PING goes unanswered.
        assert_eq!(
            result["all_sent"], false,
            "{kind}: the server stopped reading: {result}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{kind}: closed in time"
        );
        still_serves(&server, grew, &format!("{kind} flood"));
    }
}

#[test]
fn a_client_that_never_reads_holds_neither_memory_nor_a_guest() {
    let (setup, server) = every_backend(&["--io-timeout", "2", "--min-rate", "0"]);
    let big: Vec<u8> = vec![b'z'; 64 << 20];
    write(&setup.site(), "huge.bin", &big);
    for path in ["/web/big?500000000", "/huge.bin"] {
        let (result, grew) = sampled(&server, || {
            attack(&server, "never-read", &format!("{path},6"))
        });
        // It asked and read nothing for six seconds: by then the server
        // has given up on the stream, dropped what it held, and closed.
        assert_eq!(result["closed"], true, "{path}: {result}");
        let line = format!("\"GET {path} HTTP/2.0\" 200 -");
        server.wait_for_log(|l| l.contains(&line));
        still_serves(&server, grew, &format!("never-read {path}"));
    }
    // The guest was let go: the same plugin still streams in full.
    let whole = h2c(&server, "/web/big?100000", &[]);
    assert_eq!((whole.status, whole.body.len()), (200, 100_000));
}

#[test]
fn shutdown_sends_goaway_and_lets_the_running_request_finish() {
    let site = site();
    write(
        site.path(),
        "cgi-bin/slow.sh",
        "#!/bin/sh\nsleep 2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nfinished\\n'\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(site.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(
        site.path().join("cgi-bin/slow.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let mut server = Server::start(site.path(), &["--cgi"]);
    let port = server.addr.port();
    let client = std::thread::spawn(move || {
        let out = Command::new(python_h2())
            .arg(workspace().join("tests/h2/attack.py"))
            .args(["127.0.0.1", &port.to_string(), "get", "/cgi-bin/slow.sh,5"])
            .output()
            .expect("attack.py");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON")
    });
    // The script is running (it sleeps two seconds) when the server is
    // told to stop.
    std::thread::sleep(Duration::from_millis(1000));
    server.signal("TERM");
    let result = client.join().expect("client");
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["text"], "finished\n", "{result}");
    assert_eq!(result["goaway"], 0, "GOAWAY with NO_ERROR: {result}");
    assert_eq!(result["closed"], true, "{result}");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn the_connection_cap_counts_http2_connections() {
    let site = site();
    write(site.path(), "f.txt", "capped");
    let server = Server::start(site.path(), &["--max-connections", "1"]);
    let port = server.addr.port();
    // One HTTP/2 connection, held open for three seconds after its answer.
    let holder = std::thread::spawn(move || {
        Command::new(python_h2())
            .arg(workspace().join("tests/h2/attack.py"))
            .args(["127.0.0.1", &port.to_string(), "get", "/f.txt,3"])
            .output()
            .expect("attack.py")
    });
    server.wait_for_log(|l| l.contains("\"GET /f.txt HTTP/2.0\" 200"));
    let waited = Command::new("curl")
        .args(["-s", "--max-time", "1", "--http2-prior-knowledge"])
        .arg(format!("http://127.0.0.1:{port}/f.txt"))
        .output()
        .expect("curl");
    assert!(
        waited.stdout.is_empty(),
        "not served while the cap is taken"
    );
    assert!(holder.join().expect("holder").status.success());
    let served = h2c(&server, "/f.txt", &[]);
    assert_eq!(served.body, b"capped");
}
