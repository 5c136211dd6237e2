//! End to end: HTTPS. Certificates from files and self-signed, every
//! backend over TLS with HTTP/1.1 and HTTP/2 (ALPN), certificate reload,
//! startup errors for bad files, plain HTTP to the TLS port, stalled
//! handshakes, and Python's answers over HTTPS.
//!
//! The clients are real ones: curl (with `--cacert`, so the certificate is
//! checked, not skipped) and Python's `ssl`. Certificates are made by the
//! tests with rcgen, and with openssl where an encrypted key is needed.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use support::{Curled, Server, binary, every_backend, site, write};

/// A certificate for localhost and 127.0.0.1 and its key, as PEM files
/// `NAME.pem` and `NAME.key` in `dir`.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let now = SystemTime::now();
    certificate_valid(
        dir,
        name,
        now - Duration::from_secs(3600),
        now + Duration::from_secs(86_400),
    )
}

fn certificate_valid(
    dir: &Path,
    name: &str,
    from: SystemTime,
    to: SystemTime,
) -> (PathBuf, PathBuf) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params");
    params.not_before = from.into();
    params.not_after = to.into();
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

/// An HTTPS server on `site` with the certificate `cert` and `key`.
fn https(site: &Path, cert: &Path, key: &Path, args: &[&str]) -> Server {
    let mut all = vec!["--tls-cert", s(cert), "--tls-key", s(key)];
    all.extend_from_slice(args);
    Server::start(site, &all)
}

/// `curl` against `url`, trusting `ca` only, with `args`.
fn curl(ca: &Path, url: &str, args: &[&str]) -> Curled {
    let mut all = vec!["--cacert", s(ca)];
    all.extend_from_slice(args);
    support::curl(&all, url)
}

fn url(server: &Server, path: &str) -> String {
    format!("https://localhost:{}{path}", server.addr.port())
}

/// curl resolves localhost to the test's loopback address.
fn resolve(server: &Server) -> String {
    format!("localhost:{}:127.0.0.1", server.addr.port())
}

#[test]
fn the_banner_reads_like_python_3_14s_with_the_certificate_line() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = certificate(dir.path(), "server");
    let site = site();
    let server = https(site.path(), &cert, &key, &[]);
    let port = server.addr.port();
    assert_eq!(
        server.banner,
        format!("Serving HTTPS on 127.0.0.1 port {port} (https://127.0.0.1:{port}/) ...")
    );
    let line = server.wait_for_stdout(|l| l.starts_with("TLS certificate: "));
    assert!(
        line.contains(s(&cert)) && line.contains("SHA-256 "),
        "{line}"
    );
}

#[test]
fn every_backend_answers_over_tls_with_http1_and_http2() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = certificate(dir.path(), "server");
    let (_setup, server) = every_backend(&["--tls-cert", s(&cert), "--tls-key", s(&key)]);
    let pin = resolve(&server);
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let get = |path: &str, extra: &[&str]| {
            let mut args = vec![flag, "--resolve", &pin];
            args.extend_from_slice(extra);
            curl(&cert, &url(&server, path), &args)
        };
        let file = get("/file.txt", &[]);
        assert_eq!(
            (file.status, file.version.as_str()),
            (200, version),
            "{flag}"
        );
        assert_eq!(file.body, b"static file\n");

        let cgi = get("/cgi-bin/echo.sh", &["--data-binary", "to the script"]);
        assert_eq!(
            (cgi.status, cgi.body.as_slice()),
            (200, &b"to the script"[..]),
            "{flag}"
        );

        let wasi = get("/echo", &["--data-binary", "to the guest"]);
        let text = String::from_utf8_lossy(&wasi.body).into_owned();
        assert_eq!(wasi.status, 200, "{flag}: {text}");
        assert!(
            text.contains("HTTPS=on"),
            "{flag}: CGI-over-WASI sees TLS: {text}"
        );
        assert!(
            text.ends_with("--body 12 bytes--\nto the guest"),
            "{flag}: {text}"
        );

        let component = get("/web/echo", &["--data-binary", "to the component"]);
        assert_eq!(component.status, 200, "{flag}");
        assert_eq!(component.body, b"to the component", "{flag}");
        let report = String::from_utf8_lossy(&get("/web/report", &[]).body).into_owned();
        assert!(report.contains("scheme=https"), "{flag}: {report}");
    }
    server.wait_for_log(|l| l.contains("\"GET /file.txt HTTP/1.1\" 200 12"));
    server.wait_for_log(|l| l.contains("\"GET /file.txt HTTP/2.0\" 200 12"));
    server.wait_for_log(|l| l.contains("\"POST /cgi-bin/echo.sh HTTP/2.0\" 200"));
}

