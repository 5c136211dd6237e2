//! End to end: WebAssembly plugins (CGI-over-WASI) — discovery, routing,
//! the CGI contract, the sandbox and its limits, each against the real
//! binary with guests built from `tests/guests`.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::{
    COMPILE_TIMEOUT, Response, SLOW, Server, Setup, dechunk, install, read_response,
    slow_to_compile, write,
};

fn var<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
}

#[test]
fn plugin_answers_at_its_name_and_below_with_rfc_3875_variables() {
    let setup = Setup::new().plugin("echo", "echo");
    let server = setup.start(&[]);
    let raw = b"GET /echo/a%20b/c?x=1&y=%20 HTTP/1.0\r\nHost: example.test:80\r\nUser-Agent: ua/1\r\n\
                Authorization: Basic c2VjcmV0\r\nProxy: http://evil:1/\r\nX-Multi: a\r\nX-Multi: b\r\n\r\n";
    let r = Response::parse(&server.raw(raw), false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let text = r.text();
    assert_eq!(var(&text, "REQUEST_METHOD"), Some("GET"));
    assert_eq!(var(&text, "SCRIPT_NAME"), Some("/echo"));
    assert_eq!(var(&text, "PATH_INFO"), Some("/a b/c"), "decoded");
    assert_eq!(var(&text, "QUERY_STRING"), Some("x=1&y=%20"), "raw");
    assert_eq!(
        var(&text, "SERVER_PROTOCOL"),
        Some("HTTP/1.0"),
        "the request's version"
    );
    assert_eq!(var(&text, "SERVER_NAME"), Some("example.test"));
    assert_eq!(
        var(&text, "SERVER_PORT"),
        Some(server.addr.port().to_string().as_str())
    );
    assert_eq!(var(&text, "REMOTE_ADDR"), Some("127.0.0.1"));
    assert_eq!(var(&text, "GATEWAY_INTERFACE"), Some("CGI/1.1"));
    assert_eq!(var(&text, "HTTP_USER_AGENT"), Some("ua/1"));
    assert_eq!(var(&text, "HTTP_X_MULTI"), Some("a, b"));
    assert_eq!(var(&text, "HTTP_AUTHORIZATION"), None);
    assert_eq!(var(&text, "HTTP_PROXY"), None, "httpoxy");
    assert_eq!(var(&text, "CONTENT_LENGTH"), None, "no body");
    assert!(text.contains("--body 0 bytes--"));

    // An absolute-form target's authority wins over Host (RFC 9112 §3.2.2).
    let raw = b"GET http://target.test:81/echo/x?q HTTP/1.1\r\nHost: host.test\r\nConnection: close\r\n\r\n";
    let text = Response::parse(&server.raw(raw), false)
        .expect("response")
        .text();
    assert_eq!(var(&text, "SERVER_NAME"), Some("target.test"));
    assert_eq!(var(&text, "PATH_INFO"), Some("/x"));
    assert_eq!(var(&text, "QUERY_STRING"), Some("q"));

    let exact = server.get("/echo").text();
    assert_eq!(var(&exact, "SCRIPT_NAME"), Some("/echo"));
    assert_eq!(var(&exact, "PATH_INFO"), Some(""));
    assert_eq!(
        server.get("/echoes").status,
        404,
        "a prefix route matches whole segments"
    );
}

#[test]
fn request_body_reaches_stdin_with_exact_length() {
    let setup = Setup::new().plugin("echo", "echo");
    let server = setup.start(&[]);
    let r = Response::parse(
        &server.raw(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: text/x\r\nContent-Length: 5\r\n\r\nhello"),
        false,
    )
    .expect("response");
    let text = r.text();
    assert_eq!(var(&text, "CONTENT_LENGTH"), Some("5"));
    assert_eq!(var(&text, "CONTENT_TYPE"), Some("text/x"));
    assert!(text.ends_with("--body 5 bytes--\nhello"), "{text}");

    // A chunked body is de-chunked; CONTENT_LENGTH is its decoded length.
    let r = Response::parse(
        &server.raw(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"),
        false,
    )
    .expect("response");
    let text = r.text();
    assert_eq!(var(&text, "CONTENT_LENGTH"), Some("7"));
    assert!(text.ends_with("--body 7 bytes--\nabcdefg"), "{text}");
}

#[test]
fn expect_100_continue_is_answered_when_the_plugin_reads_the_body() {
    let setup = Setup::new().plugin("echo", "echo");
    let server = setup.start(&[]);
    let mut stream = server.connect();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        )
        .expect("send head");
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"body").expect("send body");
    let r = read_response(&mut stream, false);
    assert!(r.text().ends_with("--body 4 bytes--\nbody"), "{}", r.text());
}

#[test]
fn body_over_the_limit_is_413_before_the_plugin_runs() {
    let setup = Setup::new()
        .plugin("echo", "echo")
        .sidecar("echo", "[limits]\nrequest_body_kib = 1\n");
    let server = setup.start(&[]);
    let body = "x".repeat(2000);
    let raw = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 2000\r\n\r\n{body}"
    );
    assert_eq!(
        Response::parse(&server.raw(raw.as_bytes()), false)
            .expect("r")
            .status,
        413
    );
}

