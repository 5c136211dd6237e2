//! Test harness: the real `wasmhttpd` binary on an ephemeral loopback port.
//!
//! [`Server::start`] runs the binary with port 0, reads the bound address
//! from its banner (never a pre-picked "free" port, which would race), and
//! collects its stderr (the access log) in the background. The process is
//! killed when the `Server` is dropped. Requests are raw bytes over a
//! `TcpStream` with read timeouts, so a test can send anything and can never
//! hang.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any single test read may wait.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server.
pub struct Server {
    child: Child,
    /// The address from the banner (loopback).
    pub addr: SocketAddr,
    /// The banner line.
    pub banner: String,
    log: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

/// A guard against a hang, not a timing, wherever a test waits for a
/// compile: an interpreter's component compiles for many seconds the first
/// time, longer on a loaded machine.
pub const COMPILE_TIMEOUT: Duration = Duration::from_secs(180);

/// Waits until one of `lines` (collected in the background) satisfies
/// `pred`, up to `limit`; returns it.
fn wait_for_line(
    lines: &Mutex<Vec<String>>,
    what: &str,
    limit: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let so_far = lines.lock().expect(what).clone();
        if let Some(line) = so_far.iter().find(|l| pred(l)) {
            return line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{what} line not found; {what}:\n{}",
            so_far.join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wasmhttpd")
}

impl Server {
    /// Serves `dir` on 127.0.0.1, port 0, with extra arguments.
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        let mut all = vec!["0", "--bind", "127.0.0.1", "--directory"];
        let dir = dir.to_str().expect("utf-8 path");
        all.push(dir);
        all.extend_from_slice(args);
        Server::start_raw(&all)
    }

    /// Runs the binary with exactly these arguments and waits for its banner.
    pub fn start_raw(args: &[&str]) -> Server {
        Server::start_in(None, args)
    }

    /// Runs the binary with these arguments in working directory `cwd`.
    pub fn start_in(cwd: Option<&Path>, args: &[&str]) -> Server {
        let mut command = Command::new(binary());
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        command.args(args);
        Server::spawn(command, args)
    }

    /// Serves `dir` like [`Server::start`], with extra environment variables.
    pub fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(binary());
        command.args([
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
            dir.to_str().expect("utf-8 path"),
        ]);
        command.args(args).envs(env.iter().copied());
        Server::spawn(command, args)
    }

    /// Serves `dir` like [`Server::start`], but as an unprivileged user when
    /// the tests run as root (with `setpriv`), so file permissions apply.
    pub fn start_unprivileged(dir: &Path, args: &[&str]) -> Server {
        if !rustix::process::geteuid().is_root() {
            return Server::start(dir, args);
        }
        let dir = dir.to_str().expect("utf-8 path");
        let mut command = Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", binary()]);
        // The shared compile cache belongs to root: nothing to keep here.
        command
            .args(["0", "--bind", "127.0.0.1", "--directory", dir, "--no-cache"])
            .args(args);
        Server::spawn(command, args)
    }

    /// Runs `command` (which starts the binary) and waits for its banner.
    pub fn spawn_command(command: Command) -> Server {
        Server::spawn(command, &[])
    }

