//! WebAssembly plugins: `.wasm` files in the plugins directory that answer
//! requests, sandboxed.
//!
//! A plugin is `NAME.wasm` with an optional sidecar `NAME.toml`. Its kind is
//! told from the binary, never from a flag:
//! - a component exporting `wasi:http/incoming-handler@0.2.x` is a wasi:http
//!   handler, one exporting `wasi:http/handler@0.3.x` a wasi:http p3
//!   handler, which serves several requests at once;
//! - a core module exporting `_start` (a `wasm32-wasip1` command), or a
//!   component exporting `wasi:cli/run@0.2.x`, runs as CGI-over-WASI.
//!
//! Anything else is refused at load with what was found.
//!
//! - [`manifest`]: the sidecar.
//! - [`registry`]: the plugins of a directory and their routes.
//! - [`limits`]: the limits and grants a plugin runs with.
//! - [`executor`]: a binary's kind, told from its bytes, and its executor.
//! - [`compile`]: compiling a plugin off the request path.
//! - [`check`]: `wasmhttpd check`, what a binary would be as a plugin.
//! - [`imports`]: which of a binary's imports the server provides.
//! - [`engine`]: the engine, pool and epoch ticker every plugin shares.
//! - [`store`]: what each instance's store holds, its caps and deadline.
//! - [`wagi`]: the CGI-over-WASI executor.
//! - [`proxy`]: the wasi:http 0.2 executor.
//! - [`p3`]: the wasi:http p3 executor.
//! - [`exchange`] and [`incoming`]: what both wasi:http executors share.
//! - [`outbound`]: which outbound requests a component may send.
//! - [`reuse`]: instances kept between requests, where a sidecar asks.
//! - [`watch`]: hot reload.

pub mod check;
pub mod compile;
pub mod engine;
pub(crate) mod exchange;
pub mod executor;
pub mod imports;
pub(crate) mod incoming;
pub mod limits;
pub mod manifest;
pub mod outbound;
pub mod p3;
pub mod proxy;
pub mod registry;
pub mod reuse;
pub mod store;
pub mod wagi;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use self::executor::{Executor, prepare};
pub use self::limits::{Grants, Limits};

use self::compile::{Compile, megabytes};
use self::engine::Runtime;
use self::manifest::Manifest;
use self::outbound::Outbound;
use self::wagi::{Invocation, read_body};
use crate::cgi::output::{Output, collect};
use crate::error::HttpError;
use crate::request::Request;
use crate::request_body::RequestBody;

/// What identifies one version of a plugin's files: the `.wasm` and the
/// sidecar's inode, size and modification time.
pub type Fingerprint = [(u64, u64, i64, i64); 2];

/// The fingerprint of `NAME.wasm` and `NAME.toml` in `dir` now (zeros for
/// a file that is absent).
pub fn fingerprint(dir: &Path, name: &str) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    let of = |file: PathBuf| {
        std::fs::metadata(file).map_or((0, 0, 0, 0), |m| {
            (m.ino(), m.size(), m.mtime(), m.mtime_nsec())
        })
    };
    [
        of(dir.join(format!("{name}.wasm"))),
        of(dir.join(format!("{name}.toml"))),
    ]
}

/// A loaded plugin, ready to serve.
#[derive(Debug)]
pub struct Plugin {
    /// Its name (the file name without `.wasm`).
    pub name: String,
    /// Its `.wasm` file.
    pub file: PathBuf,
    /// The version of its files it was loaded from.
    pub fingerprint: Fingerprint,
    /// Its configuration.
    pub manifest: Manifest,
    /// Its limits, resolved.
    pub limits: Limits,
    /// What its log lines start with: `[plugin NAME]`.
    pub tag: String,
    grants: Grants,
    outbound: Outbound,
    compile: Compile,
}

/// Which part of a request's path a plugin route matched.
#[derive(Debug, Clone)]
pub struct Matched {
    /// The plugin.
    pub plugin: Arc<Plugin>,
    /// `SCRIPT_NAME`: the route's path.
    pub script_name: String,
    /// `PATH_INFO`: the rest.
    pub path_info: String,
}