#[test]
fn banner_lists_each_plugin_with_routes_methods_and_kind() {
    let setup = Setup::new()
        .plugin("echo", "echo")
        .plugin("echo", "api")
        .sidecar(
            "api",
            "routes = [\"/api/*\"]\nmethods = [\"POST\", \"PUT\"]\n",
        );
    let server = setup.start(&[]);
    server.wait_for_plugin_line("Plugin echo: /echo /echo/* (all methods; CGI-over-WASI)");
    server.wait_for_plugin_line("Plugin api: /api/* (POST PUT; CGI-over-WASI)");
}

#[test]
fn compiled_plugins_are_kept_on_disk_and_reused_after_a_restart() {
    let setup = Setup::new()
        .plugin("echo", "echo")
        .plugin("counter", "counter");
    let cache = tempfile::tempdir().expect("tempdir");
    let dir = cache.path().join("compiled");
    let flag = ["--cache-dir", dir.to_str().expect("utf-8")];
    let cache_line = |server: &Server| {
        server
            .stdout_lines()
            .into_iter()
            .find(|l| l.starts_with("Compiled code cache: "))
            .unwrap_or_else(|| panic!("no cache line in {:?}", server.stdout_lines()))
    };
    let first = setup.start(&flag);
    assert_eq!(
        cache_line(&first),
        format!(
            "Compiled code cache: {} (0 reused, 2 compiled)",
            dir.display()
        )
    );
    assert_eq!(first.get("/echo").status, 200);
    drop(first);
    assert!(std::fs::read_dir(&dir).expect("cache dir").count() > 0);
    let second = setup.start(&flag);
    assert_eq!(
        cache_line(&second),
        format!(
            "Compiled code cache: {} (2 reused, 0 compiled)",
            dir.display()
        )
    );
    assert_eq!(second.get("/echo").status, 200);
    assert_eq!(second.get("/counter").status, 200);
}

#[test]
fn no_cache_keeps_nothing_on_disk() {
    let setup = Setup::new().plugin("echo", "echo");
    let home = tempfile::tempdir().expect("tempdir");
    let plugins = setup.plugins();
    let args = ["--plugins", plugins.to_str().expect("utf-8"), "--no-cache"];
    let server = Server::start_with_env(
        &setup.site(),
        &args,
        &[("XDG_CACHE_HOME", home.path().to_str().expect("utf-8"))],
    );
    assert_eq!(server.get("/echo").status, 200);
    assert!(
        !server
            .stdout_lines()
            .iter()
            .any(|l| l.starts_with("Compiled code cache")),
        "{:?}",
        server.stdout_lines()
    );
    assert_eq!(std::fs::read_dir(home.path()).expect("home").count(), 0);
}

