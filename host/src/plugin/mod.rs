//! WebAssembly plugins: `.wasm` files in the plugins directory that answer
//! requests, sandboxed.
//!
//! A plugin is `NAME.wasm` with an optional sidecar `NAME.toml`. Its kind is
//! told from the binary, never from a flag:
//! - a component exporting `wasi:http/incoming-handler@0.2.x` is a wasi:http
//!   handler;
//! - a core module exporting `_start` (a `wasm32-wasip1` command), or a
//!   component exporting `wasi:cli/run@0.2.x`, runs as CGI-over-WASI.
//!
//! Anything else is refused at load with what was found.
//!
//! - [`manifest`]: the sidecar.
//! - [`registry`]: the plugins of a directory and their routes.
//! - [`compile`]: compiling a plugin off the request path.
//! - [`engine`]: the engine, pool and epoch ticker every plugin shares.
//! - [`store`]: what each instance's store holds, its caps and deadline.
//! - [`wagi`]: the CGI-over-WASI executor.
//! - [`proxy`]: the wasi:http executor.
//! - [`outbound`]: which outbound requests a component may send.
//! - [`reuse`]: instances kept between requests, where a sidecar asks.
//! - [`watch`]: hot reload.

pub mod compile;
pub mod engine;
pub mod manifest;
pub mod outbound;
pub mod proxy;
pub mod registry;
pub mod reuse;
pub mod store;
pub mod wagi;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Module;
use wasmtime::component::Component;

use self::compile::{Compile, megabytes};
use self::engine::{MAX_MEMORY, Runtime};
use self::manifest::{DirGrant, Manifest, Reuse, RoutePattern};
use self::outbound::Outbound;
use self::proxy::Proxy;
use self::wagi::{Invocation, Wagi, read_body};
use crate::cgi::output::{Output, collect};
use crate::error::HttpError;
use crate::http1::body::RequestBody;
use crate::request::Request;

/// Limits every plugin gets unless its sidecar says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time per request.
    pub timeout: Duration,
    /// Linear memory, bytes.
    pub memory: u64,
    /// Request body, bytes.
    pub request_body: u64,
    /// Response body, bytes.
    pub response: u64,
    /// Resource handles a component may hold at once.
    pub handles: usize,
    /// Bytes of one header-fields object a component builds.
    pub field_bytes: usize,
    /// Outbound requests a component may have in flight.
    pub outbound_requests: usize,
    /// How long a wasi:http instance lives, if it serves more than one
    /// request.
    pub reuse: Option<Reuse>,
}

impl Limits {
    /// The defaults: `--plugin-timeout` and `--plugin-memory` from the
    /// command line; 16 MiB of request body and 256 MiB of response; for a
    /// component, 1024 handles, 64 KiB per header object and 8 outbound
    /// requests in flight, so that what it makes the host hold stays
    /// within 64 MiB (1024 × 64 KiB) beside its memory.
    pub fn defaults(timeout: Duration, memory_mib: u64) -> Limits {
        Limits {
            timeout,
            memory: memory_mib << 20,
            request_body: 16 << 20,
            response: 256 << 20,
            handles: 1024,
            field_bytes: 64 << 10,
            outbound_requests: 8,
            reuse: None,
        }
    }

    /// What a component instance may use, on the host side included.
    pub fn host_caps(&self) -> store::HostCaps {
        store::HostCaps {
            memory: self.memory,
            handles: self.handles,
            field_bytes: self.field_bytes,
            outbound: self.outbound_requests,
        }
    }

