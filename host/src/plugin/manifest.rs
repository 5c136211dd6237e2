//! A plugin's optional sidecar, `NAME.toml`: routes, methods, grants, limits.
//!
//! ```toml
//! routes = ["/notes", "/notes/*"]   # exact paths, or prefixes ending in /*
//! methods = ["GET", "POST"]         # default: every method
//! env = { GREETING = "hello" }      # environment variables the plugin sees
//! # where a wasi:http component may send requests (default: nowhere)
//! allowed_outbound_hosts = ["https://api.example.com", "http://127.0.0.1:*"]
//!
//! [[dirs]]                          # directories the plugin may open
//! host = "data/notes"               # relative to the plugins directory
//! guest = "/data"                   # where the plugin sees it
//! writable = true                   # default: read-only
//!
//! [limits]                          # each defaults to the server's setting
//! memory_mib = 64
//! timeout_secs = 5
//! request_body_kib = 1024
//! response_kib = 10240
//! handles = 1024                    # wasi:http: resources alive at once
//! header_kib = 64                   # wasi:http: bytes of one header object
//! outbound_requests = 8             # wasi:http: outbound requests in flight
//!
//! [reuse]                           # wasi:http: an instance serves several
//! requests = 128                    # requests, one at a time (default 128)
//! idle_secs = 10                    # and is dropped after this long unused
//! ```
//!
//! Without `[reuse]` every request gets a fresh instance. With it, module
//! state (a Python handler's globals, a Rust guest's statics) carries from
//! one request to the next of that plugin, whoever sent them.
//!
//! Without a sidecar, `NAME.wasm` answers `/NAME` and `/NAME/*`, for every
//! method, with no grants. Unknown keys are errors (a typo must not silently
//! drop a limit), reported with the file's name, line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use http::Method;
use serde::Deserialize;
use toml::Spanned;

use super::outbound::OutboundPattern;

/// Where a plugin answers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoutePattern {
    /// Exactly this path.
    Exact(String),
    /// This path and everything below it (`/api/*` is stored as `/api`).
    Prefix(String),
}

impl RoutePattern {
    /// The route as written in a sidecar.
    pub fn as_written(&self) -> String {
        match self {
            RoutePattern::Exact(path) => path.clone(),
            RoutePattern::Prefix(path) if path == "/" => "/*".to_string(),
            RoutePattern::Prefix(path) => format!("{path}/*"),
        }
    }
}

/// A directory the plugin may open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host, canonical.
    pub host: PathBuf,
    /// Where the plugin sees it.
    pub guest: String,
    /// Whether the plugin may create, change and remove files in it.
    pub writable: bool,
}

/// Limits a sidecar sets; `None` means the server's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Linear memory, MiB.
    pub memory_mib: Option<u64>,
    /// Wall-clock time per request (CPU and host calls), seconds.
    pub timeout_secs: Option<u64>,
    /// Request body, KiB.
    pub request_body_kib: Option<u64>,
    /// Response body, KiB.
    pub response_kib: Option<u64>,
    /// Resource handles a component may hold at once.
    pub handles: Option<u64>,
    /// KiB of one header-fields object a component builds.
    pub header_kib: Option<u64>,
    /// Outbound requests a component may have in flight.
    pub outbound_requests: Option<u64>,
}

/// How long one instance may live: how many requests it serves, and how
/// long it may wait unused for the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reuse {
    /// Requests per instance, one at a time.
    #[serde(default = "Reuse::default_requests")]
    pub requests: u32,
    /// Requests one instance serves at once (a wasi:http p3 component;
    /// the others serve one at a time).
    #[serde(default = "Reuse::default_concurrent")]
    pub concurrent: u32,
    /// Seconds an instance waits unused before it is dropped.
    #[serde(default = "Reuse::default_idle_secs")]
    pub idle_secs: u64,
}

impl Reuse {
    fn default_requests() -> u32 {
        128
    }

    fn default_concurrent() -> u32 {
        16
    }

    fn default_idle_secs() -> u64 {
        10
    }
}

/// A plugin's validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Where it answers.
    pub routes: Vec<RoutePattern>,
    /// Which methods it answers; `None` for all.
    pub methods: Option<Vec<Method>>,
    /// Environment variables granted.
    pub env: Vec<(String, String)>,
    /// Directories granted.
    pub dirs: Vec<DirGrant>,
    /// Destinations of outbound HTTP requests granted.
    pub outbound: Vec<OutboundPattern>,
    /// Limits set.
    pub limits: LimitOverrides,
    /// Instance reuse, if any.
    pub reuse: Option<Reuse>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    routes: Option<Spanned<Vec<Spanned<String>>>>,
    methods: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    env: BTreeMap<Spanned<String>, String>,
    #[serde(default)]
    dirs: Vec<Spanned<RawDir>>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<Spanned<String>>,
    #[serde(default)]
    limits: Option<Spanned<LimitOverrides>>,
    #[serde(default)]
    reuse: Option<Spanned<Reuse>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    host: String,
    guest: Option<String>,
    #[serde(default)]
    writable: bool,
}

