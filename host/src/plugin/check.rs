//! `wasmhttpd check FILE.wasm [--sidecar FILE.toml]`: what a plugin would
//! be if it were dropped into the plugins directory (its kind, its imports
//! and which the server provides, its routes, grants and limits, and its
//! compile), found the way the server finds it, without serving anything.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::engine::Runtime;
use super::executor::{self, Binary, Executor};
use super::imports::{self, Import};
use super::limits::{DefaultLimits, Limits};
use super::manifest::{Manifest, Reuse};
use super::wagi::Wagi;

/// `wasmhttpd check`'s arguments.
#[derive(Debug, clap::Parser)]
#[command(
    name = "wasmhttpd check",
    max_term_width = 100,
    about = "Tell whether a .wasm would load as a plugin, and what it would be",
    after_help = "Exit status 0: it would load; 1: it would not (the reason is shown)."
)]
pub struct CheckArgs {
    /// The plugin
    #[arg(value_name = "FILE.wasm")]
    pub file: PathBuf,

    /// Its sidecar [default: FILE.toml beside it, if there is one]
    #[arg(long, value_name = "FILE.toml")]
    pub sidecar: Option<PathBuf>,

    #[command(flatten)]
    pub limits: DefaultLimits,
}

/// What `check` found: the report to print, and whether it would load.
#[derive(Debug)]
pub struct Report {
    /// Lines for the terminal.
    pub text: String,
    /// Whether the server would load it.
    pub loads: bool,
}

/// Checks `args.file` on `runtime` (an engine like the server's, without
/// the compile cache, so that the compile time is the real one).
pub fn check(runtime: &Runtime, args: &CheckArgs) -> Report {
    let mut out = String::new();
    let mut refusal: Option<String> = None;
    let file = &args.file;
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(out, "file:      {}", file.display());

    let manifest = match sidecar(args, &name) {
        Ok((None, manifest)) => {
            let _ = writeln!(out, "sidecar:   none (the defaults)");
            manifest
        }
        Ok((Some(path), manifest)) => {
            let _ = writeln!(out, "sidecar:   {}", path.display());
            manifest
        }
        Err(problem) => {
            let _ = writeln!(out, "sidecar:   {problem}");
            refusal = Some(problem);
            Manifest::default_for(&name)
        }
    };

    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(error) => {
            let problem = format!("cannot read {}: {error}", file.display());
            let _ = writeln!(out, "verdict:   would not load: {problem}");
            return Report {
                text: out,
                loads: false,
            };
        }
    };
    let started = Instant::now();
    let compiled = executor::compile(runtime, &bytes);
    let binary = match compiled {
        Ok(binary) => binary,
        Err(error) => {
            let problem = format!("{error:#}");
            let _ = writeln!(out, "kind:      none: {problem}");
            let _ = writeln!(out, "verdict:   would not load: {problem}");
            return Report {
                text: out,
                loads: false,
            };
        }
    };
    let prepared = executor::prepare_compiled(runtime, &binary);
    let took = started.elapsed();

    let (kind, imports) = describe(runtime, &binary);
    match &prepared {
        Ok(executor) => {
            let _ = writeln!(out, "kind:      {kind}");
            if let Some(problem) = executor::reuse_refusal(executor, manifest.reuse.is_some()) {
                refusal.get_or_insert(problem.to_string());
            }
        }
        Err(error) => {
            let _ = writeln!(out, "kind:      {kind}");
            refusal.get_or_insert(format!("{error:#}"));
        }
    }
    write_imports(&mut out, &imports);
    write_routes(&mut out, &manifest);
    write_grants(&mut out, &manifest);
    let limits = args.limits.limits().for_plugin(&manifest);
    let component = match &prepared {
        Ok(executor @ (Executor::Proxy(_) | Executor::P3(_))) => Some(Served {
            reuse: executor::reuse(executor, limits.reuse),
            concurrent: matches!(executor, Executor::P3(_)),
        }),
        _ => None,
    };
    write_limits(&mut out, &limits, component);
    let code = match &binary {
        Binary::Module(module) => module.serialize().map(|c| c.len()),
        Binary::Component(component) => component.serialize().map(|c| c.len()),
    };
    let _ = writeln!(
        out,
        "compiled:  {} of code from a {} binary in {:.2} s",
        code.map_or_else(|_| "?".to_string(), super::compile::megabytes),
        super::compile::megabytes(bytes.len()),
        took.as_secs_f64()
    );
    match &refusal {
        None => {
            let _ = writeln!(out, "verdict:   would load");
        }
        Some(problem) => {
            let _ = writeln!(out, "verdict:   would not load: {problem}");
        }
    }
    Report {
        text: out,
        loads: refusal.is_none(),
    }
}

