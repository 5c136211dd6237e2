//! How a plugin is run, told from its binary: a core module or a
//! `wasi:cli/run` component runs as CGI-over-WASI, a
//! `wasi:http/incoming-handler` component as wasi:http.

use wasmtime::Module;
use wasmtime::component::Component;

use super::engine::Runtime;
use super::proxy::Proxy;
use super::wagi::Wagi;

/// How a plugin is run, told from its binary.
#[derive(Debug)]
pub enum Executor {
    /// A WASI command (core module or `wasi:cli/run` component) run as a
    /// CGI script.
    Wagi(Wagi),
    /// A wasi:http component.
    Proxy(Proxy),
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
    Command,
}

const HTTP_HANDLER: &str = "wasi:http/incoming-handler@";
const CLI_RUN: &str = "wasi:cli/run@";
const HTTP_HANDLER_P3: &str = "wasi:http/handler@";

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
        Ok(ComponentKind::Command) => "CGI-over-WASI command component",
        Err(_) if exports.iter().any(|e| e.starts_with(HTTP_HANDLER_P3)) => {
            "wasi:http p3 component"
        }
        Err(_) => "a component of no kind served",
    }
}

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
        (None, None)
            if let Some(name) = exports.iter().find(|e| e.starts_with(HTTP_HANDLER_P3)) =>
        {
            anyhow::bail!(
                "a wasi:http p3 component (it exports {name}): this version serves wasi:http 0.2 (wasi:http/incoming-handler@0.2.x)"
            )
        }
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