impl Plugin {
    /// Reads `dir/NAME.wasm` and `dir/NAME.toml` if there is one, and
    /// starts compiling in the background ([`Plugin::compiled`] waits for
    /// it). A sidecar that does not parse or a file that cannot be read is
    /// an error at once; a binary that does not compile or link is one from
    /// [`Plugin::compiled`].
    pub fn load(
        runtime: &Arc<Runtime>,
        dir: &Path,
        name: &str,
        defaults: Limits,
    ) -> Result<Plugin, String> {
        let file = dir.join(format!("{name}.wasm"));
        let sidecar = dir.join(format!("{name}.toml"));
        let fingerprint = fingerprint(dir, name);
        let manifest = match std::fs::read_to_string(&sidecar) {
            Ok(text) => Manifest::parse(&text, name, dir)
                .map_err(|e| format!("{}: {e}", sidecar.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default_for(name),
            Err(e) => return Err(format!("{}: {e}", sidecar.display())),
        };
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let compile = Compile::start(
            Arc::clone(runtime),
            file.clone(),
            bytes,
            manifest.reuse.is_some(),
        );
        let tag = format!("[plugin {name}]");
        Ok(Plugin {
            name: name.to_string(),
            outbound: Outbound::new(&manifest.outbound, &tag),
            tag,
            file,
            fingerprint,
            limits: defaults.for_plugin(&manifest),
            grants: Grants {
                env: manifest.env.clone(),
                dirs: manifest.dirs.clone(),
            },
            manifest,
            compile,
        })
    }

    /// Waits for the plugin to compile; the error names the file and what
    /// is wrong with it.
    pub async fn compiled(&self) -> Result<(), String> {
        self.compile.finished().await.map(|_| ())
    }

    /// Like [`Plugin::compiled`], printing progress while it goes on.
    pub async fn compiled_reporting(&self) -> Result<(), String> {
        self.compile.reporting(&self.name).await.map(|_| ())
    }

    /// Whether its compile is over (ready or failed).
    pub fn is_compiled(&self) -> bool {
        self.compile.is_finished()
    }

    /// How long its compile has taken so far.
    pub fn compile_time(&self) -> Duration {
        self.compile.elapsed()
    }

    /// The kind of plugin, as the banner shows it.
    pub fn kind(&self) -> String {
        match self.compile.executor() {
            Some(Executor::Wagi(wagi)) if wagi.is_component() => "CGI-over-WASI component".into(),
            Some(Executor::Wagi(_)) => "CGI-over-WASI".into(),
            Some(Executor::Proxy(_)) => "wasi:http component".into(),
            Some(Executor::P3(_)) => "wasi:http p3 component".into(),
            None => format!(
                "compiling {}; requests to it wait",
                megabytes(self.compile.size)
            ),
        }
    }

    /// One line for the banner: name, routes, methods, kind.
    pub fn describe(&self) -> String {
        let methods = self.manifest.methods_as_written();
        let reuse = self
            .compile
            .executor()
            .map_or(self.limits.reuse, |executor| {
                executor::reuse(executor, self.limits.reuse)
            });
        let reuse = match (reuse, self.compile.executor()) {
            (None, _) => String::new(),
            (Some(reuse), Some(Executor::P3(_))) => format!(
                "; {} requests at once, reused for {}, {} s idle",
                reuse.concurrent, reuse.requests, reuse.idle_secs
            ),
            (Some(reuse), _) => format!(
                "; reused for {} requests, {} s idle",
                reuse.requests, reuse.idle_secs
            ),
        };
        format!(
            "Plugin {}: {} ({methods}; {}{reuse})",
            self.name,
            self.manifest.routes_as_written(),
            self.kind()
        )
    }

    /// Answers `request`, matched to this plugin as `matched`.
    pub async fn serve(
        &self,
        runtime: &Arc<Runtime>,
        request: &Request,
        body: &mut RequestBody<'_>,
        matched: &Matched,
    ) -> Result<Output, HttpError> {
        let run = Invocation {
            name: &self.name,
            tag: &self.tag,
            grants: &self.grants,
            limits: &self.limits,
            script_name: &matched.script_name,
            path_info: &matched.path_info,
        };
        let executor = match self.compile.executor() {
            Some(executor) => executor,
            None => self.wait_compiled().await?,
        };
        match executor {
            Executor::Wagi(wagi) => {
                let stdin = read_body(body, &self.limits, runtime).await?;
                let produced = wagi.serve(runtime, request, stdin, run)?;
                collect(produced, self.limits.response)
                    .await
                    .map_err(|rejected| rejected.logged(&self.tag))
            }
            Executor::Proxy(proxy) => {
                proxy
                    .serve(runtime, request, body, run, &self.outbound)
                    .await
            }
            Executor::P3(p3) => p3.serve(runtime, request, body, run, &self.outbound).await,
        }
    }

    /// A request that came while the plugin compiles waits for it, as long
    /// as the plugin may run; then it is 503.
    async fn wait_compiled(&self) -> Result<&Executor, HttpError> {
        match self.compile.within(self.limits.timeout).await {
            Some(Ok(executor)) => Ok(executor),
            Some(Err(_)) => Err(HttpError::Unavailable("Plugin failed to load")),
            None => {
                self.log("still compiling; request answered 503");
                Err(HttpError::Unavailable("Plugin is still compiling"))
            }
        }
    }

    /// Writes a line about this plugin to the server's log.
    pub fn log(&self, line: &str) {
        crate::log::line(format!("{} {line}", self.tag));
    }
}