#[test]
fn a_self_signed_certificate_is_the_one_clients_see() {
    let site = site();
    let server = Server::start(site.path(), &["--tls-self-signed"]);
    let line = server.wait_for_stdout(|l| l.starts_with("TLS certificate: self-signed for "));
    assert!(line.contains("localhost, 127.0.0.1, ::1"), "{line}");
    let printed = line
        .split("SHA-256 ")
        .nth(1)
        .expect("fingerprint")
        .trim_end_matches(')');
    // Python's ssl fetches the certificate the server presents.
    let script = format!(
        "import hashlib, ssl\n\
         pem = ssl.get_server_certificate(('127.0.0.1', {}))\n\
         der = ssl.PEM_cert_to_DER_cert(pem)\n\
         print(':'.join('%02X' % b for b in hashlib.sha256(der).digest()))",
        server.addr.port()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), printed);
}

#[test]
fn alpn_offers_h2_then_http1_1() {
    let site = site();
    let server = Server::start(site.path(), &["--tls-self-signed"]);
    let script = format!(
        "import socket, ssl\n\
         for offer in (['h2', 'http/1.1'], ['http/1.1'], None):\n\
         \x20   ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
         \x20   if offer: ctx.set_alpn_protocols(offer)\n\
         \x20   with ctx.wrap_socket(socket.create_connection(('127.0.0.1', {})), server_hostname='localhost') as s:\n\
         \x20       print(s.selected_alpn_protocol())",
        server.addr.port()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "h2\nhttp/1.1\nNone\n");
}

/// Runs the server with `args` and expects it to refuse to start.
fn refused(args: &[&str]) -> String {
    let out = Command::new(binary())
        .args(["0", "-b", "127.0.0.1"])
        .args(args)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line, got {stderr:?}"
    );
    assert!(stderr.starts_with("wasmhttpd: "), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "no banner");
    stderr
}

/// `openssl` with `args`, which must succeed.
fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An EC key encrypted (PKCS#8, AES-256) with `password`, and a
/// certificate for it, made by openssl.
fn encrypted_pair(dir: &Path, password: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (key, cert, pass) = (
        dir.join("enc.key"),
        dir.join("enc.pem"),
        dir.join("pass.txt"),
    );
    std::fs::write(&pass, format!("{password}\n")).expect("password file");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
        s(&key),
        "-out",
        s(&cert),
        "-passout",
        &format!("file:{}", s(&pass)),
    ]);
    let pem = std::fs::read_to_string(&key).expect("key");
    assert!(pem.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{pem}");
    (cert, key, pass)
}

