//! End to end: classic CGI (`--cgi`) — Python's CGIHTTPRequestHandler
//! behaviours that still make sense, each RFC 3875 point, and each way a
//! script can misbehave, against the real binary with real shell scripts.
//! Where Python is wrong, the test's name says so.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Response, SLOW, Server, dechunk, install, read_response, slow_to_compile, write};

/// A served directory that scripts (run as `nobody` when the tests run as
/// root) can enter, with a world-writable `run/` for what they report.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        write(dir.path(), "index.html", "static index\n");
        std::fs::create_dir_all(dir.path().join("run")).expect("mkdir");
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o777),
        )
        .expect("chmod");
        Site { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an executable `/bin/sh` script.
    fn script(self, relative: &str, body: &str) -> Site {
        self.file(relative, &format!("#!/bin/sh\n{body}"), 0o755)
    }

    fn file(self, relative: &str, content: &str, mode: u32) -> Site {
        write(self.path(), relative, content);
        let path = self.path().join(relative);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        self
    }

    fn start(&self, args: &[&str]) -> Server {
        let mut all = vec!["--cgi"];
        all.extend_from_slice(args);
        Server::start(self.path(), &all)
    }

    /// A script that starts a child and waits for it for minutes; both
    /// write their pids to the returned file.
    fn hanging_script(self, relative: &str) -> (Site, PathBuf) {
        self.reporting_script(relative, &format!("{HANG}wait\n"))
    }

    /// A script that reports to a file of its own in `run/` (what it writes
    /// there, pids mostly, the test reads): every `{report}` in `body` is
    /// that file's path, which is returned too.
    fn reporting_script(self, relative: &str, body: &str) -> (Site, PathBuf) {
        let report = self.run(&relative.replace('/', "_"));
        let body = body.replace("{report}", &report.display().to_string());
        (self.script(relative, &body), report)
    }

    fn run(&self, name: &str) -> PathBuf {
        self.path().join("run").join(name)
    }
}

/// Starts a child that sleeps for minutes; the child's pid, then the
/// script's, go to the report file (see `Site::reporting_script`).
const HANG: &str = "sleep 300 &\necho $! >> {report}\necho $$ >> {report}\n";

/// A script that prints its environment, arguments, directory and stdin.
const ENV_SCRIPT: &str = "printf 'Content-Type: text/plain\\n\\n'\n\
                          env\n\
                          echo \"ARGS=$*\"\n\
                          echo \"CWD=$(pwd)\"\n\
                          echo \"IDS=$(id -u):$(id -g):$(id -G)\"\n\
                          printf 'BODY='\n\
                          cat\n";

const HELLO: &str = "printf 'Content-Type: text/html\\n\\nHello World\\n'\n";

fn var<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
}