#[test]
fn broken_plugins_are_reported_by_file_and_the_rest_serve() {
    let setup = Setup::new()
        .plugin("echo", "good")
        .plugin("echo", "badtoml")
        .sidecar(
            "badtoml",
            "routes = [\"/x\"]\nlimits = { memory_mib = \"lots\" }\n",
        );
    write(&setup.plugins(), "garbage.wasm", "not wasm at all");
    // A core module that is a reactor, not a command: no _start.
    std::fs::write(setup.plugins().join("reactor.wasm"), b"\0asm\x01\0\0\0").expect("write");
    let server = setup.start(&[]);
    server.wait_for_log(|l| l.contains("garbage.wasm: not a WebAssembly binary"));
    server.wait_for_log(|l| l.contains("reactor.wasm") && l.contains("_start"));
    server.wait_for_log(|l| l.contains("badtoml.toml") && l.contains("line 2"));
    let log = server.log().join("\n");
    assert!(
        log.contains("reactor.wasm") && log.contains("_start"),
        "{log}"
    );
    assert!(
        log.contains("badtoml.toml") && log.contains("line 2"),
        "{log}"
    );
    assert_eq!(server.get("/good").status, 200);
    assert_eq!(
        server.get("/badtoml").status,
        404,
        "a plugin with a broken sidecar is not routed"
    );
    assert_eq!(server.get("/garbage").status, 404);
}