#[test]
fn bad_certificate_files_stop_startup_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let (cert, key) = certificate(d, "good");
    let (_, other_key) = certificate(d, "other");
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let (old, old_key) = certificate_valid(d, "old", now - 3 * day, now - day);
    let garbage = d.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let (enc_cert, enc_key, pass) = encrypted_pair(d, "sesame");
    let wrong = d.join("wrong.txt");
    std::fs::write(&wrong, "open barley\n").expect("write");

    let mismatch = refused(&["--tls-cert", s(&cert), "--tls-key", s(&other_key)]);
    assert!(
        mismatch.contains("does not match the certificate"),
        "{mismatch}"
    );
    let expired = refused(&["--tls-cert", s(&old), "--tls-key", s(&old_key)]);
    assert!(expired.contains("the certificate expired on"), "{expired}");
    let missing = refused(&["--tls-cert", s(&d.join("absent.pem")), "--tls-key", s(&key)]);
    assert!(
        missing.contains("cannot read") && missing.contains("absent.pem"),
        "{missing}"
    );
    let not_a_key = refused(&["--tls-cert", s(&cert), "--tls-key", s(&garbage)]);
    assert!(not_a_key.contains("holds no private key"), "{not_a_key}");
    let not_a_cert = refused(&["--tls-cert", s(&garbage), "--tls-key", s(&key)]);
    assert!(not_a_cert.contains("holds no certificate"), "{not_a_cert}");
    let no_password = refused(&["--tls-cert", s(&enc_cert), "--tls-key", s(&enc_key)]);
    assert!(no_password.contains("--tls-password-file"), "{no_password}");
    let bad_password = refused(&[
        "--tls-cert",
        s(&enc_cert),
        "--tls-key",
        s(&enc_key),
        "--tls-password-file",
        s(&wrong),
    ]);
    assert!(bad_password.contains("wrong password"), "{bad_password}");
    // And with the right one, it serves.
    let site = site();
    write(site.path(), "f.txt", "over tls\n");
    let server = Server::start(
        site.path(),
        &[
            "--tls-cert",
            s(&enc_cert),
            "--tls-key",
            s(&enc_key),
            "--tls-password-file",
            s(&pass),
        ],
    );
    let got = curl(
        &enc_cert,
        &url(&server, "/f.txt"),
        &["--resolve", &resolve(&server)],
    );
    assert_eq!((got.status, got.body.as_slice()), (200, &b"over tls\n"[..]));
}

#[test]
fn the_key_may_be_in_the_certificate_file() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = certificate(dir.path(), "server");
    let both = dir.path().join("both.pem");
    let pem = std::fs::read_to_string(&cert).expect("cert")
        + &std::fs::read_to_string(&key).expect("key");
    std::fs::write(&both, pem).expect("write");
    let site = site();
    write(site.path(), "f.txt", "one file\n");
    let server = Server::start(site.path(), &["--tls-cert", s(&both)]);
    let got = curl(
        &cert,
        &url(&server, "/f.txt"),
        &["--resolve", &resolve(&server)],
    );
    assert_eq!((got.status, got.body.as_slice()), (200, &b"one file\n"[..]));
}

#[test]
fn changed_certificate_files_are_reloaded_without_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let live = tempfile::tempdir().expect("live");
    let (cert_a, key_a) = certificate(dir.path(), "a");
    let (cert_b, key_b) = certificate(dir.path(), "b");
    let (cert, key) = (live.path().join("cert.pem"), live.path().join("key.pem"));
    std::fs::copy(&cert_a, &cert).expect("copy");
    std::fs::copy(&key_a, &key).expect("copy");
    let site = site();
    write(site.path(), "f.txt", "reloaded\n");
    let server = https(site.path(), &cert, &key, &[]);
    let pin = resolve(&server);
    let target = url(&server, "/f.txt");
    assert_eq!(curl(&cert_a, &target, &["--resolve", &pin]).status, 200);
    assert!(
        !curl(&cert_b, &target, &["--resolve", &pin]).ok,
        "b not yet"
    );

    // A renewal tool writes the certificate, then the key.
    std::fs::copy(&cert_b, &cert).expect("copy");
    std::fs::copy(&key_b, &key).expect("copy");
    server.wait_for_log(|l| l.starts_with("wasmhttpd: reloaded TLS certificate: "));
    assert_eq!(curl(&cert_b, &target, &["--resolve", &pin]).status, 200);
    assert!(
        !curl(&cert_a, &target, &["--resolve", &pin]).ok,
        "a is gone"
    );

    // A key that does not match is reported, and b keeps serving.
    std::fs::copy(&key_a, &key).expect("copy");
    let line = server.wait_for_log(|l| l.contains("cannot reload the TLS certificate"));
    assert!(
        line.contains("does not match") && line.contains("keeping the previous one"),
        "{line}"
    );
    assert_eq!(
        curl(&cert_b, &target, &["--resolve", &pin, "--http2"]).status,
        200
    );
}

