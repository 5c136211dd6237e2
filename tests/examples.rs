//! End to end: every example plugin in `plugins/` (built by `plugins/build`,
//! which `./run-tests` runs first), served as the demo serves them.

mod support;

use std::path::Path;

use support::{Response, Server, workspace};

/// How the Rust examples were built: the same sources, for wasm32-wasip1
/// (`plugins/NAME.wasm`, CGI-over-WASI modules) and for wasm32-wasip2
/// (`plugins/wasip2/NAME.wasm`, wasi:http components).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    Module,
    Component,
}

const BOTH: [Build; 2] = [Build::Module, Build::Component];

/// A copy of the built examples and their sidecars, with the notes data
/// directory, so that tests never write into the repository.
fn demo() -> (tempfile::TempDir, Server) {
    demo_of(Build::Module)
}

/// The demo with the Rust examples of `build`.
fn demo_of(build: Build) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(plugins.join("data/notes")).expect("mkdir");
    let source = workspace().join("plugins");
    let rust = match build {
        Build::Module => source.clone(),
        Build::Component => source.join("wasip2"),
    };
    let optional = OPTIONAL
        .iter()
        .filter(|name| !INTERPRETED.contains(name) && built(name));
    for name in [
        "hello",
        "form",
        "headers",
        "notes",
        "hello-c",
        "hello-http",
        "hello-p3",
    ]
    .iter()
    .chain(optional)
    {
        let from = if RUST.contains(name) { &rust } else { &source };
        let built = from.join(format!("{name}.wasm"));
        assert!(
            built.exists(),
            "{} is missing: run plugins/build",
            built.display()
        );
        std::fs::copy(&built, plugins.join(format!("{name}.wasm"))).expect("copy");
    }
    std::fs::copy(source.join("notes.toml"), plugins.join("notes.toml")).expect("copy sidecar");
    let server = Server::start(&workspace().join("site"), &["--plugins", path(&plugins)]);
    (dir, server)
}

/// The examples written in Rust with the guest SDK.
const RUST: [&str; 4] = ["hello", "form", "headers", "notes"];

/// wasi:http components from interpreters (tens of MB, seconds to compile
/// the first time): served only by their own tests.
const INTERPRETED: [&str; 3] = ["hello-py", "hello-js", "hello-py-p3"];

/// Examples in languages whose toolchains come from PyPI or npm:
/// `plugins/build` skips one whose toolchain cannot be installed (loudly;
/// never under CI=true), and so does its test.
const OPTIONAL: [&str; 5] = [
    "hello-zig",
    "hello-as",
    "hello-py",
    "hello-js",
    "hello-py-p3",
];

/// Whether `plugins/NAME.wasm` was built; under CI it must have been.
fn built(name: &str) -> bool {
    let built = workspace().join(format!("plugins/{name}.wasm")).exists();
    if !built {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "plugins/{name}.wasm is missing under CI: plugins/build must build every language"
        );
        eprintln!("SKIPPED: plugins/{name}.wasm was not built; its test did not run");
    }
    built
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

#[test]
fn hello_answers_get_and_501_for_what_it_does_not_implement() {
    for build in BOTH {
        hello_answers(build);
    }
}

fn hello_answers(build: Build) {
    let (_dir, server) = demo_of(build);
    let kind = match build {
        Build::Module => "CGI-over-WASI",
        Build::Component => "wasi:http component",
    };
    let banner = format!("Plugin hello: /hello /hello/* (all methods; {kind})");
    server.wait_for_plugin_line(&banner);
    let r = server.get("/hello/there");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "Hello from a WebAssembly plugin!\nYou asked for /hello/there\n"
    );
    let r = server.request("POST", "/hello", &[("Content-Length", "0")]);
    assert_eq!(r.status, 501);
    assert!(
        r.text().contains("Unsupported method ('POST')"),
        "{}",
        r.text()
    );
    let r = server.request("OPTIONS", "/hello", &[]);
    assert_eq!((r.status, r.header("allow")), (204, Some("GET, OPTIONS")));
}

#[test]
fn the_demo_site_is_still_served_as_files() {
    let (_dir, server) = demo();
    assert!(server.get("/").text().contains("wasmhttpd"));
    assert_eq!(server.get("/docs/notes.txt").status, 200);
}