#[test]
fn a_large_plugin_compiles_in_the_background_while_the_server_answers() {
    let setup = Setup::new().plugin("echo", "small");
    std::fs::write(
        setup.plugins().join("big.wasm"),
        slow_to_compile(SLOW, false),
    )
    .expect("write");
    let started = Instant::now();
    let server = setup.start(&["--no-cache"]);
    let ready_at_banner = started.elapsed();
    // The banner did not wait for it: the big plugin is listed as
    // compiling, with its size; the small one is ready.
    let compiling = server.wait_for_stdout(|l| l.starts_with("Plugin big:"));
    assert!(
        compiling.starts_with("Plugin big: /big /big/* (all methods; compiling ")
            && compiling.ends_with(" MB; requests to it wait)"),
        "{compiling} (banner after {ready_at_banner:?})"
    );
    server.wait_for_plugin_line("Plugin small: /small /small/* (all methods; CGI-over-WASI)");
    // Other routes answer meanwhile.
    assert_eq!(server.get("/file.txt").text(), "static file\n");
    assert!(server.get("/small").text().contains("SCRIPT_NAME=/small"));
    let lines = server.stdout_lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("Plugin big:") && l.contains("ready after")),
        "big compiled already: make slow_to_compile slower: {lines:?}"
    );
    // A request to it waits for it (as long as the compile takes, longer
    // than a read timeout on a loaded machine), then is answered.
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(COMPILE_TIMEOUT))
        .expect("timeout");
    stream
        .write_all(b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    let r = read_response(&mut stream, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "big\n");
    let ready = server.wait_for_plugin_line("Plugin big: /big /big/* (all methods; CGI-over-WASI)");
    let seconds: f64 = ready
        .rsplit_once("ready after ")
        .and_then(|(_, s)| s.strip_suffix(" s"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no time in {ready:?}"));
    if seconds > 5.5 {
        server.wait_for_stdout(|l| l == "Plugin big: compiling, 5 s so far");
    }
}

#[test]
fn a_plugin_that_fails_after_a_long_compile_is_reported_and_unrouted() {
    // A request waits for a compile as long as the plugin may run: here
    // one second, then 503.
    let setup = Setup::new()
        .plugin("echo", "small")
        .sidecar("bad", "[limits]\ntimeout_secs = 1\n");
    std::fs::write(
        setup.plugins().join("bad.wasm"),
        slow_to_compile(SLOW, true),
    )
    .expect("write");
    let server = setup.start(&["--no-cache"]);
    server.wait_for_stdout(|l| l.starts_with("Plugin bad: /bad /bad/* (all methods; compiling "));
    assert_eq!(server.get("/file.txt").status, 200);
    let early = server.get("/bad");
    assert_eq!(early.status, 503);
    assert!(
        early.text().contains("Plugin is still compiling"),
        "{}",
        early.text()
    );
    server.wait_for_log(|l| l == "[plugin bad] still compiling; request answered 503");
    server.wait_for_log_within(COMPILE_TIMEOUT, |l| {
        l.contains("bad.wasm") && l.contains("env::missing")
    });
    // No longer routed: the path falls through to the (absent) file.
    assert_eq!(server.get("/bad").status, 404);
    assert!(server.get("/small").text().contains("SCRIPT_NAME=/small"));
}

#[test]
fn route_conflicts_are_reported_and_the_first_name_keeps_the_route() {
    let setup = Setup::new()
        .plugin("echo", "alpha")
        .sidecar("alpha", "routes = [\"/shared\"]\n")
        .plugin("counter", "beta")
        .sidecar("beta", "routes = [\"/shared\"]\n");
    let server = setup.start(&[]);
    server.wait_for_log(|l| {
        l.contains("beta.wasm: route /shared is already answered by plugin alpha")
    });
    assert!(
        server.get("/shared").text().contains("SCRIPT_NAME=/shared"),
        "alpha answers"
    );
}

#[test]
fn a_post_only_plugin_leaves_get_to_the_static_files() {
    // What a Python user gets by subclassing SimpleHTTPRequestHandler and
    // adding do_POST.
    let setup = Setup::new()
        .plugin("echo", "poster")
        .sidecar("poster", "routes = [\"/*\"]\nmethods = [\"POST\"]\n");
    let server = setup.start(&[]);
    assert_eq!(server.get("/file.txt").body, b"static file\n");
    let r = server.request("POST", "/file.txt", &[("Content-Length", "0")]);
    assert_eq!(r.status, 200);
    assert_eq!(var(&r.text(), "PATH_INFO"), Some("/file.txt"));
    assert_eq!(
        server
            .request("PUT", "/file.txt", &[("Content-Length", "0")])
            .status,
        501
    );
}

#[test]
fn the_plugins_directory_is_never_served_as_files() {
    let setup = Setup::new();
    let plugins = setup.site().join("plugins");
    install(&plugins, "echo", "echo");
    write(&plugins, "echo.toml", "routes = [\"/e\"]\n");
    // A symlink inside the site, to the plugins directory and into it.
    std::os::unix::fs::symlink("plugins", setup.site().join("alias")).expect("symlink");
    std::os::unix::fs::symlink("plugins/echo.toml", setup.site().join("e.toml")).expect("symlink");
    let server = Server::start(
        &setup.site(),
        &["--plugins", plugins.to_str().expect("utf-8")],
    );
    for target in [
        "/alias/echo.toml",
        "/alias/echo.wasm",
        "/alias/",
        "/alias",
        "/e.toml",
    ] {
        assert_eq!(server.get(target).status, 404, "{target}");
    }
    assert_eq!(server.get("/plugins/echo.wasm").status, 404);
    assert_eq!(server.get("/plugins/echo.toml").status, 404);
    assert_eq!(server.get("/plugins/").status, 404);
    assert!(!server.get("/").text().contains("echo.wasm"));
    assert_eq!(server.get("/e").status, 200);
}

/// Sidecars may hold secrets (`env`): however a request reaches the
/// plugins directory, by a symlink to it or to a file in it, or because it
/// is the served directory itself, nothing in it is served.
#[test]
fn the_plugins_directory_is_hidden_by_identity_not_by_path() {
    let setup = Setup::new();
    let plugins = setup.plugins();
    install(&plugins, "echo", "echo");
    write(
        &plugins,
        "echo.toml",
        "routes = [\"/e\"]\nenv = { TOKEN = \"hunter2\" }\n",
    );
    std::os::unix::fs::symlink(&plugins, setup.site().join("alias")).expect("symlink");
    std::os::unix::fs::symlink(plugins.join("echo.toml"), setup.site().join("sidecar.toml"))
        .expect("symlink");
    let server = setup.start(&["--follow-symlinks"]);
    for target in [
        "/alias/echo.toml",
        "/alias/echo.wasm",
        "/alias/",
        "/sidecar.toml",
    ] {
        assert_eq!(server.get(target).status, 404, "{target}");
    }
    assert_eq!(server.get("/file.txt").status, 200);
    drop(server);
    let server = setup.start(&[]);
    for target in ["/alias/echo.toml", "/alias/", "/sidecar.toml"] {
        assert_eq!(server.get(target).status, 404, "{target}");
    }

    // The plugins directory served as the site.
    let dir = plugins.to_str().expect("utf-8");
    let server = Server::start(&plugins, &["--plugins", dir]);
    for target in ["/echo.toml", "/echo.wasm", "/"] {
        let r = server.get(target);
        assert_eq!(r.status, 404, "{target}");
        assert!(!r.text().contains("hunter2"), "{target}");
    }
    assert_eq!(server.get("/e").status, 200);
}

#[test]
fn sandbox_hides_the_filesystem_and_the_servers_environment() {
    let setup = Setup::new().plugin("snoop", "snoop");
    let plugins = setup.plugins();
    let server = Server::start_with_env(
        &setup.site(),
        &["--plugins", plugins.to_str().expect("utf-8")],
        &[("SECRET_TOKEN", "hunter2")],
    );
    let text = server.get("/snoop").text();
    assert!(text.contains("passwd: denied"), "{text}");
    assert!(text.contains("root: denied"), "{text}");
    assert!(
        !text.contains("SECRET_TOKEN") && !text.contains("PATH ") && !text.contains("HOME"),
        "{text}"
    );
    assert!(text.contains("REQUEST_METHOD"), "{text}");
}

#[test]
fn granted_directories_and_variables_reach_the_plugin_and_no_further() {
    let setup = Setup::new()
        .plugin("files", "rw")
        .plugin("files", "ro")
        .plugin("echo", "env");
    std::fs::create_dir_all(setup.plugins().join("data/rw")).expect("mkdir");
    std::fs::create_dir_all(setup.plugins().join("data/ro")).expect("mkdir");
    write(&setup.plugins(), "data/ro/existing.txt", "x");
    let setup = setup
        .sidecar(
            "rw",
            "[[dirs]]\nhost = \"data/rw\"\nguest = \"/data\"\nwritable = true\n",
        )
        .sidecar("ro", "[[dirs]]\nhost = \"data/ro\"\nguest = \"/data\"\n")
        .sidecar("env", "env = { GREETING = \"hello\" }\n");
    let server = setup.start(&[]);

    let r = server.request("POST", "/rw", &[("Content-Length", "0")]);
    assert!(r.text().contains("write: Ok(())"), "{}", r.text());
    let listing = server.get("/rw").text();
    assert!(listing.contains("files: note.txt"), "{listing}");
    assert!(
        listing.contains("..: denied"),
        "the grant cannot be left: {listing}"
    );
    assert!(setup.plugins().join("data/rw/note.txt").exists());

    let r = server.request("POST", "/ro", &[("Content-Length", "0")]);
    assert!(!r.text().contains("write: Ok"), "read-only: {}", r.text());
    assert!(server.get("/ro").text().contains("files: existing.txt"));

    assert_eq!(var(&server.get("/env").text(), "GREETING"), Some("hello"));
}

#[test]
fn every_request_gets_a_fresh_instance() {
    let setup = Setup::new().plugin("counter", "counter");
    let server = setup.start(&[]);
    for _ in 0..3 {
        assert!(
            server
                .get("/counter")
                .text()
                .contains("seen by this instance: 1")
        );
    }
}

/// Starts the hostile plugin with a short deadline and small memory.
fn hostile() -> (Setup, Server) {
    let setup = Setup::new()
        .plugin("hostile", "hostile")
        .plugin("echo", "other");
    let server = setup.start(&["--plugin-timeout", "2", "--plugin-memory", "32"]);
    (setup, server)
}

/// While `attack` runs on its own connection, static files and another
/// plugin keep answering promptly; afterwards the hostile plugin serves a
/// normal request. Returns the attack's response and how long it took.
fn under_attack(server: &Server, attack: &str) -> (Response, Duration) {
    let addr = server.addr;
    let target = attack.to_string();
    let attacker = std::thread::spawn(move || {
        let started = Instant::now();
        let raw = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let bytes = support::exchange(addr, raw.as_bytes());
        (bytes, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(server.get("/file.txt").status, 200);
        assert_eq!(server.get("/other").status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "others slowed down during {attack}: {:?}",
            started.elapsed()
        );
    }
    let (bytes, elapsed) = attacker.join().expect("attacker");
    assert_eq!(
        server.get("/hostile?ok").text(),
        "ok\n",
        "the plugin serves normally after {attack}"
    );
    let response = Response::parse(&bytes, false).unwrap_or_else(|| Response {
        version: String::new(),
        status: 0,
        headers: vec![],
        body: bytes.clone(),
        rest: vec![],
    });
    (response, elapsed)
}

#[test]
fn infinite_loop_gets_504_within_the_deadline() {
    let (_setup, server) = hostile();
    let (r, elapsed) = under_attack(&server, "/hostile?spin");
    assert_eq!(r.status, 504);
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    server.wait_for_log(|l| l.contains("[plugin hostile] stopped after its time limit of 2s"));
}

#[test]
fn sleeping_for_an_hour_gets_504_within_the_deadline() {
    let (_setup, server) = hostile();
    let (r, elapsed) = under_attack(&server, "/hostile?sleep");
    assert_eq!(r.status, 504);
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
}

#[test]
fn unbounded_allocation_is_capped_and_gets_500() {
    let (_setup, server) = hostile();
    let (r, _) = under_attack(&server, "/hostile?hog");
    assert_eq!(r.status, 500);
    server.wait_for_log(|l| l.contains("[plugin hostile] memory limit of 32 MiB reached"));
    assert!(
        server.peak_rss_kib() < 512 * 1024,
        "host memory stayed bounded"
    );
}

#[test]
fn unbounded_recursion_gets_500() {
    let (_setup, server) = hostile();
    let (r, _) = under_attack(&server, "/hostile?recurse");
    assert_eq!(r.status, 500);
    // Rust keeps its stack in linear memory, so the overflow traps as an
    // out-of-bounds access; wasmtime's own stack limit catches the rest.
    server.wait_for_log(|l| {
        l.contains("[plugin hostile] trapped") || l.contains("[plugin hostile] stack overflow")
    });
}

#[test]
fn panic_gets_500_and_its_stderr_is_logged_with_the_plugin_name() {
    let (_setup, server) = hostile();
    let (r, _) = under_attack(&server, "/hostile?panic");
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("<p>Error code: 500</p>"),
        "Python's error page"
    );
    server.wait_for_log(|l| l == "[plugin hostile] about to panic");
    server.wait_for_log(|l| l.contains("[plugin hostile] ") && l.contains("boom"));
}

#[test]
fn non_zero_exit_gets_500_even_after_a_complete_response() {
    let (_setup, server) = hostile();
    assert_eq!(server.get("/hostile?exit").status, 500);
    server.wait_for_log(|l| l.contains("[plugin hostile] exited with status 3"));
}

#[test]
fn unbounded_output_is_cut_by_the_response_cap_and_the_response_aborted() {
    let setup = Setup::new()
        .plugin("hostile", "hostile")
        .sidecar("hostile", "[limits]\nresponse_kib = 1024\n");
    let server = setup.start(&[]);
    let bytes = server.raw(b"GET /hostile?flood HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]);
    assert!(
        head.starts_with("HTTP/1.1 200") && head.contains("Transfer-Encoding: chunked"),
        "{head}"
    );
    assert!(!bytes.ends_with(b"0\r\n\r\n"), "aborted: no final chunk");
    assert!(
        bytes.len() < (1 << 20) + (1 << 17),
        "stopped near the 1 MiB cap: {}",
        bytes.len()
    );
    assert!(server.peak_rss_kib() < 512 * 1024);
    assert_eq!(server.get("/hostile?ok").status, 200);
}

#[test]
fn unbounded_output_without_a_cap_is_stopped_by_the_deadline_in_bounded_memory() {
    let (_setup, server) = hostile();
    let started = Instant::now();
    let mut stream = server.connect();
    stream
        .write_all(b"GET /hostile?flood HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    // Read slowly: the guest must block, not buffer.
    let mut total = 0usize;
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(total > 1 << 20, "it streamed: {total}");
    assert!(server.peak_rss_kib() < 512 * 1024, "host memory bounded");
}

#[test]
fn failure_after_commit_aborts_the_response() {
    let (_setup, server) = hostile();
    let bytes =
        server.raw(b"GET /hostile?late-fail HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        !bytes.ends_with(b"0\r\n\r\n"),
        "no final chunk: the client knows it is incomplete"
    );
    server.wait_for_log(|l| l.contains("[plugin hostile]") && l.contains("unreachable"));
}

#[test]
fn cgi_responses_status_redirects_and_malformed_output() {
    let setup = Setup::new().plugin("raw", "raw");
    let server = setup.start(&[]);
    let post = |output: &str| {
        let raw = format!(
            "POST /raw HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{output}",
            output.len()
        );
        Response::parse(&server.raw(raw.as_bytes()), false).expect("response")
    };
    let r = post("Status: 404 Not Here\nContent-Type: text/plain\nX-Extra: 1\n\nmissing");
    assert_eq!(
        (r.status, r.text().as_str(), r.header("x-extra")),
        (404, "missing", Some("1"))
    );
    let r = post("Location: https://example.com/next\n\n");
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("https://example.com/next"))
    );
    let r = post("Location: /file.txt\n\n");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "static file\n"),
        "local redirect, served as GET"
    );
    let r = post("Content-Type: text/plain\nContent-Length: 999\n\nshort");
    assert_eq!(
        (r.status, r.header("content-length")),
        (200, Some("5")),
        "we frame the body"
    );
    for malformed in [
        "",
        "no header block",
        "X-Only: 1\n\nbody",
        "Status: 99\n\n",
        "Content-Type: a/b\n folded\n\n",
    ] {
        assert_eq!(post(malformed).status, 502, "{malformed:?}");
    }
    server.wait_for_log(|l| l.contains("[plugin raw] no output"));
    server.wait_for_log(|l| l.contains("[plugin raw] malformed output"));
}

#[test]
fn head_gets_no_body_and_large_output_streams_chunked() {
    let setup = Setup::new().plugin("big", "big");
    let server = setup.start(&[]);
    let raw = server.raw(b"HEAD /big?300000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(
        raw.ends_with(b"\r\n\r\n"),
        "{}",
        String::from_utf8_lossy(&raw)
    );

    let size = 5_000_000;
    let bytes = server.raw(
        format!("GET /big?{size} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    assert!(String::from_utf8_lossy(&bytes[..head_end]).contains("Transfer-Encoding: chunked"));
    assert!(bytes.ends_with(b"\r\n0\r\n\r\n"), "complete");
    let body = dechunk(&bytes[head_end..]).expect("a complete chunked body");
    assert_eq!(body.len(), size);

    // HTTP/1.0 clients get the same body, delimited by the connection's end.
    let bytes = server.raw(b"GET /big?100000 HTTP/1.0\r\n\r\n");
    let r = Response::parse(&bytes, false).expect("response");
    assert_eq!(
        (r.status, r.body.len(), r.header("connection")),
        (200, 100_000, Some("close"))
    );

    // Small output is sent with a Content-Length.
    let r = server.get("/big?10");
    assert_eq!(r.header("content-length"), Some("10"));
}

#[test]
fn keep_alive_continues_after_plugin_responses() {
    let setup = Setup::new().plugin("echo", "echo").plugin("big", "big");
    let server = setup.start(&[]);
    let mut stream = server.connect();
    for target in ["/echo", "/big?100", "/echo/x"] {
        stream
            .write_all(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .expect("send");
        assert_eq!(read_response(&mut stream, false).status, 200, "{target}");
    }
}

#[test]
fn stderr_lines_are_logged_tagged_and_escaped() {
    let setup = Setup::new().plugin("chatty", "chatty");
    let server = setup.start(&[]);
    assert_eq!(server.get("/chatty").status, 200);
    server.wait_for_log(|l| l == "[plugin chatty] first line");
    let red = server.wait_for_log(|l| l.starts_with("[plugin chatty] second line"));
    assert!(
        red.contains("\\x1b[31mred") && !red.contains('\x1b'),
        "{red:?}"
    );
}

/// Polls `ok` for up to `limit`; returns how long it took to become true.
fn within(limit: Duration, mut ok: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if ok() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

#[test]
fn hot_reload_adds_replaces_and_removes_plugins_without_restart() {
    let setup = Setup::new().plugin("echo", "live");
    let server = setup.start(&[]);
    assert_eq!(server.get("/added").status, 404);

    install(&setup.plugins(), "counter", "added");
    // How fast is measured by bench/, not asserted here: under a loaded
    // test run only "soon" is reliable.
    within(Duration::from_secs(10), || {
        server.get("/added").status == 200
    })
    .expect("added");

    install(&setup.plugins(), "counter", "live");
    within(Duration::from_secs(10), || {
        server.get("/live").text().contains("seen by this instance")
    })
    .expect("replaced");

    std::fs::remove_file(setup.plugins().join("added.wasm")).expect("remove");
    within(Duration::from_secs(10), || {
        server.get("/added").status == 404
    })
    .expect("removed");

    write(&setup.plugins(), "live.toml", "routes = [\"/moved/*\"]\n");
    within(Duration::from_secs(10), || {
        server.get("/moved/x").status == 200
    })
    .expect("sidecar applied");
    assert_eq!(server.get("/live").status, 404);

    let lines = server.stdout_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Plugin added:") && l.ends_with("(added)")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l == "Plugin added: removed"),
        "{lines:?}"
    );
}

#[test]
fn a_broken_replacement_is_reported_once_and_the_previous_version_keeps_serving() {
    let setup = Setup::new().plugin("echo", "steady");
    let server = setup.start(&[]);
    assert_eq!(server.get("/steady").status, 200);
    std::fs::write(
        setup.plugins().join("steady.wasm"),
        b"\0asm\x01\0\0\0garbage",
    )
    .expect("write");
    server.wait_for_log(|l| {
        l.contains("steady.wasm") && l.contains("the previous version keeps serving")
    });
    assert!(
        server.get("/steady").text().contains("SCRIPT_NAME=/steady"),
        "still the old version"
    );
    std::thread::sleep(Duration::from_millis(600));
    let reports = server
        .log()
        .iter()
        .filter(|l| l.contains("steady.wasm"))
        .count();
    assert_eq!(reports, 1, "{:?}", server.log());
}

#[test]
fn a_half_written_copy_causes_no_spurious_error() {
    let setup = Setup::new();
    let server = setup.start(&[]);
    let wasm = std::fs::read(support::guest("echo")).expect("guest");
    let target = setup.plugins().join("slow.wasm");
    let mut file = std::fs::File::create(&target).expect("create");
    file.write_all(&wasm[..wasm.len() / 2]).expect("first half");
    file.flush().expect("flush");
    // Longer than the quiet period: a reload sees the half-written file.
    std::thread::sleep(Duration::from_millis(500));
    file.write_all(&wasm[wasm.len() / 2..])
        .expect("second half");
    drop(file);
    within(Duration::from_secs(10), || {
        server.get("/slow").status == 200
    })
    .expect("loaded once complete");
    assert!(
        !server.log().iter().any(|l| l.contains("slow.wasm")),
        "{:?}",
        server.log()
    );
}

#[test]
fn a_request_in_flight_finishes_on_the_version_it_started_with() {
    let setup = Setup::new().plugin("big", "swap");
    let server = setup.start(&[]);
    let size = 4_000_000;
    let mut stream = server.connect();
    stream
        .write_all(
            format!("GET /swap?{size} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .expect("send");
    let mut first = [0u8; 1024];
    let n = stream.read(&mut first).expect("response started");
    assert!(n > 0);
    // The guest is now blocked on its full output pipe. Replace it.
    install(&setup.plugins(), "echo", "swap");
    within(Duration::from_secs(10), || {
        server.get("/swap").text().contains("SCRIPT_NAME=/swap")
    })
    .expect("new version");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("rest");
    let mut all = first[..n].to_vec();
    all.extend_from_slice(&rest);
    assert!(
        all.ends_with(b"\r\n0\r\n\r\n"),
        "the old version completed its response"
    );
    assert!(all.len() > size, "{}", all.len());
}

#[test]
fn without_address_space_for_the_pool_plugins_are_allocated_on_demand() {
    let setup = Setup::new().plugin("echo", "echo");
    let plugins = setup.plugins();
    let site = setup.site();
    // 16 GiB of address space: far too little for the pool (a few TiB),
    // enough for instances allocated one at a time.
    let script = format!(
        "ulimit -v 16777216 && exec {} 0 --bind 127.0.0.1 --directory {} --plugins {}",
        support::binary(),
        site.display(),
        plugins.display()
    );
    let mut command = std::process::Command::new("sh");
    command.args(["-c", &script]);
    let server = Server::spawn_command(command);
    server.wait_for_log(|l| l.contains("pooling allocator unavailable") && l.contains("on demand"));
    let r = server.get("/echo");
    assert_eq!(r.status, 200);
    assert_eq!(var(&r.text(), "SCRIPT_NAME"), Some("/echo"));
}