#[test]
fn plain_http_to_the_tls_port_gets_400_then_a_close() {
    let site = site();
    let server = Server::start(site.path(), &["--tls-self-signed"]);
    let started = Instant::now();
    let answer = server.raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(
        text.contains("This port speaks HTTPS: use an https:// URL"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "closed, not held"
    );
}

#[test]
fn a_stalled_handshake_is_closed_after_the_header_timeout() {
    let site = site();
    let server = Server::start(site.path(), &["--tls-self-signed", "--header-timeout", "1"]);
    for opening in [&b""[..], &[0x16, 0x03, 0x01, 0x02][..]] {
        let mut stream = server.connect();
        stream.write_all(opening).expect("send");
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let read = stream.read(&mut buf);
        assert!(
            matches!(read, Ok(0)) || read.is_err() && started.elapsed() < Duration::from_secs(9),
            "{opening:?}: {read:?}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{opening:?}: waited"
        );
    }
    // The server still answers.
    let got = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("https://127.0.0.1:{}/", server.addr.port()))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&got.stdout), "200");
}

/// `python3 -m http.server` behind TLS, as Python 3.14's `--tls-cert`
/// serves it (the machine's Python may be older: the socket is wrapped
/// the same way here).
struct PythonTls {
    child: std::process::Child,
    port: u16,
}

impl PythonTls {
    fn start(dir: &Path, cert: &Path, key: &Path) -> PythonTls {
        let script = format!(
            "import http.server, ssl, sys, functools\n\
             ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain({cert:?}, {key:?})\n\
             handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory={dir:?})\n\
             httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)\n\
             httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)\n\
             print(httpd.server_address[1], flush=True)\n\
             httpd.serve_forever()",
            cert = s(cert),
            key = s(key),
            dir = s(dir),
        );
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        std::io::BufRead::read_line(&mut out, &mut line).expect("port");
        PythonTls {
            port: line.trim().parse().expect("port"),
            child,
        }
    }
}

impl Drop for PythonTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn python_and_wasmhttpd_answer_alike_over_https() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = certificate(dir.path(), "server");
    let site = site();
    write(site.path(), "a.txt", "alpha\n");
    write(site.path(), "sub/b.html", "<p>b</p>\n");
    write(site.path(), "sp ace/c.txt", "c\n");
    let python = PythonTls::start(site.path(), &cert, &key);
    let ours = https(site.path(), &cert, &key, &[]);
    for path in [
        "/",
        "/a.txt",
        "/sub/",
        "/sub",
        "/sp%20ace/",
        "/missing",
        "/a.txt/",
        "/%2e%2e/etc/passwd",
    ] {
        let at = |port: u16| {
            let pin = format!("localhost:{port}:127.0.0.1");
            let got = curl(
                &cert,
                &format!("https://localhost:{port}{path}"),
                &["--http1.1", "--resolve", &pin, "--path-as-is"],
            );
            (got.status, got.body)
        };
        let (theirs, mine) = (at(python.port), at(ours.addr.port()));
        assert_eq!(mine.0, theirs.0, "{path}: status");
        let (mine, theirs) = (
            String::from_utf8_lossy(&mine.1).into_owned(),
            String::from_utf8_lossy(&theirs.1).into_owned(),
        );
        if theirs.contains("<title>Directory listing for") {
            // Our listing adds sizes, times and style; its links are
            // Python's (as tests/python_parity.rs checks over HTTP).
            assert_eq!(links(&mine), links(&theirs), "{path}: listing");
        } else {
            assert_eq!(mine, theirs, "{path}: body");
        }
    }
}

/// The `<a href=…>name` items of a directory listing.
fn links(html: &str) -> Vec<&str> {
    html.lines()
        .filter_map(|l| l.strip_prefix("<li><a href=\""))
        .filter_map(|l| l.find("</a>").map(|end| &l[..end]))
        .collect()
}