#[test]
fn headers_reports_client_and_server_values_and_headers() {
    for build in BOTH {
        let (_dir, server) = demo_of(build);
        let text = server
            .request("GET", "/headers/x%20y?q=1", &[("X-Custom", "yes")])
            .text();
        assert!(text.contains("client_address=(\"127.0.0.1\", "), "{text}");
        assert!(text.contains("command=GET\n"), "{text}");
        assert!(text.contains("path=/headers/x%20y?q=1\n"), "{text}");
        assert!(text.contains("real path=/headers/x y\n"), "{text}");
        assert!(text.contains("query=q=1\n"), "{text}");
        assert!(text.contains("SERVER_NAME=test\n"), "{text}");
        assert!(text.contains("X-Custom=yes\n"), "{text}");
        assert!(text.contains("Host=test\n"), "{text}");
        if build == Build::Module {
            assert!(text.contains("SERVER_SOFTWARE=wasmhttpd/"), "{text}");
        }
    }
}

#[test]
fn form_reports_urlencoded_fields_and_multipart_uploads() {
    for build in BOTH {
        form_reports(build);
    }
}

fn form_reports(build: Build) {
    let (_dir, server) = demo_of(build);
    assert!(
        server
            .get("/form")
            .text()
            .contains("enctype=\"multipart/form-data\"")
    );
    let body = "name=Ada+Lovelace&lang=en";
    let raw = format!(
        "POST /form HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let text = Response::parse(&server.raw(raw.as_bytes()), false)
        .expect("r")
        .text();
    assert!(
        text.contains("\tname=Ada Lovelace\n") && text.contains("\tlang=en\n"),
        "{text}"
    );
    // The same body chunked: a wasi:http component sees no length.
    let raw = format!(
        "POST /form HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let text = Response::parse(&server.raw(raw.as_bytes()), false)
        .expect("r")
        .text();
    assert!(text.contains("\tname=Ada Lovelace\n"), "{build:?}: {text}");

    let multipart = "--B0undary\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nmy file\r\n\
                     --B0undary\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\n\
                     Content-Type: text/plain\r\n\r\n0123456789\r\n--B0undary--\r\n";
    let raw = format!(
        "POST /form HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=B0undary\r\n\
         Content-Length: {}\r\n\r\n{multipart}",
        multipart.len()
    );
    let text = Response::parse(&server.raw(raw.as_bytes()), false)
        .expect("r")
        .text();
    assert!(text.contains("\ttitle=my file\n"), "{text}");
    assert!(
        text.contains("\tUploaded upload as \"a.txt\" (10 bytes)\n"),
        "{text}"
    );
}

#[test]
fn notes_keeps_notes_in_its_granted_directory() {
    for build in BOTH {
        notes_keeps(build);
    }
}

fn notes_keeps(build: Build) {
    let (dir, server) = demo_of(build);
    let body = "note=buy+milk+%26+bread";
    let raw = format!(
        "POST /notes HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = Response::parse(&server.raw(raw.as_bytes()), false).expect("r");
    assert_eq!((r.status, r.header("location")), (303, Some("/notes")));
    let list = server.get("/notes").text();
    assert!(list.contains("<li>buy milk &amp; bread</li>"), "{list}");
    let stored = std::fs::read_to_string(dir.path().join("plugins/data/notes/notes.txt"))
        .expect("notes file");
    assert_eq!(stored, "buy milk & bread\n");
}

#[test]
fn hello_c_is_a_plugin_written_in_c() {
    let (_dir, server) = demo();
    let text = server.get("/hello-c/path?x=1").text();
    assert!(text.starts_with("Hello from C!\n"), "{text}");
    assert!(text.contains("path=/path\nquery=x=1\n"), "{text}");
    let raw =
        b"POST /hello-c HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello";
    let text = Response::parse(&server.raw(raw), false).expect("r").text();
    assert!(text.contains("body(5)=hello"), "{text}");
}

/// Checks an example that echoes its method, path, query and body.
fn echoes_the_request(server: &Server, name: &str, greeting: &str) {
    let text = server.get(&format!("/{name}/path?x=1")).text();
    assert!(text.starts_with(greeting), "{text}");
    assert!(
        text.contains("method=GET\npath=/path\nquery=x=1\n"),
        "{text}"
    );
    let raw = format!(
        "POST /{name} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"
    );
    let text = Response::parse(&server.raw(raw.as_bytes()), false)
        .expect("r")
        .text();
    assert!(text.contains("method=POST\n"), "{text}");
    assert!(text.contains("body(5)=hello"), "{text}");
}

#[test]
fn hello_http_is_the_bare_wasi_http_hello() {
    let (_dir, server) = demo();
    server.wait_for_plugin_line(
        "Plugin hello-http: /hello-http /hello-http/* (all methods; wasi:http component)",
    );
    for target in ["/hello-http", "/hello-http/any/path?q=1"] {
        let r = server.get(target);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.text(), "Hello, world!\n");
    }
}

/// Two `wait` requests sent together to a p3 example: both answer, from
/// one instance (their counts follow each other), in about the time of one.
fn waits_overlap(server: &Server, name: &str, greeting: &str) {
    let first = server.get(&format!("/{name}"));
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("text/plain"));
    assert_eq!(
        first.text(),
        format!("{greeting} (request 1 of this instance)\n")
    );
    let started = std::time::Instant::now();
    let waits: Vec<_> = (0..2)
        .map(|_| {
            let addr = server.addr;
            let raw =
                format!("GET /{name}/wait?1500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            std::thread::spawn(move || support::exchange(addr, raw.as_bytes()))
        })
        .collect();
    let mut counts = Vec::new();
    for wait in waits {
        let bytes = wait.join().expect("wait");
        let r = Response::parse(&bytes, false).expect("response");
        assert_eq!(r.status, 200);
        let text = r.text();
        assert!(text.starts_with("Waited 1500 ms (request "), "{text}");
        let count: u64 = text
            .trim_start_matches("Waited 1500 ms (request ")
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a request count");
        counts.push(count);
    }
    counts.sort();
    // One instance counted both (the first request's may have gone on
    // finishing its body while they came, and a new one taken them).
    assert_eq!(counts[1], counts[0] + 1, "{counts:?}");
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(2800),
        "not concurrent: {took:?}"
    );
}

#[test]
fn hello_p3_is_a_wasi_http_p3_component_whose_requests_overlap() {
    let (_dir, server) = demo();
    server.wait_for_plugin_line(
        "Plugin hello-p3: /hello-p3 /hello-p3/* (all methods; wasi:http p3 component; \
         16 requests at once, reused for 128, 1 s idle)",
    );
    waits_overlap(&server, "hello-p3", "Hello, world!");
}

#[test]
fn hello_py_p3_is_a_wasi_http_p3_component_written_in_python() {
    if !built("hello-py-p3") {
        return;
    }
    let (_dir, server) = interpreted_as("hello-py-p3", "wasi:http p3 component");
    waits_overlap(&server, "hello-py-p3", "Hello from Python, over WASI 0.3!");
}

#[test]
fn hello_zig_is_a_plugin_written_in_zig() {
    if !built("hello-zig") {
        return;
    }
    let (_dir, server) = demo();
    echoes_the_request(&server, "hello-zig", "Hello from Zig!\n");
}

#[test]
fn hello_as_is_a_plugin_written_in_assemblyscript() {
    if !built("hello-as") {
        return;
    }
    let (_dir, server) = demo();
    echoes_the_request(&server, "hello-as", "Hello from AssemblyScript!\n");
}

#[test]
fn the_banner_lists_every_example() {
    let (_dir, server) = demo();
    let optional = OPTIONAL
        .into_iter()
        .filter(|name| !INTERPRETED.contains(name) && built(name));
    for name in [
        "form",
        "headers",
        "hello",
        "hello-c",
        "hello-http",
        "hello-p3",
        "notes",
    ]
    .into_iter()
    .chain(optional)
    {
        let line = server.wait_for_stdout(|l| l.starts_with(&format!("Plugin {name}: /{name} ")));
        assert!(!line.contains("compiling"), "{line}");
    }
}

/// A server with only `plugins/NAME.wasm`, an interpreter's wasi:http
/// component.
fn interpreted(name: &str) -> (tempfile::TempDir, Server) {
    interpreted_as(name, "wasi:http component")
}

/// The same, for a component of `kind` as the banner says it.
fn interpreted_as(name: &str, kind: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    let file = format!("{name}.wasm");
    std::fs::copy(workspace().join("plugins").join(&file), plugins.join(&file)).expect("copy");
    let server = Server::start(&workspace().join("site"), &["--plugins", path(&plugins)]);
    let banner = format!("Plugin {name}: /{name} /{name}/* (all methods; {kind}");
    server.wait_for_stdout(|l| l.starts_with(&banner) && !l.contains("compiling"));
    (dir, server)
}

#[test]
fn hello_py_is_a_wasi_http_component_written_in_python() {
    if !built("hello-py") {
        return;
    }
    let (_dir, server) = interpreted("hello-py");
    echoes_the_request(&server, "hello-py", "Hello from Python!\n");
}

#[test]
fn hello_js_is_a_wasi_http_component_written_in_javascript() {
    if !built("hello-js") {
        return;
    }
    let (_dir, server) = interpreted("hello-js");
    echoes_the_request(&server, "hello-js", "Hello from JavaScript!\n");
}