    fn spawn(mut command: Command, args: &[&str]) -> Server {
        // Compiled plugins go to a cache shared by the tests (compiled once
        // per test run, not once per server), never to the user's own.
        if !command.get_envs().any(|(name, _)| name == "XDG_CACHE_HOME") {
            command.env("XDG_CACHE_HOME", workspace().join("target/test-cache"));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wasmhttpd");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("log").push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let printed = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&printed);
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for line in lines {
                let Ok(line) = line else { break };
                sink.lock().expect("stdout").push(line);
            }
        });
        // The banner follows at most a second of plugin compiles; the
        // bound is the same guard against a hang.
        let banner = match rx.recv_timeout(COMPILE_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let log = log.lock().expect("log").join("\n");
                panic!("no banner from wasmhttpd {args:?}; stderr:\n{log}");
            }
        };
        let port = banner_port(&banner).unwrap_or_else(|| panic!("no port in banner {banner:?}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Server {
            child,
            addr,
            banner,
            log,
            stdout: printed,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens a connection with read and write timeouts.
    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    /// Sends `raw` on a new connection and reads until the server closes it.
    pub fn raw(&self, raw: &[u8]) -> Vec<u8> {
        exchange(self.addr, raw)
    }

    /// Sends one request (with `Connection: close`) and parses the response.
    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
        let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        let bytes = self.raw(raw.as_bytes());
        Response::parse(&bytes, method == "HEAD").unwrap_or_else(|| {
            panic!(
                "unparseable response to {target}: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        })
    }

    /// `GET target`.
    pub fn get(&self, target: &str) -> Response {
        self.request("GET", target, &[])
    }

    /// What the server printed on stdout after the banner (plugin lines).
    pub fn stdout_lines(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(100));
        self.stdout.lock().expect("stdout").clone()
    }

    /// Waits (bounded: a large plugin may compile for a while) until a
    /// line on stdout satisfies `pred`; returns it.
    pub fn wait_for_stdout(&self, pred: impl Fn(&str) -> bool) -> String {
        wait_for_line(&self.stdout, "stdout", COMPILE_TIMEOUT, pred)
    }

    /// Waits for the plugin line that starts with `describe` (the banner's,
    /// or the one printed when a plugin that compiled in the background is
    /// ready).
    pub fn wait_for_plugin_line(&self, describe: &str) -> String {
        self.wait_for_stdout(|l| {
            l == describe || l.starts_with(&format!("{describe}, ready after "))
        })
    }

    /// The access log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// Waits (bounded) until a log line satisfies `pred`; returns it.
    pub fn wait_for_log(&self, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for_log_within(READ_TIMEOUT, pred)
    }

    /// [`Server::wait_for_log`], waiting up to `limit`.
    pub fn wait_for_log_within(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        wait_for_line(&self.log, "log", limit, pred)
    }

    /// Sends a signal to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's peak resident memory so far, in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .expect("VmHWM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in a `Serving HTTP on ADDR port N (URL) ...` banner (Python's
/// form, which wasmhttpd and `python3 -m http.server` both print).
pub fn banner_port(banner: &str) -> Option<u16> {
    banner
        .split(" port ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// Connects to `addr` with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream
        .set_write_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream
}

/// Sends `raw` to any server at `addr` on a new connection and reads until
/// the server closes it.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(raw).expect("send");
    read_to_close(&mut stream)
}

/// Reads until EOF (or a reset, after which what arrived is returned).
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("read failed after {} bytes: {e}", out.len()),
        }
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status line's version, e.g. `HTTP/1.1`.
    pub version: String,
    /// The status code.
    pub status: u16,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Bytes after this response (a pipelined next response).
    pub rest: Vec<u8>,
}

impl Response {
    /// Parses one response at the start of `bytes`; `head_only` for a HEAD.
    pub fn parse(bytes: &[u8], head_only: bool) -> Option<Response> {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&bytes[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next()?.to_string();
        let status = parts.next()?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        let start = end + 4;
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().expect("length"));
        let no_body = head_only || status == 304 || status == 204 || (100..200).contains(&status);
        let body_len = if no_body {
            0
        } else {
            length.unwrap_or(bytes.len() - start)
        };
        if bytes.len() < start + body_len {
            return None;
        }
        Some(Response {
            version,
            status,
            headers,
            body: bytes[start..start + body_len].to_vec(),
            rest: bytes[start + body_len..].to_vec(),
        })
    }

    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads exactly one response from a kept-alive connection.
pub fn read_response(stream: &mut TcpStream, head_only: bool) -> Response {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(response) = Response::parse(&bytes, head_only) {
            let complete_length = response
                .header("content-length")
                .map(|v| v.parse::<usize>().expect("length"));
            let chunked = response.header("transfer-encoding") == Some("chunked");
            if head_only
                || complete_length.is_some()
                || chunked && dechunk(&response.body).is_some()
            {
                return response;
            }
        }
        let n = stream.read(&mut buf).expect("read response");
        assert!(
            n > 0,
            "connection closed before a full response: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&buf[..n]);
    }
}

/// Decodes a chunked body; `None` until its final chunk has arrived.
pub fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).ok()?, 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return body.starts_with(b"\r\n").then_some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// A directory tree for a test, removed when dropped.
pub fn site() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Writes `content` to `dir/relative`, creating parents.
pub fn write(dir: &Path, relative: &str, content: impl AsRef<[u8]>) {
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, content).expect("write");
}

/// The workspace's root directory.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

/// The test guest `name` (`tests/guests/src/bin/NAME.rs`), compiled for
/// wasm32-wasip1: a core module.
pub fn guest(name: &str) -> PathBuf {
    built("guests", "wasm32-wasip1", name)
}

/// The same test guest compiled for wasm32-wasip2: a component exporting
/// `wasi:cli/run`.
pub fn guest_component(name: &str) -> PathBuf {
    built("guests", "wasm32-wasip2", name)
}

/// The test component `name` (`tests/components/src/bin/NAME.rs`, or
/// `test_components` for its library), compiled for wasm32-wasip2.
pub fn component(name: &str) -> PathBuf {
    built("components", "wasm32-wasip2", name)
}

