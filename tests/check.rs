//! `wasmhttpd check FILE.wasm [--sidecar FILE.toml]` against the real
//! binary: the kind, the imports and which the server provides, routes,
//! grants, limits and the compile, and exit 0 only for what would load.

mod support;

use std::path::Path;
use std::process::Command;

use support::{Server, Setup, binary, component, guest, slow_to_compile, write};

/// What `wasmhttpd check` printed, and whether it said it would load.
struct Checked {
    text: String,
    loads: bool,
}

fn check(file: &Path, args: &[&str]) -> Checked {
    let out = Command::new(binary())
        .arg("check")
        .arg(file)
        .args(args)
        .output()
        .expect("run wasmhttpd check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "exit {code:?}\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Checked {
        text,
        loads: code == Some(0),
    }
}

/// The report's line that starts with `label`.
fn line<'a>(checked: &'a Checked, label: &str) -> &'a str {
    checked
        .text
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line in:\n{}", checked.text))
}

#[test]
fn a_wasi_http_component_would_load_with_every_import_provided() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("web.wasm");
    std::fs::copy(component("http"), &file).expect("copy");
    let got = check(&file, &[]);
    assert!(got.loads, "{}", got.text);
    assert!(
        line(&got, "kind:").contains("wasi:http p2 component")
            && line(&got, "kind:").contains("wasi:http/incoming-handler@0.2"),
        "{}",
        got.text
    );
    assert!(
        line(&got, "imports:").contains("all provided"),
        "{}",
        got.text
    );
    assert!(got.text.contains("wasi:http/types@0.2"), "{}", got.text);
    assert_eq!(line(&got, "sidecar:"), "sidecar:   none (the defaults)");
    assert_eq!(
        line(&got, "routes:"),
        "routes:    /web /web/* (all methods)"
    );
    assert!(
        got.text
            .contains("1024 handles, 64 KiB per header object, 8 outbound requests at once")
            && got.text.contains("a fresh instance per request"),
        "{}",
        got.text
    );
    assert!(
        line(&got, "compiled:").contains(" MB of code from a "),
        "{}",
        got.text
    );
    assert_eq!(line(&got, "verdict:"), "verdict:   would load");
}

#[test]
fn a_command_module_shows_what_its_sidecar_grants_and_limits() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("echo.wasm");
    std::fs::copy(guest("echo"), &file).expect("copy");
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    write(
        dir.path(),
        "echo.toml",
        "routes = [\"/api/*\"]\nmethods = [\"POST\", \"PUT\"]\n\
         env = { GREETING = \"hi\" }\n\
         dirs = [{ host = \"data\", guest = \"/data\", writable = true }]\n\
         [limits]\nmemory_mib = 32\ntimeout_secs = 5\n",
    );
    let got = check(&file, &["--plugin-memory", "64"]);
    assert!(got.loads, "{}", got.text);
    assert!(
        line(&got, "kind:").starts_with("kind:      CGI-over-WASI command (a core module"),
        "{}",
        got.text
    );
    assert!(
        line(&got, "imports:").contains("all provided"),
        "{}",
        got.text
    );
    assert!(
        got.text.contains("wasi_snapshot_preview1::fd_write"),
        "{}",
        got.text
    );
    assert_eq!(line(&got, "routes:"), "routes:    /api/* (POST PUT)");
    assert!(
        line(&got, "grants:").ends_with("data as /data (read-write)"),
        "{}",
        got.text
    );
    assert!(got.text.contains("environment: GREETING\n"), "{}", got.text);
    assert!(got.text.contains("outbound hosts: none"), "{}", got.text);
    assert!(
        line(&got, "limits:").contains("5 s per request, 32 MiB of memory"),
        "{}",
        got.text
    );
}