/// The sidecar named, or the one beside the file; `None` when there is
/// none (the plugin gets the defaults).
fn sidecar(args: &CheckArgs, name: &str) -> Result<(Option<PathBuf>, Manifest), String> {
    let path = match &args.sidecar {
        Some(path) => path.clone(),
        None => {
            let beside = args.file.with_extension("toml");
            if !beside.exists() {
                return Ok((None, Manifest::default_for(name)));
            }
            beside
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Relative directories start from the plugins directory: where the
    // sidecar is.
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
    Manifest::parse(&text, name, &base)
        .map(|manifest| (Some(path.clone()), manifest))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The binary's kind as the server tells it, and its imports.
fn describe(runtime: &Runtime, binary: &Binary) -> (String, Vec<Import>) {
    match binary {
        Binary::Module(module) => {
            let kind = if Wagi::is_command(module) {
                "CGI-over-WASI command (a core module, wasm32-wasip1)".to_string()
            } else {
                "a core module without _start".to_string()
            };
            (kind, imports::of_module(runtime, module))
        }
        Binary::Component(component) => {
            let exports = executor::exports(runtime, component);
            let kind = executor::component_kind_name(&exports);
            let shown = if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            };
            (
                format!("{kind} (exports {shown})"),
                imports::of_component(runtime, component),
            )
        }
    }
}

fn write_imports(out: &mut String, imports: &[Import]) {
    let missing = imports.iter().filter(|i| i.missing.is_some()).count();
    let summary = match (imports.len(), missing) {
        (0, _) => "none".to_string(),
        (n, 0) => format!("{n}, all provided"),
        (n, m) => format!("{n}, {m} not provided"),
    };
    let _ = writeln!(out, "imports:   {summary}");
    let width = imports.iter().map(|i| i.name.len()).max().unwrap_or(0);
    for import in imports {
        match &import.missing {
            None => {
                let _ = writeln!(out, "  {:<width$}  provided", import.name);
            }
            Some(why) => {
                let _ = writeln!(out, "  {:<width$}  NOT PROVIDED: {why}", import.name);
            }
        }
    }
}

fn write_routes(out: &mut String, manifest: &Manifest) {
    let _ = writeln!(
        out,
        "routes:    {} ({})",
        manifest.routes_as_written(),
        manifest.methods_as_written()
    );
}

fn write_grants(out: &mut String, manifest: &Manifest) {
    let dirs: Vec<String> = manifest
        .dirs
        .iter()
        .map(|d| {
            let mode = if d.writable {
                "read-write"
            } else {
                "read-only"
            };
            format!("{} as {} ({mode})", d.host.display(), d.guest)
        })
        .collect();
    let env: Vec<&str> = manifest.env.iter().map(|(k, _)| k.as_str()).collect();
    let hosts: Vec<&str> = manifest.outbound.iter().map(|o| o.as_written()).collect();
    let list = |items: &[&str]| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
    let _ = writeln!(out, "grants:    directories: {}", list(&dirs));
    let _ = writeln!(out, "           environment: {}", list(&env));
    let _ = writeln!(out, "           outbound hosts: {}", list(&hosts));
}

/// How a wasi:http component's instances are used.
struct Served {
    reuse: Option<Reuse>,
    /// Whether an instance serves several requests at once (p3).
    concurrent: bool,
}

fn write_limits(out: &mut String, limits: &Limits, component: Option<Served>) {
    let _ = writeln!(
        out,
        "limits:    {} s per request, {} of memory, {} of request body, {} of response",
        limits.timeout.as_secs(),
        size(limits.memory),
        size(limits.request_body),
        size(limits.response)
    );
    let Some(served) = component else {
        return;
    };
    let _ = writeln!(
        out,
        "           {} handles, {} per header object, {} outbound requests at once",
        limits.handles,
        size(limits.field_bytes as u64),
        limits.outbound_requests
    );
    let _ = match served.reuse {
        None => writeln!(out, "           a fresh instance per request"),
        Some(reuse) if served.concurrent => writeln!(
            out,
            "           an instance serves up to {} requests at once and {} in all, \
             dropped after {} s idle; its memory and caps are shared by its requests",
            reuse.concurrent, reuse.requests, reuse.idle_secs
        ),
        Some(reuse) => writeln!(
            out,
            "           an instance serves up to {} requests, dropped after {} s idle",
            reuse.requests, reuse.idle_secs
        ),
    };
}

/// `bytes` in KiB or MiB, as the sidecar's limits are written.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_the_sidecar_writes_them() {
        assert_eq!(size(128 << 20), "128 MiB");
        assert_eq!(size(64 << 10), "64 KiB");
        assert_eq!(size(1000), "1000 B");
    }
}