/// The wasi:http p3 test handler (`tests/p3`), compiled for wasm32-wasip2.
pub fn p3_component() -> PathBuf {
    built("p3", "wasm32-wasip2", "test_p3")
}

/// `tests/CRATE` built for `target`, once per test process, in its own
/// target directory so as not to contend with the host's build; the path
/// of its `NAME.wasm`.
fn built(krate: &str, target: &str, name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let key = format!("{krate}/{target}");
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let dir = match built.iter().find(|(k, _)| *k == key) {
        Some((_, dir)) => dir.clone(),
        None => {
            let root = workspace();
            let target_dir = root.join("target").join(krate);
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let output = Command::new(cargo)
                .args(["build", "--release", "--quiet", "--target", target])
                .arg("--manifest-path")
                .arg(root.join("tests").join(krate).join("Cargo.toml"))
                .arg("--target-dir")
                .arg(&target_dir)
                .output()
                .expect("run cargo to build the test guests");
            assert!(
                output.status.success(),
                "building tests/{krate} for {target} failed (is the target installed? \
                 `rustup target add {target}`):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let dir = target_dir.join(target).join("release");
            built.push((key, dir.clone()));
            dir
        }
    };
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "no test guest {name} in {}", dir.display());
    path
}

/// A site (`site/`, with `index.html` and `file.txt`) and a plugins
/// directory (`plugins/`) in one temp dir.
pub struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "site/index.html", "static index\n");
        write(dir.path(), "site/file.txt", "static file\n");
        std::fs::create_dir_all(dir.path().join("plugins")).expect("mkdir");
        Setup { dir }
    }

    pub fn plugins(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    pub fn site(&self) -> PathBuf {
        self.dir.path().join("site")
    }

    /// Test guest `guest` (wasm32-wasip1) as `plugins/NAME.wasm`.
    pub fn plugin(self, guest: &str, name: &str) -> Setup {
        install(&self.plugins(), guest, name);
        self
    }

    /// The WebAssembly file `wasm` as `plugins/NAME.wasm`.
    pub fn with(self, wasm: &Path, name: &str) -> Setup {
        install_file(&self.plugins(), wasm, name);
        self
    }

    pub fn sidecar(self, name: &str, toml: &str) -> Setup {
        write(&self.plugins(), &format!("{name}.toml"), toml);
        self
    }

    /// The server on the site, with the plugins directory and `args`.
    pub fn start(&self, args: &[&str]) -> Server {
        let plugins = self.plugins();
        let mut all = vec!["--plugins", plugins.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        Server::start(&self.site(), &all)
    }
}

/// Copies test guest `guest` into `plugins` as `NAME.wasm`.
pub fn install(plugins: &Path, guest_name: &str, as_name: &str) {
    install_file(plugins, &guest(guest_name), as_name);
}

/// Copies the WebAssembly file `wasm` into `plugins` as `NAME.wasm`.
pub fn install_file(plugins: &Path, wasm: &Path, as_name: &str) {
    std::fs::create_dir_all(plugins).expect("mkdir plugins");
    std::fs::copy(wasm, plugins.join(format!("{as_name}.wasm"))).expect("copy guest");
}

/// A WASI command that answers `big`, with `functions` filler functions
/// to make it slow to compile; with `missing`, it also imports a function
/// the host does not have (so it fails, but only once compiled).
pub fn slow_to_compile(functions: usize, missing: bool) -> Vec<u8> {
    let head = "Content-Type: text/plain\\0a\\0abig\\0a";
    let mut wat = String::from(
        "(module\n(import \"wasi_snapshot_preview1\" \"fd_write\" (func $w (param i32 i32 i32 i32) (result i32)))\n",
    );
    if missing {
        wat.push_str("(import \"env\" \"missing\" (func))\n");
    }
    wat.push_str(&format!(
        "(memory (export \"memory\") 1)\n(data (i32.const 16) \"{head}\")\n\
         (func (export \"_start\") (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 30))\n\
         (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))\n"
    ));
    for f in 0..functions {
        wat.push_str(&format!(
            "(func (export \"f{f}\") (param i32 i32) (result i32) local.get 0\n"
        ));
        for op in 0..60 {
            wat.push_str(&format!(
                "local.get 1 i32.const {op} i32.add i32.mul local.get 1 i32.xor i32.const {f} i32.rotl\n"
            ));
        }
        wat.push_str(")\n");
    }
    wat.push(')');
    wat::parse_str(&wat).expect("valid module")
}

/// How many filler functions make a module compile for seconds here.
pub const SLOW: usize = 6000;

/// One server with every backend kind that reads a body, started with
/// `--cgi` and `args`: a CGI script (`/cgi-bin/echo.sh`, which copies its
/// body), a CGI-over-WASI plugin (`/echo`, the echo guest) and a wasi:http
/// component (`/web/...`, the test handler), beside the static site.
pub fn every_backend(args: &[&str]) -> (Setup, Server) {
    use std::os::unix::fs::PermissionsExt;
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

/// `wasmhttpd build` run with these arguments, in the environment the
/// tests give it: the shared test cache, and the componentize-py that
/// `plugins/build` installed first on PATH (so nothing is installed twice).
pub fn build_command(args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("build")
        .args(args)
        .env("XDG_CACHE_HOME", workspace().join("target/test-cache"));
    let toolchain = workspace().join("target/toolchains/componentize-py/bin");
    if toolchain.is_dir() {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let paths = std::iter::once(toolchain).chain(std::env::split_paths(&path));
        command.env("PATH", std::env::join_paths(paths).expect("PATH"));
    }
    command
}

/// The Python handler `tests/python/FILE` built into a plugin (serving
/// `class`, when given), once per version of the file and of the bridge:
/// kept in `target/python-plugins` across runs, as builds take seconds.
pub fn python_plugin(file: &str, class: Option<&str>) -> PathBuf {
    python_plugin_with(file, class, &[])
}

/// Like [`python_plugin`], with more arguments for `wasmhttpd build`.
pub fn python_plugin_with(file: &str, class: Option<&str>, extra: &[&str]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    let source = workspace().join("tests/python").join(file);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(&source)
        .expect("handler file")
        .hash(&mut hasher);
    std::fs::read(workspace().join("host/src/pybuild/bridge.py"))
        .expect("bridge")
        .hash(&mut hasher);
    std::fs::read(workspace().join("host/src/pybuild/mod.rs"))
        .expect("build")
        .hash(&mut hasher);
    class.hash(&mut hasher);
    extra.hash(&mut hasher);
    let stem = file.trim_end_matches(".py").replace('/', "-");
    let out = workspace()
        .join("target/python-plugins")
        .join(format!("{stem}-{:016x}.wasm", hasher.finish()));
    if out.is_file() {
        return out;
    }
    std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
    let mut args = vec![
        source.to_str().expect("utf-8"),
        "-o",
        out.to_str().expect("utf-8"),
    ];
    if let Some(class) = class {
        args.extend(["--handler", class]);
    }
    args.extend_from_slice(extra);
    let output = build_command(&args).output().expect("run wasmhttpd build");
    assert!(
        output.status.success() && out.is_file(),
        "wasmhttpd build {file} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// A process's memory, descriptors and threads (or their peaks).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub rss_kib: u64,
    pub fds: usize,
    pub threads: u64,
}

/// What process `pid` uses now (Linux `/proc`).
pub fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    Usage {
        rss_kib: field("VmRSS:"),
        fds,
        threads: field("Threads:"),
    }
}

/// What curl got: status, HTTP version, response headers, body, and
/// whether curl itself succeeded.
#[derive(Debug)]
pub struct Curled {
    pub status: u16,
    pub version: String,
    pub headers: String,
    pub body: Vec<u8>,
    pub ok: bool,
}

/// `curl -s` with `args` against `url`, bounded to 20 s; the status and
/// version come from `-w`, the headers from `-D`.
pub fn curl(args: &[&str], url: &str) -> Curled {
    let dir = tempfile::tempdir().expect("dir");
    let head = dir.path().join("head");
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-D"])
        .arg(&head)
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    let mut body = out.stdout;
    let tail_at = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let tail = String::from_utf8_lossy(&body[tail_at + 1..]).into_owned();
    body.truncate(tail_at);
    let mut words = tail.split(' ');
    Curled {
        status: words.next().and_then(|w| w.parse().ok()).unwrap_or(0),
        version: words.next().unwrap_or("").to_owned(),
        headers: std::fs::read_to_string(&head).unwrap_or_default(),
        body,
        ok: out.status.success(),
    }
}

/// The server's resident memory, open descriptors and threads, sampled
/// in the background until [`Sampler::stop`].
pub struct Sampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Usage>,
}

impl Sampler {
    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> Sampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peak = Usage::default();
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                let now = usage(pid);
                peak.rss_kib = peak.rss_kib.max(now.rss_kib);
                peak.fds = peak.fds.max(now.fds);
                peak.threads = peak.threads.max(now.threads);
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        Sampler { stop, thread }
    }

    /// The peaks seen.
    pub fn stop(self) -> Usage {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("sampler")
    }
}