impl Manifest {
    /// Its routes as written, space-separated (`/hello /hello/*`).
    pub fn routes_as_written(&self) -> String {
        let routes: Vec<String> = self.routes.iter().map(RoutePattern::as_written).collect();
        routes.join(" ")
    }

    /// Its methods, space-separated, or `all methods`.
    pub fn methods_as_written(&self) -> String {
        match &self.methods {
            None => "all methods".to_string(),
            Some(methods) => methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The configuration of a plugin without a sidecar.
    pub fn default_for(name: &str) -> Manifest {
        Manifest {
            routes: default_routes(name),
            methods: None,
            env: Vec::new(),
            dirs: Vec::new(),
            outbound: Vec::new(),
            limits: LimitOverrides::default(),
            reuse: None,
        }
    }

    /// Parses and validates a sidecar. `base` is the directory that
    /// relative `host` paths start from (the plugins directory). Errors
    /// say the line they are on.
    pub fn parse(text: &str, name: &str, base: &Path) -> Result<Manifest, String> {
        let raw: RawManifest =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        let at = |span: std::ops::Range<usize>, message: String| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        };
        let routes = match raw.routes {
            None => default_routes(name),
            Some(routes) if routes.get_ref().is_empty() => {
                return Err(at(routes.span(), "routes: at least one route".into()));
            }
            Some(routes) => routes
                .into_inner()
                .iter()
                .map(|r| parse_route(r.get_ref()).map_err(|e| at(r.span(), e)))
                .collect::<Result<_, _>>()?,
        };
        let methods = match raw.methods {
            None => None,
            Some(methods) if methods.get_ref().is_empty() => {
                return Err(at(methods.span(), "methods: at least one method".into()));
            }
            Some(methods) => Some(
                methods
                    .into_inner()
                    .iter()
                    .map(|m| {
                        Method::from_bytes(m.get_ref().as_bytes()).map_err(|_| {
                            at(
                                m.span(),
                                format!("methods: {:?} is not a method", m.get_ref()),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let mut env = Vec::with_capacity(raw.env.len());
        for (key, value) in raw.env {
            let valid_key = !key.get_ref().is_empty()
                && key
                    .get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !key.get_ref().as_bytes()[0].is_ascii_digit();
            if !valid_key || value.contains('\0') {
                return Err(at(
                    key.span(),
                    format!("env: {:?} is not a valid variable", key.get_ref()),
                ));
            }
            env.push((key.into_inner(), value));
        }
        let dirs = raw
            .dirs
            .iter()
            .map(|d| parse_dir(d.get_ref(), base).map_err(|e| at(d.span(), e)))
            .collect::<Result<_, _>>()?;
        let outbound = raw
            .allowed_outbound_hosts
            .iter()
            .map(|p| {
                OutboundPattern::parse(p.get_ref())
                    .map_err(|e| at(p.span(), format!("allowed_outbound_hosts: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let limits = match raw.limits {
            None => LimitOverrides::default(),
            Some(limits) => {
                check_limits(limits.get_ref()).map_err(|e| at(limits.span(), e))?;
                limits.into_inner()
            }
        };
        let reuse = match raw.reuse {
            None => None,
            Some(reuse) => {
                let value = *reuse.get_ref();
                if !(1..=1_000_000).contains(&value.requests) {
                    let why = format!("reuse.requests: {} is outside 1..=1000000", value.requests);
                    return Err(at(reuse.span(), why));
                }
                if !(1..=86_400).contains(&value.idle_secs) {
                    let why = format!("reuse.idle_secs: {} is outside 1..=86400", value.idle_secs);
                    return Err(at(reuse.span(), why));
                }
                Some(value)
            }
        };
        Ok(Manifest {
            routes,
            methods,
            env,
            dirs,
            outbound,
            limits,
            reuse,
        })
    }
}

fn default_routes(name: &str) -> Vec<RoutePattern> {
    vec![
        RoutePattern::Exact(format!("/{name}")),
        RoutePattern::Prefix(format!("/{name}")),
    ]
}

fn parse_route(route: &str) -> Result<RoutePattern, String> {
    let bad = |why: &str| format!("routes: {route:?} {why}");
    if !route.starts_with('/') {
        return Err(bad("must start with /"));
    }
    if route.contains("//") || route.split('/').any(|s| s == "." || s == "..") {
        return Err(bad("must be a normalised path"));
    }
    if route
        .bytes()
        .any(|b| b <= b' ' || b == b'?' || b == b'#' || b == b'%' || b == 0x7f)
    {
        return Err(bad("must be a plain path (no spaces, ?, # or %)"));
    }
    if let Some(prefix) = route.strip_suffix("/*") {
        let prefix = if prefix.is_empty() { "/" } else { prefix };
        return Ok(RoutePattern::Prefix(prefix.to_string()));
    }
    if route.contains('*') {
        return Err(bad("may only end in /*"));
    }
    if route.len() > 1 && route.ends_with('/') {
        return Err(bad("must not end in / (use /* for a prefix)"));
    }
    Ok(RoutePattern::Exact(route.to_string()))
}

fn parse_dir(dir: &RawDir, base: &Path) -> Result<DirGrant, String> {
    let host = base.join(&dir.host);
    let host = host
        .canonicalize()
        .map_err(|e| format!("dirs: {:?}: {e}", dir.host))?;
    if !host.is_dir() {
        return Err(format!("dirs: {:?} is not a directory", dir.host));
    }
    let guest = match &dir.guest {
        Some(guest) => guest.clone(),
        None => format!(
            "/{}",
            host.file_name().and_then(|n| n.to_str()).unwrap_or("data")
        ),
    };
    if !guest.starts_with('/') || guest.split('/').any(|s| s == "..") {
        return Err(format!(
            "dirs: guest path {guest:?} must be absolute, without .."
        ));
    }
    Ok(DirGrant {
        host,
        guest,
        writable: dir.writable,
    })
}

fn check_limits(limits: &LimitOverrides) -> Result<(), String> {
    let ranges = [
        ("memory_mib", limits.memory_mib, 1, 65_536),
        ("timeout_secs", limits.timeout_secs, 1, 86_400),
        ("request_body_kib", limits.request_body_kib, 0, 16 << 20),
        ("response_kib", limits.response_kib, 1, 1 << 30),
        ("handles", limits.handles, 16, 1_000_000),
        ("header_kib", limits.header_kib, 1, 16 << 10),
        ("outbound_requests", limits.outbound_requests, 0, 1024),
    ];
    for (name, value, min, max) in ranges {
        if let Some(v) = value
            && !(min..=max).contains(&v)
        {
            return Err(format!("limits.{name}: {v} is outside {min}..={max}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn render(result: &Result<Manifest, String>, base: &Path) -> String {
        match result {
            Err(e) => format!("error: {e}\n"),
            Ok(m) => {
                let mut out = String::new();
                let routes: Vec<String> = m.routes.iter().map(RoutePattern::as_written).collect();
                let _ = writeln!(out, "routes: {}", routes.join(" "));
                match &m.methods {
                    None => out.push_str("methods: all\n"),
                    Some(ms) => {
                        let ms: Vec<&str> = ms.iter().map(Method::as_str).collect();
                        let _ = writeln!(out, "methods: {}", ms.join(" "));
                    }
                }
                for (k, v) in &m.env {
                    let _ = writeln!(out, "env: {k}={v}");
                }
                for d in &m.dirs {
                    let host = d.host.strip_prefix(base).unwrap_or(&d.host);
                    let mode = if d.writable {
                        "read-write"
                    } else {
                        "read-only"
                    };
                    let _ = writeln!(out, "dir: {} -> {} ({mode})", host.display(), d.guest);
                }
                for pattern in &m.outbound {
                    let _ = writeln!(out, "outbound: {}", pattern.as_written());
                }
                let _ = writeln!(out, "limits: {:?}", m.limits);
                if let Some(reuse) = m.reuse {
                    let _ = writeln!(out, "reuse: {reuse:?}");
                }
                out
            }
        }
    }

    /// Each `testdata/manifest/NAME.toml` (for a plugin called `demo`,
    /// relative to `testdata/manifest`) gives `NAME.out`.
    /// `UPDATE_GOLDEN=1 cargo test` rewrites the `.out` files.
    #[test]
    fn golden_files() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/manifest")
            .canonicalize()
            .expect("canonical");
        crate::testing::golden("manifest", "toml", 8, |path| {
            let text = std::fs::read_to_string(path).expect("read");
            render(&Manifest::parse(&text, "demo", &base), &base)
        });
    }

    #[test]
    fn default_routes_are_the_name_and_below() {
        let m = Manifest::default_for("hello");
        assert_eq!(
            m.routes,
            vec![
                RoutePattern::Exact("/hello".into()),
                RoutePattern::Prefix("/hello".into())
            ]
        );
        assert_eq!(m.methods, None);
    }
}
