//! The plugins of a directory, loaded, and the table that routes to them.
//!
//! Loading reports each problem with the file it is in (a sidecar that does
//! not parse, a module that does not compile or link, a route another
//! plugin already answers) and leaves that plugin out; the rest serve.
//! At startup the server waits a moment for the compiles; a plugin still
//! compiling then is routed at once (its requests wait for it) and is
//! followed in the background: ready, or left out with its error.
//! Route conflicts are settled by name order: the plugin whose name sorts
//! first keeps the route.
//!
//! Lookup: among the routes that match the path *and* allow the method, an
//! exact route beats a prefix, and a longer prefix beats a shorter one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::Method;

use super::engine::Runtime;
use super::manifest::RoutePattern;
use super::{Limits, Matched, Plugin};

/// The loaded plugins and their routes: an immutable snapshot.
#[derive(Debug, Default)]
pub struct Table {
    plugins: BTreeMap<String, Arc<Plugin>>,
    routes: Vec<(RoutePattern, Arc<Plugin>)>,
}

impl Table {
    /// Builds the table from loaded plugins (in name order); returns the
    /// plugins left out for their routes, with why.
    pub fn build(plugins: Vec<Arc<Plugin>>) -> (Table, Vec<String>) {
        let mut table = Table::default();
        let mut problems = Vec::new();
        for plugin in plugins {
            let conflict = plugin.manifest.routes.iter().find_map(|pattern| {
                table.routes.iter().find(|(taken, owner)| {
                    taken == pattern
                        && methods_overlap(&owner.manifest.methods, &plugin.manifest.methods)
                })
            });
            if let Some((pattern, owner)) = conflict {
                problems.push(format!(
                    "{}: route {} is already answered by plugin {}; {} is not routed",
                    plugin.file.display(),
                    pattern.as_written(),
                    owner.name,
                    plugin.name
                ));
                continue;
            }
            for pattern in &plugin.manifest.routes {
                table.routes.push((pattern.clone(), Arc::clone(&plugin)));
            }
            table.plugins.insert(plugin.name.clone(), plugin);
        }
        (table, problems)
    }

    /// The plugins, in name order.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }

    /// The plugin called `name`, if it is routed.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// The plugin route for a decoded, normalised `path` and `method`.
    pub fn find(&self, path: &str, method: &Method) -> Option<Matched> {
        let mut best: Option<(&RoutePattern, &Arc<Plugin>)> = None;
        for (pattern, plugin) in &self.routes {
            if !pattern_matches(pattern, path) || !allows(&plugin.manifest.methods, method) {
                continue;
            }
            let better = match (best.map(|(p, _)| p), pattern) {
                (None, _) => true,
                (Some(RoutePattern::Exact(_)), _) => false,
                (Some(RoutePattern::Prefix(_)), RoutePattern::Exact(_)) => true,
                (Some(RoutePattern::Prefix(a)), RoutePattern::Prefix(b)) => b.len() > a.len(),
            };
            if better {
                best = Some((pattern, plugin));
            }
        }
        let (pattern, plugin) = best?;
        let (script_name, path_info) = match pattern {
            RoutePattern::Exact(route) => (route.clone(), String::new()),
            RoutePattern::Prefix(route) if route == "/" => (String::new(), path.to_string()),
            RoutePattern::Prefix(route) => (route.clone(), path[route.len()..].to_string()),
        };
        Some(Matched {
            plugin: Arc::clone(plugin),
            script_name,
            path_info,
        })
    }
}

fn pattern_matches(pattern: &RoutePattern, path: &str) -> bool {
    match pattern {
        RoutePattern::Exact(route) => path == route,
        RoutePattern::Prefix(route) if route == "/" => true,
        RoutePattern::Prefix(route) => path
            .strip_prefix(route.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
    }
}

fn allows(methods: &Option<Vec<Method>>, method: &Method) -> bool {
    methods.as_ref().is_none_or(|list| list.contains(method))
}

fn methods_overlap(a: &Option<Vec<Method>>, b: &Option<Vec<Method>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.iter().any(|m| b.contains(m)),
        _ => true,
    }
}

/// The plugins directory: its table, swapped whole when the directory
/// changes, so a request always sees one consistent set of plugins.
#[derive(Debug)]
pub struct Plugins {
    dir: PathBuf,
    runtime: Arc<Runtime>,
    defaults: Limits,
    table: RwLock<Arc<Table>>,
}