#[test]
fn a_missing_import_is_named_and_the_rest_shown_provided() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("needs-kv.wasm");
    std::fs::copy(component("missing_import"), &file).expect("copy");
    let got = check(&file, &[]);
    assert!(!got.loads, "{}", got.text);
    let kv = got
        .text
        .lines()
        .find(|l| l.trim_start().starts_with("test:missing/kv"))
        .unwrap_or_else(|| panic!("no test:missing/kv line:\n{}", got.text));
    assert!(kv.contains("NOT PROVIDED"), "{kv}");
    assert!(
        line(&got, "imports:").contains(", 1 not provided"),
        "{}",
        got.text
    );
    assert!(
        got.text
            .lines()
            .any(|l| l.trim_start().starts_with("wasi:cli/")
                && l.ends_with("provided")
                && !l.contains("NOT")),
        "{}",
        got.text
    );
    assert!(
        line(&got, "verdict:").starts_with("verdict:   would not load: ")
            && line(&got, "verdict:").contains("test:missing/kv"),
        "{}",
        got.text
    );

    let module = dir.path().join("env.wasm");
    std::fs::write(&module, slow_to_compile(0, true)).expect("write");
    let got = check(&module, &[]);
    assert!(!got.loads, "{}", got.text);
    assert!(
        got.text
            .lines()
            .any(|l| l.trim_start().starts_with("env::missing") && l.contains("NOT PROVIDED")),
        "{}",
        got.text
    );
    assert!(
        got.text.lines().any(|l| l
            .trim_start()
            .starts_with("wasi_snapshot_preview1::fd_write")
            && !l.contains("NOT")),
        "{}",
        got.text
    );
}

#[test]
fn a_wasi_http_p3_component_loads_and_says_how_its_instances_are_shared() {
    let got = check(&support::p3_component(), &[]);
    assert!(got.loads, "{}", got.text);
    assert!(
        line(&got, "kind:")
            .starts_with("kind:      wasi:http p3 component (exports wasi:http/handler@0.3.0)"),
        "{}",
        got.text
    );
    assert!(
        !got.text.contains("NOT PROVIDED"),
        "every WASI 0.3 import is provided:\n{}",
        got.text
    );
    assert!(
        got.text.contains(
            "an instance serves up to 16 requests at once and 128 in all, dropped after 1 s idle"
        ),
        "wasmtime serve's defaults:\n{}",
        got.text
    );
}

#[test]
fn a_component_exporting_a_p3_handler_of_the_wrong_shape_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("p3.wasm");
    let bytes = wat::parse_str(
        "(component (instance $handler) (export \"wasi:http/handler@0.3.0\" (instance $handler)))",
    )
    .expect("component");
    std::fs::write(&file, bytes).expect("write");
    let got = check(&file, &[]);
    assert!(!got.loads, "{}", got.text);
    assert!(
        line(&got, "kind:")
            .starts_with("kind:      wasi:http p3 component (exports wasi:http/handler@0.3.0)"),
        "{}",
        got.text
    );
    assert!(
        line(&got, "verdict:").contains("handle"),
        "the missing function is named: {}",
        got.text
    );
}

#[test]
fn what_cannot_load_says_why_and_exits_1() {
    let dir = tempfile::tempdir().expect("dir");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").expect("write");
    let got = check(&junk, &[]);
    assert!(!got.loads);
    assert!(
        line(&got, "verdict:").contains("not a WebAssembly binary"),
        "{}",
        got.text
    );

    let got = check(&dir.path().join("absent.wasm"), &[]);
    assert!(!got.loads);
    assert!(
        line(&got, "verdict:").contains("cannot read"),
        "{}",
        got.text
    );

    // A sidecar that does not parse, named on the command line.
    let file = dir.path().join("echo.wasm");
    std::fs::copy(guest("echo"), &file).expect("copy");
    write(dir.path(), "other.toml", "routes = [\"/a\"]\nbogus = 1\n");
    let sidecar = dir.path().join("other.toml");
    let got = check(&file, &["--sidecar", sidecar.to_str().expect("utf-8")]);
    assert!(!got.loads);
    assert!(
        line(&got, "sidecar:").contains("other.toml"),
        "{}",
        got.text
    );
    let verdict = &got.text[got.text.find("verdict:").expect("verdict")..];
    assert!(
        verdict.starts_with("verdict:   would not load: ")
            && verdict.contains("unknown field `bogus`"),
        "{}",
        got.text
    );

    // [reuse] asked of a command, which can start only once.
    write(dir.path(), "echo.toml", "[reuse]\nrequests = 4\n");
    let got = check(&file, &[]);
    assert!(!got.loads);
    assert!(line(&got, "verdict:").contains("[reuse]"), "{}", got.text);

    // A bad flag is a usage error, as the server's: exit 2.
    let out = Command::new(binary())
        .args(["check", "--bogus"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_plugin_refused_at_load_points_at_wasmhttpd_check() {
    let setup = Setup::new();
    let plugins = setup.plugins();
    std::fs::write(plugins.join("needs-env.wasm"), slow_to_compile(0, true)).expect("write");
    let server: Server = setup.start(&[]);
    let line = server.wait_for_log(|l| l.contains("needs-env.wasm"));
    assert!(
        line.contains("wasmhttpd check ") && line.contains("says more"),
        "{line}"
    );
}