fn post(server: &Server, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut raw = format!(
        "POST {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    Response::parse(&server.raw(&bytes), false).expect("response")
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet).
fn is_dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Waits (bounded) until `file` holds a line per expected pid; returns them.
fn wait_for_pids(file: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids: Vec<String> = std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if pids.len() >= count {
            return pids;
        }
        assert!(Instant::now() < deadline, "the script never wrote its pids");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_until_dead(pids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids.iter().all(|pid| is_dead(pid)) {
        assert!(Instant::now() < deadline, "still running: {pids:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// --- Mapping -------------------------------------------------------------

#[test]
fn script_in_cgi_bin_runs_and_its_output_is_the_response() {
    let site = Site::new().script("cgi-bin/file1.sh", HELLO);
    let server = site.start(&[]);
    let r = server.get("/cgi-bin/file1.sh");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert_eq!(r.text(), "Hello World\n");
    assert!(
        server
            .stdout_lines()
            .iter()
            .any(|l| l.starts_with("CGI: /cgi-bin/ /htbin/"))
    );
}

#[test]
fn htbin_is_a_cgi_directory_too_and_other_paths_stay_static() {
    let site = Site::new()
        .script("htbin/file1.sh", HELLO)
        .script("elsewhere/file1.sh", HELLO);
    let server = site.start(&[]);
    assert_eq!(server.get("/htbin/file1.sh").text(), "Hello World\n");
    let source = server.get("/elsewhere/file1.sh");
    assert_eq!(source.status, 200);
    assert!(source.text().starts_with("#!/bin/sh"), "served as a file");
}

#[test]
fn without_cgi_scripts_are_plain_files() {
    let site = Site::new().script("cgi-bin/file1.sh", HELLO);
    let server = Server::start(site.path(), &[]);
    assert!(
        server
            .get("/cgi-bin/file1.sh")
            .text()
            .starts_with("#!/bin/sh")
    );
    assert_eq!(post(&server, "/cgi-bin/file1.sh", &[], b"x").status, 501);
}

#[test]
fn missing_script_is_404_with_pythons_message() {
    let site = Site::new().script("cgi-bin/file1.sh", HELLO);
    let server = site.start(&[]);
    let r = server.get("/cgi-bin/invalid");
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("No such CGI script ('/cgi-bin/invalid')"),
        "{}",
        r.text()
    );
    // Python's issue 19435: a path that collapses into the CGI directory.
    assert_eq!(
        server
            .get("///////////nocgi.py/../cgi-bin/nothere.sh")
            .status,
        404
    );
}

#[test]
fn directories_and_files_without_execute_permission_are_403() {
    let site = Site::new().script("cgi-bin/sub/x.sh", HELLO).file(
        "cgi-bin/plain.sh",
        "#!/bin/sh\n",
        0o644,
    );
    let server = site.start(&[]);
    for (path, message) in [
        ("/cgi-bin/", "not a plain file"),
        ("/cgi-bin/sub", "not a plain file"),
        ("/cgi-bin/sub/", "not a plain file"),
        ("/cgi-bin/plain.sh", "not executable"),
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 403, "{path}");
        assert!(r.text().contains(message), "{path}: {}", r.text());
    }
}

#[test]
fn nested_directories_are_descended_and_the_rest_is_path_info() {
    let site = Site::new().script("cgi-bin/child-dir/file3.sh", ENV_SCRIPT);
    let server = site.start(&[]);
    let r = server.get("/cgi-bin/child-dir/file3.sh/a/b%20c?q=1");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_eq!(
        var(&text, "SCRIPT_NAME"),
        Some("/cgi-bin/child-dir/file3.sh")
    );
    assert_eq!(var(&text, "PATH_INFO"), Some("/a/b c"));
    let root = site.path().canonicalize().expect("canonical");
    assert_eq!(
        var(&text, "PATH_TRANSLATED"),
        Some(format!("{}/a/b c", root.display()).as_str())
    );
}

#[test]
fn cgi_dir_replaces_the_default_directories() {
    let site = Site::new()
        .script("sub/dir/cgi-bin/file5.sh", HELLO)
        .script("cgi-bin/file1.sh", HELLO);
    let server = Server::start(site.path(), &["--cgi-dir", "/sub/dir/cgi-bin"]);
    assert_eq!(
        server.get("/sub/dir/cgi-bin/file5.sh").text(),
        "Hello World\n"
    );
    assert!(
        server
            .get("/cgi-bin/file1.sh")
            .text()
            .starts_with("#!/bin/sh")
    );
}

#[test]
fn post_runs_a_script_but_post_elsewhere_is_501() {
    let site = Site::new().script("cgi-bin/file2.sh", ENV_SCRIPT);
    let server = site.start(&[]);
    let form = b"spam=1&eggs=python&bacon=1234";
    let r = post(
        &server,
        "/cgi-bin/file2.sh",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form,
    );
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_eq!(var(&text, "REQUEST_METHOD"), Some("POST"));
    assert_eq!(var(&text, "CONTENT_LENGTH"), Some("29"));
    assert_eq!(
        var(&text, "CONTENT_TYPE"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(var(&text, "BODY"), Some("spam=1&eggs=python&bacon=1234"));
    assert_eq!(post(&server, "/index.html", &[], b"x").status, 501);
    assert_eq!(server.request("PUT", "/cgi-bin/file2.sh", &[]).status, 501);
}

#[test]
fn the_query_is_passed_raw() {
    let site = Site::new().script("cgi-bin/file4.sh", ENV_SCRIPT);
    let server = site.start(&[]);
    let text = server.get("/cgi-bin/file4.sh?a=b?c=d").text();
    assert_eq!(var(&text, "QUERY_STRING"), Some("a=b?c=d"));
    let text = server
        .get("/cgi-bin/file4.sh?k=aa%2F%2Fbb&//q//p//=//a//b//")
        .text();
    assert_eq!(
        var(&text, "QUERY_STRING"),
        Some("k=aa%2F%2Fbb&//q//p//=//a//b//")
    );
}

#[test]
fn traversal_is_refused_and_an_excess_of_dot_dot_still_gets_a_response_unlike_python() {
    let site = Site::new().script("cgi-bin/file1.sh", HELLO);
    let server = site.start(&[]);
    // Python's _url_collapse_path raises on these and drops the connection.
    for path in [
        "/cgi-bin/../../../../etc/passwd",
        "/cgi-bin/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/cgi-bin/../../..",
    ] {
        let r = server.get(path);
        assert!(matches!(r.status, 200 | 301 | 404), "{path}: {}", r.status);
        assert!(!r.text().contains("root:"), "{path}");
    }
    assert_eq!(server.get("/cgi-bin/file1.sh%00").status, 400);
}

#[test]
fn an_encoded_slash_is_refused_where_python_runs_the_script() {
    let site = Site::new().script("cgi-bin/file1.sh", HELLO);
    let server = site.start(&[]);
    assert_eq!(server.get("/cgi-bin%2ffile1.sh").status, 400);
    assert_eq!(server.get("/cgi-bin/sub%2f..%2ffile1.sh").status, 400);
}

#[test]
fn a_symlink_out_of_the_site_is_no_script() {
    let outside = tempfile::tempdir().expect("tempdir");
    write(
        outside.path(),
        "evil.sh",
        "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho escaped\n",
    );
    std::fs::set_permissions(
        outside.path().join("evil.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let site = Site::new().script("cgi-bin/file1.sh", HELLO);
    std::os::unix::fs::symlink(
        outside.path().join("evil.sh"),
        site.path().join("cgi-bin/evil.sh"),
    )
    .expect("symlink");
    let server = site.start(&[]);
    assert_eq!(server.get("/cgi-bin/evil.sh").status, 404);
}

// --- Environment ---------------------------------------------------------

#[test]
fn every_rfc_3875_variable_is_set() {
    let site = Site::new().script("cgi-bin/env.sh", ENV_SCRIPT);
    let server = site.start(&[]);
    let r = server.request(
        "GET",
        "/cgi-bin/env.sh/extra?x=1",
        &[
            ("User-Agent", "tester/1"),
            ("Cookie", "a=1"),
            ("X-Custom", "yes"),
        ],
    );
    let text = r.text();
    let port = server.addr.port().to_string();
    let root = site.path().canonicalize().expect("canonical");
    let expected = [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "test"),
        ("SERVER_PORT", port.as_str()),
        ("SERVER_ADDR", "127.0.0.1"),
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/cgi-bin/env.sh/extra?x=1"),
        ("SCRIPT_NAME", "/cgi-bin/env.sh"),
        ("PATH_INFO", "/extra"),
        ("QUERY_STRING", "x=1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_HOST", "127.0.0.1"),
        ("HTTP_USER_AGENT", "tester/1"),
        ("HTTP_COOKIE", "a=1"),
        ("HTTP_X_CUSTOM", "yes"),
        ("HTTP_HOST", "test"),
    ];
    for (name, value) in expected {
        assert_eq!(var(&text, name), Some(value), "{name}\n{text}");
    }
    assert!(var(&text, "SERVER_SOFTWARE").is_some_and(|s| s.starts_with("wasmhttpd/")));
    assert!(var(&text, "REMOTE_PORT").is_some_and(|p| p.parse::<u16>().is_ok()));
    assert_eq!(
        var(&text, "DOCUMENT_ROOT"),
        Some(root.to_str().expect("utf-8"))
    );
    assert_eq!(
        var(&text, "SCRIPT_FILENAME"),
        Some(root.join("cgi-bin/env.sh").to_str().expect("utf-8"))
    );
    assert_eq!(
        var(&text, "PATH_TRANSLATED"),
        Some(root.join("extra").to_str().expect("utf-8"))
    );
    assert_eq!(var(&text, "CONTENT_LENGTH"), None, "no body");
    assert_eq!(
        var(&text, "CWD"),
        Some(root.join("cgi-bin").to_str().expect("utf-8")),
        "the working directory is the script's"
    );
}

#[test]
fn server_protocol_is_the_requests_version_unlike_python() {
    let site = Site::new().script("cgi-bin/env.sh", ENV_SCRIPT);
    let server = site.start(&[]);
    let bytes = server.raw(b"GET /cgi-bin/env.sh HTTP/1.0\r\n\r\n");
    let text = Response::parse(&bytes, false).expect("response").text();
    assert_eq!(var(&text, "SERVER_PROTOCOL"), Some("HTTP/1.0"));
}

#[test]
fn credentials_and_proxy_headers_never_reach_the_script_unlike_python() {
    let site = Site::new().script("cgi-bin/env.sh", ENV_SCRIPT);
    let server = site.start(&[]);
    let text = server
        .request(
            "GET",
            "/cgi-bin/env.sh",
            &[
                ("Authorization", "Basic dXNlcjpwYXNz"),
                ("Proxy", "http://evil.example:3128"),
                ("X_Smuggled", "1"),
            ],
        )
        .text();
    // Python decodes unchecked Basic credentials into REMOTE_USER.
    for hidden in [
        "HTTP_AUTHORIZATION",
        "REMOTE_USER",
        "AUTH_TYPE",
        "HTTP_PROXY",
        "HTTP_X_SMUGGLED",
    ] {
        assert_eq!(var(&text, hidden), None, "{hidden}");
    }
}

#[test]
fn repeated_headers_are_joined() {
    let site = Site::new().script("cgi-bin/env.sh", ENV_SCRIPT);
    let server = site.start(&[]);
    let text = server
        .request(
            "GET",
            "/cgi-bin/env.sh",
            &[("Accept", "text/html"), ("Accept", "text/plain")],
        )
        .text();
    assert_eq!(var(&text, "HTTP_ACCEPT"), Some("text/html, text/plain"));
}

#[test]
fn a_chunked_body_is_dechunked_with_its_exact_length() {
    let site = Site::new().script("cgi-bin/env.sh", ENV_SCRIPT);
    let server = site.start(&[]);
    let bytes = server.raw(
        b"POST /cgi-bin/env.sh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
          Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    let text = Response::parse(&bytes, false).expect("response").text();
    assert_eq!(var(&text, "CONTENT_LENGTH"), Some("11"));
    assert_eq!(var(&text, "BODY"), Some("hello world"));
    assert_eq!(var(&text, "HTTP_TRANSFER_ENCODING"), None);
}

#[test]
fn a_large_body_reaches_the_script_whole() {
    let site = Site::new().script(
        "cgi-bin/count.sh",
        "n=$(wc -c); printf 'Content-Type: text/plain\\n\\n%s %s\\n' \"$CONTENT_LENGTH\" $n\n",
    );
    let server = site.start(&[]);
    let body = vec![b'x'; 3 << 20];
    let r = post(&server, "/cgi-bin/count.sh", &[], &body);
    assert_eq!(r.text(), format!("{0} {0}\n", 3 << 20));
}

#[test]
fn the_servers_environment_does_not_leak_unlike_python() {
    let site = Site::new().script("cgi-bin/env.sh", ENV_SCRIPT);
    let server = Server::start_with_env(
        site.path(),
        &["--cgi"],
        &[("SECRET_TOKEN", "hunter2"), ("TZ", "UTC")],
    );
    let text = server.get("/cgi-bin/env.sh").text();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(var(&text, "PATH").is_some(), "PATH is kept");
    assert_eq!(var(&text, "TZ"), Some("UTC"), "a harmless variable is kept");
}

#[test]
fn an_indexed_query_becomes_arguments_but_never_options() {
    let site = Site::new().script("cgi-bin/env.sh", ENV_SCRIPT);
    let server = site.start(&[]);
    assert_eq!(
        var(&server.get("/cgi-bin/env.sh?cat+dog%21").text(), "ARGS"),
        Some("cat dog!")
    );
    assert_eq!(
        var(&server.get("/cgi-bin/env.sh?a=b").text(), "ARGS"),
        Some("")
    );
    assert_eq!(
        var(&server.get("/cgi-bin/env.sh?-s").text(), "ARGS"),
        Some(""),
        "CVE-2012-1823"
    );
}

#[test]
fn a_root_server_runs_scripts_as_nobody_with_nobodys_group_unlike_python() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: the tests do not run as root");
        return;
    }
    let site = Site::new().script("cgi-bin/env.sh", ENV_SCRIPT);
    let server = site.start(&[]);
    let text = server.get("/cgi-bin/env.sh").text();
    // Python only calls setuid: the script keeps group root.
    let ids = var(&text, "IDS").expect("ids");
    let (uid, groups) = ids.split_once(':').expect("uid");
    assert_ne!(uid, "0", "{ids}");
    assert!(!groups.split([':', ' ']).any(|g| g == "0"), "{ids}");
}

#[test]
fn an_unprivileged_server_runs_scripts_as_itself() {
    let site = Site::new().script("cgi-bin/env.sh", ENV_SCRIPT);
    let server = Server::start_unprivileged(site.path(), &["--cgi"]);
    let text = server.get("/cgi-bin/env.sh").text();
    assert!(
        var(&text, "IDS").is_some_and(|ids| !ids.starts_with("0:")),
        "{text}"
    );
}

// --- Response ------------------------------------------------------------

#[test]
fn status_is_honoured_unlike_python() {
    let site = Site::new().script(
        "cgi-bin/gone.sh",
        "printf 'Status: 410 Gone Away\\nContent-Type: text/plain\\nX-Extra: 1\\n\\ngone\\n'\n",
    );
    let server = site.start(&[]);
    let r = server.get("/cgi-bin/gone.sh");
    assert_eq!(r.status, 410);
    assert_eq!(r.header("x-extra"), Some("1"));
    assert_eq!(r.text(), "gone\n");
}

#[test]
fn an_absolute_location_is_a_302_and_a_local_one_an_internal_redirect() {
    let site = Site::new()
        .script(
            "cgi-bin/away.sh",
            "printf 'Location: http://example.com/x\\n\\n'\n",
        )
        .script(
            "cgi-bin/inside.sh",
            "printf 'Location: /cgi-bin/env.sh?from=inside\\n\\n'\n",
        )
        .script("cgi-bin/env.sh", ENV_SCRIPT)
        .script(
            "cgi-bin/loop.sh",
            "printf 'Location: /cgi-bin/loop.sh\\n\\n'\n",
        );
    let server = site.start(&[]);
    let r = server.get("/cgi-bin/away.sh");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://example.com/x"));
    let r = post(&server, "/cgi-bin/inside.sh", &[], b"data");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_eq!(
        var(&text, "REQUEST_METHOD"),
        Some("GET"),
        "re-dispatched as GET"
    );
    assert_eq!(var(&text, "QUERY_STRING"), Some("from=inside"));
    assert_eq!(var(&text, "CONTENT_LENGTH"), None);
    assert_eq!(server.get("/cgi-bin/loop.sh").status, 500);
    server.wait_for_log(|l| l.contains("more than 5 local redirects"));
}

#[test]
fn malformed_output_is_502() {
    let site = Site::new()
        .script("cgi-bin/no-type.sh", "printf 'X-Only: 1\\n\\nbody\\n'\n")
        .script(
            "cgi-bin/garbage.sh",
            "printf 'this is not a header\\n\\n'\n",
        )
        .script("cgi-bin/silent.sh", "exit 0\n")
        .script(
            "cgi-bin/truncated.sh",
            "printf 'Content-Type: text/plain\\n'\n",
        );
    let server = site.start(&[]);
    for path in ["no-type", "garbage", "silent", "truncated"] {
        let r = server.get(&format!("/cgi-bin/{path}.sh"));
        assert_eq!(r.status, 502, "{path}");
    }
    server.wait_for_log(|l| l.contains("[cgi /cgi-bin/silent.sh] no output"));
    server.wait_for_log(|l| l.contains("[cgi /cgi-bin/garbage.sh] malformed output"));
}

#[test]
fn a_script_that_fails_before_committing_gets_a_clean_500() {
    let site = Site::new().script(
        "cgi-bin/fail.sh",
        "printf 'Content-Type: text/plain\\n\\npartial'\nexit 3\n",
    );
    let server = site.start(&[]);
    let r = server.get("/cgi-bin/fail.sh");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("partial"));
    server.wait_for_log(|l| l.contains("[cgi /cgi-bin/fail.sh] exited with status 3"));
}

#[test]
fn a_failure_after_committing_aborts_the_response() {
    let site = Site::new().script(
        "cgi-bin/late.sh",
        "printf 'Content-Type: text/plain\\n\\n'\nhead -c 300000 /dev/zero\nexit 1\n",
    );
    let server = site.start(&[]);
    let bytes = server.raw(b"GET /cgi-bin/late.sh HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = Response::parse(&bytes, false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        dechunk(&r.body),
        None,
        "no final chunk: the client sees it is cut"
    );
}

#[test]
fn a_hung_script_and_its_process_group_are_killed_after_the_timeout() {
    let (site, pids) = Site::new().hanging_script("cgi-bin/hang.sh");
    let server = site.start(&["--cgi-timeout", "1"]);
    let started = Instant::now();
    let r = server.get("/cgi-bin/hang.sh");
    assert_eq!(r.status, 504);
    assert!(started.elapsed() < Duration::from_secs(8));
    let pids = wait_for_pids(&pids, 2);
    wait_until_dead(&pids);
    server.wait_for_log(|l| l.contains("[cgi /cgi-bin/hang.sh] killed after its time limit of 1s"));
    // The server goes on.
    assert_eq!(server.get("/index.html").status, 200);
}

#[test]
fn stderr_lines_go_to_the_log_tagged_with_the_script() {
    let site = Site::new().script(
        "cgi-bin/noisy.sh",
        "echo 'first problem' >&2\nprintf 'bell\\007\\n' >&2\nprintf 'Content-Type: text/plain\\n\\nok'\n",
    );
    let server = site.start(&[]);
    assert_eq!(server.get("/cgi-bin/noisy.sh").text(), "ok");
    server.wait_for_log(|l| l == "[cgi /cgi-bin/noisy.sh] first problem");
    server.wait_for_log(|l| l == "[cgi /cgi-bin/noisy.sh] bell\\x07");
}

#[test]
fn huge_output_streams_without_growing_server_memory() {
    const SIZE: u64 = 512 << 20;
    let site = Site::new().script(
        "cgi-bin/huge.sh",
        &format!(
            "printf 'Content-Type: application/octet-stream\\n\\n'\nhead -c {SIZE} /dev/zero\n"
        ),
    );
    let server = site.start(&[]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /cgi-bin/huge.sh HTTP/1.0\r\n\r\n")
        .expect("send");
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = stream.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert!(total > SIZE, "{total}");
    let peak = server.peak_rss_kib();
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}

#[test]
fn a_client_that_disconnects_gets_the_script_killed() {
    // The output dies with the client (SIGPIPE); the script itself and
    // its child would wait for minutes if nothing killed them.
    let (site, pids) = Site::new().reporting_script(
        "cgi-bin/stream.sh",
        &format!(
            "{HANG}printf 'Content-Type: text/plain\\n\\n'\nhead -c 8000000 /dev/zero\nwait\n"
        ),
    );
    let server = site.start(&[]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /cgi-bin/stream.sh HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0;
    while got < 1 << 20 {
        got += stream.read(&mut buf).expect("read");
    }
    drop(stream);
    let pids = wait_for_pids(&pids, 2);
    wait_until_dead(&pids);
}

#[test]
fn a_script_that_ignores_a_large_post_body_does_not_hang() {
    let site = Site::new().script("cgi-bin/file1.sh", HELLO);
    let server = site.start(&[]);
    let body = vec![b'x'; 8 << 20];
    let started = Instant::now();
    let r = post(&server, "/cgi-bin/file1.sh", &[], &body);
    assert_eq!(r.text(), "Hello World\n");
    assert!(started.elapsed() < Duration::from_secs(8));
    // Also a small one, which goes through a pipe rather than a file.
    let r = post(&server, "/cgi-bin/file1.sh", &[], &[b'y'; 1000]);
    assert_eq!(r.text(), "Hello World\n");
}

#[test]
fn head_gets_no_body_unlike_python() {
    let site = Site::new().script("cgi-bin/file1.sh", HELLO);
    let server = site.start(&[]);
    let bytes =
        server.raw(b"HEAD /cgi-bin/file1.sh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "no body: {text}");
    assert!(text.contains("Content-Length: 12\r\n"), "{text}");
}

#[test]
fn responses_are_framed_so_keep_alive_works() {
    let site = Site::new().script("cgi-bin/file1.sh", HELLO).script(
        "cgi-bin/big.sh",
        "printf 'Content-Type: text/plain\\n\\n'\nhead -c 200000 /dev/zero | tr '\\0' 'z'\n",
    );
    let server = site.start(&[]);
    let mut stream = server.connect();
    for _ in 0..2 {
        stream
            .write_all(b"GET /cgi-bin/file1.sh HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
        let r = read_response(&mut stream, false);
        assert_eq!(r.header("content-length"), Some("12"));
        assert_eq!(r.text(), "Hello World\n");
        stream
            .write_all(b"GET /cgi-bin/big.sh HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
        let r = read_response(&mut stream, false);
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        let body = dechunk(&r.body).expect("complete");
        assert_eq!(body.len(), 200_000);
    }
}

#[test]
fn nph_scripts_pass_through_untouched() {
    let site = Site::new()
        .script(
            "cgi-bin/nph-raw.sh",
            "printf 'HTTP/1.1 299 Custom\\r\\nX-Raw: yes\\r\\n\\r\\nraw body'\n",
        )
        .script(
            "cgi-bin/nph-bad.sh",
            "printf 'Content-Type: text/plain\\n\\nnot a status line\\n'\n",
        );
    let server = site.start(&[]);
    let bytes = server.raw(b"GET /cgi-bin/nph-raw.sh HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        bytes, b"HTTP/1.1 299 Custom\r\nX-Raw: yes\r\n\r\nraw body",
        "nothing added, and the connection closes after it"
    );
    server.wait_for_log(|l| l.contains("\"GET /cgi-bin/nph-raw.sh HTTP/1.1\" 299"));
    assert_eq!(server.get("/cgi-bin/nph-bad.sh").status, 502);
}

// --- WebAssembly in CGI directories --------------------------------------

#[test]
fn a_wasm_file_in_cgi_bin_runs_in_the_sandbox_not_as_a_process() {
    let site = Site::new().script("cgi-bin/file1.sh", HELLO);
    install(&site.path().join("cgi-bin"), "echo", "echo");
    install(&site.path().join("cgi-bin"), "hostile", "hostile");
    std::fs::write(
        site.path().join("cgi-bin/broken.wasm"),
        b"\0asm\x01\0\0\0garbage",
    )
    .expect("write");
    let server = Server::start_with_env(
        site.path(),
        &["--cgi", "--plugin-timeout", "1"],
        &[("SECRET_TOKEN", "hunter2")],
    );
    let r = post(&server, "/cgi-bin/echo.wasm/info?a=1", &[], b"payload");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_eq!(var(&text, "SCRIPT_NAME"), Some("/cgi-bin/echo.wasm"));
    assert_eq!(var(&text, "PATH_INFO"), Some("/info"));
    assert_eq!(var(&text, "QUERY_STRING"), Some("a=1"));
    assert_eq!(var(&text, "CONTENT_LENGTH"), Some("7"));
    assert!(text.ends_with("payload"), "{text}");
    assert!(!text.contains("hunter2"));
    assert_eq!(var(&text, "PATH"), None, "no host variable at all");
    assert_eq!(var(&text, "DOCUMENT_ROOT"), None, "no host path");
    // The plugin sandbox's limits hold.
    let started = Instant::now();
    assert_eq!(server.get("/cgi-bin/hostile.wasm?spin").status, 504);
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(server.get("/cgi-bin/hostile.wasm?panic").status, 500);
    assert_eq!(server.get("/cgi-bin/hostile.wasm?ok").status, 200);
    assert_eq!(server.get("/cgi-bin/broken.wasm").status, 500);
    server.wait_for_log(|l| l.starts_with("[cgi /cgi-bin/broken.wasm] cannot load"));
    assert_eq!(server.get("/cgi-bin/file1.sh").text(), "Hello World\n");
}

#[test]
fn a_replaced_wasm_file_is_reloaded() {
    let site = Site::new();
    let cgi_bin = site.path().join("cgi-bin");
    install(&cgi_bin, "echo", "app");
    let server = site.start(&[]);
    assert!(
        server
            .get("/cgi-bin/app.wasm")
            .text()
            .contains("SCRIPT_NAME=")
    );
    // Replace it (a new inode, as an editor or a deploy would).
    install(&cgi_bin, "hostile", "new");
    std::fs::rename(cgi_bin.join("new.wasm"), cgi_bin.join("app.wasm")).expect("rename");
    let r = server.get("/cgi-bin/app.wasm?ok");
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("SCRIPT_NAME="), "{}", r.text());
}

/// Concurrent first requests to a `.wasm` script that takes seconds to
/// compile wait for one compile, not one each (each would hold a
/// compiler's memory and a core).
#[test]
fn concurrent_first_requests_to_a_wasm_script_compile_it_once() {
    let site = Site::new();
    write(
        site.path(),
        "cgi-bin/slow.wasm",
        slow_to_compile(SLOW / 2, false),
    );
    let server = site.start(&["--no-cache"]);
    let addr = server.addr;
    let clients: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = support::connect(addr);
                stream
                    .set_read_timeout(Some(support::COMPILE_TIMEOUT))
                    .expect("timeout");
                stream
                    .write_all(
                        b"GET /cgi-bin/slow.wasm HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                    )
                    .expect("send");
                Response::parse(&support::read_to_close(&mut stream), false).expect("response")
            })
        })
        .collect();
    for client in clients {
        let r = client.join().expect("client");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "big\n");
    }
    server.wait_for_log(|l| l.starts_with("[cgi /cgi-bin/slow.wasm] compiled in "));
    let compiles = server
        .log()
        .iter()
        .filter(|l| l.starts_with("[cgi /cgi-bin/slow.wasm] compiled in "))
        .count();
    assert_eq!(compiles, 1, "{:?}", server.log());
}

// --- The spawner ---------------------------------------------------------

#[test]
fn a_script_that_kills_the_spawner_only_fails_itself_and_is_killed_after() {
    // Scripts and the spawner that starts them are the same user, so a
    // script can kill it: that request fails, the next one gets a new
    // spawner, which kills what the old one left running.
    let (site, pid) = Site::new()
        .script("cgi-bin/file1.sh", HELLO)
        .reporting_script(
            "cgi-bin/rogue.sh",
            // (It lets the spawner report its start first, so that its pid is
            // known: a script that kills the spawner sooner, like one that
            // escapes its group with setsid, can outlive its request. Process
            // groups tidy up after scripts; they do not contain hostile ones:
            // the sandbox is what .wasm scripts are for.)
            "echo $$ > {report}\nsleep 0.3\nkill -9 $PPID\nexec sleep 300\n",
        );
    let server = site.start(&[]);
    assert_eq!(server.get("/cgi-bin/file1.sh").status, 200);
    assert_eq!(server.get("/cgi-bin/rogue.sh").status, 500);
    server.wait_for_log(|l| {
        l.contains("[cgi /cgi-bin/rogue.sh] cannot wait for it: the CGI spawner stopped")
    });
    assert_eq!(server.get("/cgi-bin/file1.sh").text(), "Hello World\n");
    server.wait_for_log(|l| l.contains("the CGI spawner had stopped; started a new one"));
    wait_until_dead(&wait_for_pids(&pid, 1));
}

#[test]
fn a_script_that_stops_the_spawner_gets_it_replaced() {
    let (site, _) = Site::new().script("cgi-bin/file1.sh", HELLO).reporting_script(
        "cgi-bin/stopper.sh",
        "echo $$ > {report}\nkill -STOP $PPID\nprintf 'Content-Type: text/plain\\n\\nstopped\\n'\n",
    );
    let server = site.start(&["--cgi-timeout", "1"]);
    let started = Instant::now();
    // Its start or its exit is never reported: its own request ends at the
    // timeout, with whatever could be said by then.
    let status = server.get("/cgi-bin/stopper.sh").status;
    assert!(matches!(status, 200 | 500 | 504), "{status}");
    // The next start times out, and the stopped spawner is replaced.
    let status = server.get("/cgi-bin/file1.sh").status;
    assert!(matches!(status, 200 | 500), "{status}");
    let mut answered = false;
    while !answered && started.elapsed() < Duration::from_secs(15) {
        answered = server.get("/cgi-bin/file1.sh").text() == "Hello World\n";
    }
    assert!(answered, "no new spawner");
    server.wait_for_log(|l| l.contains("the CGI spawner stopped answering; killing it"));
}

#[test]
fn scripts_are_started_by_a_spawner_running_as_the_scripts_user() {
    let site = Site::new().script(
        "cgi-bin/parent.sh",
        "printf 'Content-Type: text/plain\\n\\n'\n\
         echo \"PARENT=$PPID\"\n\
         echo \"PARENT_CMD=$(tr '\\0' ' ' < /proc/$PPID/cmdline)\"\n\
         echo \"PARENT_UID=$(awk '/^Uid:/ {print $2}' /proc/$PPID/status)\"\n\
         echo \"UID=$(id -u)\"\n",
    );
    let server = site.start(&[]);
    let text = server.get("/cgi-bin/parent.sh").text();
    assert!(
        var(&text, "PARENT_CMD").is_some_and(|c| c.ends_with("__cgi-spawner ")),
        "{text}"
    );
    assert_eq!(var(&text, "PARENT_UID"), var(&text, "UID"), "{text}");
    let spawner_parent = std::fs::read_to_string(format!(
        "/proc/{}/stat",
        var(&text, "PARENT").expect("parent")
    ))
    .expect("stat");
    let ppid = spawner_parent
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .expect("ppid");
    assert_eq!(
        ppid,
        server.pid().to_string(),
        "the server started the spawner"
    );
}

#[test]
fn scripts_still_running_when_the_server_stops_are_killed() {
    let (site, pids) = Site::new().hanging_script("cgi-bin/hang.sh");
    let mut server = site.start(&["--shutdown-grace", "1"]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /cgi-bin/hang.sh HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let pids = wait_for_pids(&pids, 2);
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    wait_until_dead(&pids);
}

#[test]
fn expect_100_continue_gets_continue_then_the_scripts_answer() {
    let site = Site::new().script("cgi-bin/env.sh", ENV_SCRIPT);
    let server = site.start(&[]);
    let mut stream = server.connect();
    stream
        .write_all(
            b"POST /cgi-bin/env.sh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
              Expect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .expect("send head");
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").expect("send body");
    let r = read_response(&mut stream, false);
    assert_eq!(r.status, 200);
    assert_eq!(var(&r.text(), "BODY"), Some("hello"));
}

#[test]
fn a_body_over_cgi_max_body_is_413_without_running_the_script() {
    let (site, ran) = Site::new().reporting_script(
        "cgi-bin/upload.sh",
        "touch {report}\nprintf 'Content-Type: text/plain\\n\\nok'\n",
    );
    let server = site.start(&["--cgi-max-body", "1"]);
    let body = vec![b'x'; (1 << 20) + 1];
    assert_eq!(post(&server, "/cgi-bin/upload.sh", &[], &body).status, 413);
    assert!(!ran.exists());
    assert_eq!(
        post(&server, "/cgi-bin/upload.sh", &[], &body[..1000]).status,
        200
    );
    assert!(ran.exists());
}

#[test]
fn a_child_that_escaped_the_group_cannot_hold_the_response_open() {
    let (site, pid) = Site::new().reporting_script(
        "cgi-bin/escape.sh",
        "printf 'Content-Type: text/plain\\n\\ndone\\n'\n\
         setsid sh -c 'echo $$ > {report}; exec sleep 300' &\n\
         while [ ! -s {report} ]; do sleep 0.05; done\n",
    );
    let server = site.start(&[]);
    let started = Instant::now();
    let r = server.get("/cgi-bin/escape.sh");
    assert_eq!((r.status, r.text().as_str()), (200, "done\n"));
    assert!(started.elapsed() < Duration::from_secs(8));
    let pid = wait_for_pids(&pid, 1);
    let _ = std::process::Command::new("kill").arg(&pid[0]).status();
}