impl Plugins {
    /// Loads the plugins in `dir` (canonical) to run on `runtime`, waiting
    /// up to `wait` for them to compile; returns the problems found.
    pub async fn load(
        dir: PathBuf,
        runtime: Arc<Runtime>,
        defaults: Limits,
        wait: Duration,
    ) -> (Plugins, Vec<String>) {
        let (loading, mut problems) = start_dir(&runtime, &dir, defaults);
        let deadline = tokio::time::Instant::now() + wait;
        let mut kept = Vec::new();
        for plugin in loading {
            match tokio::time::timeout_at(deadline, plugin.compiled()).await {
                Ok(Err(problem)) => problems.push(problem),
                Ok(Ok(())) | Err(_) => kept.push(plugin),
            }
        }
        let (table, conflicts) = Table::build(kept);
        problems.extend(conflicts);
        let plugins = Plugins {
            dir,
            runtime,
            defaults,
            table: RwLock::new(Arc::new(table)),
        };
        (plugins, problems)
    }

    /// Follows every plugin still compiling, in the background: progress
    /// lines while it compiles, then its banner line with the time it
    /// took, or its error (and it is no longer routed). Must be called
    /// within a tokio runtime.
    pub fn follow_compiles(self: &Arc<Self>) {
        for plugin in self.table().plugins().filter(|p| !p.is_compiled()) {
            let plugin = Arc::clone(plugin);
            let plugins = Arc::clone(self);
            tokio::spawn(async move {
                match plugin.compiled_reporting().await {
                    Ok(()) => println!(
                        "{}, ready after {:.1} s",
                        plugin.describe(),
                        plugin.compile_time().as_secs_f64()
                    ),
                    Err(problem) => {
                        crate::log::line(format!("wasmhttpd: {problem}"));
                        plugins.remove(&plugin);
                    }
                }
            });
        }
    }

    /// Stops routing to `plugin` (if it is still this version).
    fn remove(&self, plugin: &Arc<Plugin>) {
        let mut table = self
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let rest: Vec<Arc<Plugin>> = table
            .plugins()
            .filter(|p| !Arc::ptr_eq(p, plugin))
            .cloned()
            .collect();
        *table = Arc::new(Table::build(rest).0);
    }

    /// The plugins directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The shared engine.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The defaults a sidecar may change.
    pub fn defaults(&self) -> Limits {
        self.defaults
    }

    /// The current table.
    pub fn table(&self) -> Arc<Table> {
        Arc::clone(
            &self
                .table
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// Replaces the table.
    pub fn replace(&self, table: Table) {
        *self
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(table);
    }
}

/// The names of the plugins in `dir` (every `NAME.wasm`), in order.
pub fn plugin_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".wasm")?;
            valid_name(stem).then(|| stem.to_string())
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Starts loading every `NAME.wasm` in `dir`, in name order. Returns the
/// plugins compiling and one message per plugin left out already.
fn start_dir(
    runtime: &Arc<Runtime>,
    dir: &Path,
    defaults: Limits,
) -> (Vec<Arc<Plugin>>, Vec<String>) {
    let names = match plugin_names(dir) {
        Ok(names) => names,
        Err(e) => return (Vec::new(), vec![format!("{}: {e}", dir.display())]),
    };
    let mut problems = Vec::new();
    let mut plugins = Vec::new();
    for name in names {
        match Plugin::load(runtime, dir, &name, defaults) {
            Ok(plugin) => plugins.push(Arc::new(plugin)),
            Err(problem) => problems.push(problem),
        }
    }
    (plugins, problems)
}

/// Plugin names are path segments: no dots at the start, nothing that would
/// need escaping in a URL.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matches_the_path_and_below_only() {
        let prefix = RoutePattern::Prefix("/api".into());
        assert!(pattern_matches(&prefix, "/api"));
        assert!(pattern_matches(&prefix, "/api/x/y"));
        assert!(!pattern_matches(&prefix, "/apix"));
        assert!(pattern_matches(
            &RoutePattern::Prefix("/".into()),
            "/anything"
        ));
        assert!(pattern_matches(&RoutePattern::Exact("/a".into()), "/a"));
        assert!(!pattern_matches(&RoutePattern::Exact("/a".into()), "/a/"));
    }

    #[test]
    fn methods() {
        let post = Some(vec![Method::POST]);
        assert!(allows(&None, &Method::GET));
        assert!(allows(&post, &Method::POST));
        assert!(!allows(&post, &Method::GET));
        assert!(methods_overlap(&None, &post));
        assert!(!methods_overlap(&post, &Some(vec![Method::GET])));
    }

    #[test]
    fn names() {
        assert!(valid_name("hello-c"));
        assert!(valid_name("v1.2"));
        assert!(!valid_name(".hidden"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(""));
    }
}