    fn with(self, overrides: &manifest::LimitOverrides) -> Limits {
        Limits {
            timeout: overrides
                .timeout_secs
                .map_or(self.timeout, Duration::from_secs),
            memory: overrides
                .memory_mib
                .map_or(self.memory, |m| m << 20)
                .min(MAX_MEMORY),
            request_body: overrides
                .request_body_kib
                .map_or(self.request_body, |k| k << 10),
            response: overrides.response_kib.map_or(self.response, |k| k << 10),
            handles: overrides
                .handles
                .map_or(self.handles, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            field_bytes: overrides.header_kib.map_or(self.field_bytes, |k| {
                usize::try_from(k << 10).unwrap_or(usize::MAX)
            }),
            outbound_requests: overrides
                .outbound_requests
                .map_or(self.outbound_requests, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            reuse: self.reuse,
        }
    }
}

/// What a plugin is granted beyond the request.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Directories.
    pub dirs: Vec<DirGrant>,
}

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

/// How a plugin is run, told from its binary.
#[derive(Debug)]
pub enum Executor {
    /// A WASI command (core module or `wasi:cli/run` component) run as a
    /// CGI script.
    Wagi(Wagi),
    /// A wasi:http component.
    Proxy(Proxy),
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
            limits: Limits {
                reuse: manifest.reuse,
                ..defaults.with(&manifest.limits)
            },
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
            None => format!(
                "compiling {}; requests to it wait",
                megabytes(self.compile.size)
            ),
        }
    }

    /// One line for the banner: name, routes, methods, kind.
    pub fn describe(&self) -> String {
        let routes: Vec<String> = self
            .manifest
            .routes
            .iter()
            .map(RoutePattern::as_written)
            .collect();
        let methods = match &self.manifest.methods {
            None => "all methods".to_string(),
            Some(methods) => methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        };
        let reuse = self.limits.reuse.map_or_else(String::new, |reuse| {
            format!(
                "; reused for {} requests, {} s idle",
                reuse.requests, reuse.idle_secs
            )
        });
        format!(
            "Plugin {}: {} ({methods}; {}{reuse})",
            self.name,
            routes.join(" "),
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

/// Tells a binary's kind from its bytes and prepares its executor.
pub fn prepare(runtime: &Runtime, bytes: &[u8]) -> anyhow::Result<Executor> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {
            let module =
                Module::new(runtime.engine(), bytes).map_err(|e| anyhow::anyhow!("{e:#}"))?;
            Wagi::prepare(runtime, &module).map(Executor::Wagi)
        }
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => {
            let component = Component::new(runtime.engine(), bytes)
                .map_err(|e| anyhow::anyhow!("a component that cannot be compiled: {e:#}"))?;
            let exports: Vec<String> = component
                .component_type()
                .exports(runtime.engine())
                .map(|(name, _)| name.to_string())
                .collect();
            match component_kind(&exports)? {
                ComponentKind::Http => Proxy::prepare(runtime, &component).map(Executor::Proxy),
                ComponentKind::Command => {
                    Wagi::prepare_command(runtime, &component).map(Executor::Wagi)
                }
            }
        }
        _ => anyhow::bail!("not a WebAssembly binary"),
    }
}

/// What a component is, from the names of its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ComponentKind {
    Http,
    Command,
}

const HTTP_HANDLER: &str = "wasi:http/incoming-handler@";
const CLI_RUN: &str = "wasi:cli/run@";

fn component_kind(exports: &[String]) -> anyhow::Result<ComponentKind> {
    let version = |prefix: &str| {
        exports
            .iter()
            .find_map(|name| name.strip_prefix(prefix).map(|v| (name, v)))
    };
    let is_02 = |v: &str| v.starts_with("0.2.") && !v.contains('-');
    match (version(HTTP_HANDLER), version(CLI_RUN)) {
        (Some((_, v)), _) if is_02(v) => Ok(ComponentKind::Http),
        (_, Some((_, v))) if is_02(v) => Ok(ComponentKind::Command),
        (Some((name, _)), _) | (None, Some((name, _))) => anyhow::bail!(
            "a component exporting {name}: wasmhttpd serves version 0.2.x of wasi:http/incoming-handler and wasi:cli/run"
        ),
        (None, None) => {
            let found = if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            };
            anyhow::bail!(
                "a component that exports neither wasi:http/incoming-handler@0.2 nor wasi:cli/run@0.2 (it exports {found})"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(exports: &[&str]) -> Result<ComponentKind, String> {
        let exports: Vec<String> = exports.iter().map(|e| e.to_string()).collect();
        component_kind(&exports).map_err(|e| e.to_string())
    }

    #[test]
    fn components_are_told_by_their_exports() {
        assert_eq!(
            kind(&["wasi:http/incoming-handler@0.2.12"]),
            Ok(ComponentKind::Http)
        );
        assert_eq!(kind(&["wasi:cli/run@0.2.0"]), Ok(ComponentKind::Command));
        // A Rust wasip2 binary with the SDK exports both: it is served as
        // wasi:http.
        assert_eq!(
            kind(&["wasi:cli/run@0.2.12", "wasi:http/incoming-handler@0.2.12"]),
            Ok(ComponentKind::Http)
        );
        let other = kind(&["wasi:http/incoming-handler@0.3.0-rc-2025-09-16"]).expect_err("p3");
        assert!(
            other.contains("exporting wasi:http/incoming-handler@0.3.0"),
            "{other}"
        );
        let none = kind(&["my:app/api"]).expect_err("none");
        assert!(none.contains("it exports my:app/api"), "{none}");
    }
}
