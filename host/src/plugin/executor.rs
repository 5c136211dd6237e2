//! How a plugin is run, told from its binary: a core module or a
//! `wasi:cli/run` component runs as CGI-over-WASI, a
//! `wasi:http/incoming-handler@0.2` component as wasi:http 0.2, a
//! `wasi:http/handler@0.3` component as wasi:http p3.

use wasmtime::Module;
use wasmtime::component::Component;

use super::engine::Runtime;
use super::manifest::Reuse;
use super::p3::P3;
use super::proxy::Proxy;
use super::wagi::Wagi;

/// How a plugin is run, told from its binary.
#[derive(Debug)]
pub enum Executor {
    /// A WASI command (core module or `wasi:cli/run` component) run as a
    /// CGI script.
    Wagi(Wagi),
    /// A wasi:http 0.2 component.
    Proxy(Proxy),
    /// A wasi:http p3 component.
    P3(P3),
}

/// A binary, compiled: a core module or a component.
#[derive(Debug)]
pub enum Binary {
    /// A core module (`wasm32-wasip1`).
    Module(Module),
    /// A component.
    Component(Component),
}

/// Tells a binary's kind from its bytes and prepares its executor.
pub fn prepare(runtime: &Runtime, bytes: &[u8]) -> anyhow::Result<Executor> {
    prepare_compiled(runtime, &compile(runtime, bytes)?)
}

/// Compiles `bytes`, a core module or a component.
pub fn compile(runtime: &Runtime, bytes: &[u8]) -> anyhow::Result<Binary> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Module::new(runtime.engine(), bytes)
            .map(Binary::Module)
            .map_err(|e| anyhow::anyhow!("{e:#}")),
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => Component::new(runtime.engine(), bytes)
            .map(Binary::Component)
            .map_err(|e| anyhow::anyhow!("a component that cannot be compiled: {e:#}")),
        _ => anyhow::bail!("not a WebAssembly binary"),
    }
}

/// The executor of a compiled binary, told from its exports.
pub fn prepare_compiled(runtime: &Runtime, binary: &Binary) -> anyhow::Result<Executor> {
    match binary {
        Binary::Module(module) => Wagi::prepare(runtime, module).map(Executor::Wagi),
        Binary::Component(component) => match component_kind(&exports(runtime, component))? {
            ComponentKind::Http => Proxy::prepare(runtime, component).map(Executor::Proxy),
            ComponentKind::HttpP3 => P3::prepare(runtime, component).map(Executor::P3),
            ComponentKind::Command => Wagi::prepare_command(runtime, component).map(Executor::Wagi),
        },
    }
}

/// The names a component exports.
pub fn exports(runtime: &Runtime, component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(runtime.engine())
        .map(|(name, _)| name.to_string())
        .collect()
}

/// What a component is, from the names of its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ComponentKind {
    Http,
    HttpP3,
    Command,
}

const HTTP_HANDLER: &str = "wasi:http/incoming-handler@";
const CLI_RUN: &str = "wasi:cli/run@";
const HTTP_HANDLER_P3: &str = "wasi:http/handler@";

/// How long an instance lives, given what the sidecar asks: a p3
/// component is reused unless told otherwise, the others only if asked.
pub fn reuse(executor: &Executor, asked: Option<Reuse>) -> Option<Reuse> {
    match executor {
        Executor::P3(_) => Some(asked.unwrap_or(super::p3::DEFAULT_REUSE)),
        Executor::Wagi(_) | Executor::Proxy(_) => asked,
    }
}

/// Why a prepared plugin may not run as its sidecar asks, if it may not.
pub fn reuse_refusal(executor: &Executor, reuse: bool) -> Option<&'static str> {
    match executor {
        Executor::Wagi(_) if reuse => Some(
            "its sidecar asks for [reuse], which only a wasi:http component can have: \
             a CGI-over-WASI command runs once per instance (a WASI command may start only once)",
        ),
        _ => None,
    }
}

/// What a component with these exports is, in words.
pub fn component_kind_name(exports: &[String]) -> &'static str {
    match component_kind(exports) {
        Ok(ComponentKind::Http) => "wasi:http p2 component",
        Ok(ComponentKind::HttpP3) => "wasi:http p3 component",
        Ok(ComponentKind::Command) => "CGI-over-WASI command component",
        Err(_) => "a component of no kind served",
    }
}

fn component_kind(exports: &[String]) -> anyhow::Result<ComponentKind> {
    let version = |prefix: &str| {
        exports
            .iter()
            .find_map(|name| name.strip_prefix(prefix).map(|v| (name, v)))
    };
    // A release of the series, not a release candidate (whose interfaces
    // differ from the release's).
    let is = |series: &str, v: &str| v.starts_with(series) && !v.contains('-');
    match (
        version(HTTP_HANDLER_P3),
        version(HTTP_HANDLER),
        version(CLI_RUN),
    ) {
        (Some((_, v)), _, _) if is("0.3.", v) => Ok(ComponentKind::HttpP3),
        (_, Some((_, v)), _) if is("0.2.", v) => Ok(ComponentKind::Http),
        (_, _, Some((_, v))) if is("0.2.", v) => Ok(ComponentKind::Command),
        (Some((name, _)), _, _) | (None, Some((name, _)), _) | (None, None, Some((name, _))) => {
            anyhow::bail!(
                "a component exporting {name}: wasmhttpd serves wasi:http/handler@0.3.x, \
                 wasi:http/incoming-handler@0.2.x and wasi:cli/run@0.2.x (a release \
                 candidate's interfaces differ from the release's: rebuild against the release)"
            )
        }
        (None, None, None) => {
            let found = if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            };
            anyhow::bail!(
                "a component that exports none of wasi:http/handler@0.3, \
                 wasi:http/incoming-handler@0.2 and wasi:cli/run@0.2 (it exports {found})"
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
        assert_eq!(
            kind(&["wasi:cli/run@0.2.6", "wasi:http/handler@0.3.0"]),
            Ok(ComponentKind::HttpP3)
        );
        let other = kind(&["wasi:http/incoming-handler@0.3.0-rc-2025-09-16"]).expect_err("rc");
        assert!(
            other.contains("exporting wasi:http/incoming-handler@0.3.0"),
            "{other}"
        );
        let rc = kind(&["wasi:http/handler@0.3.0-rc-2026-03-15"]).expect_err("rc");
        assert!(rc.contains("rebuild against the release"), "{rc}");
        let none = kind(&["my:app/api"]).expect_err("none");
        assert!(none.contains("it exports my:app/api"), "{none}");
    }
}
