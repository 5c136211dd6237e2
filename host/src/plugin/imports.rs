//! Which of a binary's imports the server provides, found by linking it
//! against the server's own linkers (not from a list of names), for
//! `wasmhttpd check`.
//!
//! A linker reports only the first import it cannot satisfy, so each one
//! it names is noted, stood in for by functions that trap (on a copy of
//! the linker), and the link tried again, until it succeeds or names
//! nothing new.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ResourceType};
use wasmtime::{ExternType, Module};

use super::engine::Runtime;

/// One import and, if the server does not provide it, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// `module::name` for a core module, the import's name for a component.
    pub name: String,
    /// `None` if the server provides it.
    pub missing: Option<String>,
}

/// The imports of a core module, each with whether WASI preview 1 (the
/// server's module linker) provides it.
pub fn of_module(runtime: &Runtime, module: &Module) -> Vec<Import> {
    let names: Vec<String> = module
        .imports()
        .map(|import| format!("{}::{}", import.module(), import.name()))
        .collect();
    let mut linker = runtime.linker().clone();
    linker.allow_shadowing(true);
    let mut missing: Vec<(String, String)> = Vec::new();
    for _ in 0..=names.len() {
        let Err(error) = linker.instantiate_pre(module) else {
            break;
        };
        let reason = format!("{error:#}");
        let Some((name, import)) = names.iter().zip(module.imports()).find(|(name, _)| {
            reason.contains(&format!("`{name}`")) && !missing.iter().any(|(m, _)| m == *name)
        }) else {
            break;
        };
        missing.push((name.clone(), reason));
        let ExternType::Func(ty) = import.ty() else {
            // A memory, table or global cannot be stood in for.
            break;
        };
        let stood_in = linker.func_new(import.module(), import.name(), ty, |_, _, _| {
            Err(wasmtime::Error::msg("not provided"))
        });
        if stood_in.is_err() {
            break;
        }
    }
    with_reasons(names, &missing)
}

/// The imports of a component, each with whether WASI 0.2 and 0.3 and
/// wasi:http (the server's component linker) provide it.
pub fn of_component(runtime: &Runtime, component: &Component) -> Vec<Import> {
    let engine = runtime.engine();
    let ty = component.component_type();
    let names: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let mut linker = runtime.component_linker().clone();
    linker.allow_shadowing(true);
    let mut missing: Vec<(String, String)> = Vec::new();
    for _ in 0..=names.len() {
        let Err(error) = linker.instantiate_pre(component) else {
            break;
        };
        // "component imports instance `NAME`, but a matching
        // implementation was not found in the linker: WHY"
        let top = error.to_string();
        let Some(name) = names.iter().find(|name| {
            top.contains(&format!("`{name}`")) && !missing.iter().any(|(m, _)| m == *name)
        }) else {
            break;
        };
        let reason = format!("{:#}", error.root_cause());
        missing.push((name.clone(), reason));
        let Some(item) = ty.get_import(engine, name) else {
            break;
        };
        if stand_in(&mut linker, name, &item.ty, engine).is_err() {
            break;
        }
    }
    with_reasons(names, &missing)
}

/// Each of `names`, with why it is missing if it is among `missing`.
fn with_reasons(names: Vec<String>, missing: &[(String, String)]) -> Vec<Import> {
    names
        .into_iter()
        .map(|name| {
            let missing = missing
                .iter()
                .find(|(m, _)| *m == name)
                .map(|(_, r)| r.clone());
            Import { name, missing }
        })
        .collect()
}

/// Defines `name` in `linker` with functions that trap and resources of
/// the host's, whatever was there.
fn stand_in<T: 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    name: &str,
    item: &ComponentItem,
    engine: &wasmtime::Engine,
) -> wasmtime::Result<()> {
    let mut root = linker.root();
    match item {
        ComponentItem::ComponentFunc(_) => {
            root.func_new(name, |_, _, _, _| Err(wasmtime::Error::msg("not provided")))?;
        }
        ComponentItem::Resource(_) => {
            root.resource(name, ResourceType::host::<()>(), |_, _| Ok(()))?;
        }
        ComponentItem::ComponentInstance(instance) => {
            let mut inner = root.instance(name)?;
            for (export, item) in instance.exports(engine) {
                match item.ty {
                    ComponentItem::ComponentFunc(_) => {
                        inner.func_new(export, |_, _, _, _| {
                            Err(wasmtime::Error::msg("not provided"))
                        })?;
                    }
                    ComponentItem::Resource(_) => {
                        inner.resource(export, ResourceType::host::<()>(), |_, _| Ok(()))?;
                    }
                    _ => {}
                }
            }
        }
        _ => return Err(wasmtime::Error::msg(format!("cannot stand in for {name}"))),
    }
    Ok(())
}
