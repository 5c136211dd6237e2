//! Hot reload: the plugins directory is watched, and a change to a `.wasm`
//! or its sidecar takes effect without a restart.
//!
//! - Changes are gathered until the directory has been quiet for
//!   [`QUIET`], so a burst of events (a copy, an editor's save) causes one
//!   reload.
//! - A reload rescans the directory. Plugins whose files did not change are
//!   kept as they are (not recompiled); new or changed ones are loaded;
//!   those whose `.wasm` is gone are dropped. The new table then replaces
//!   the old one at once, so a request sees either the old set or the new.
//!   Requests in flight hold their plugin and finish on the version they
//!   started with.
//! - New and changed plugins compile in parallel, each on its own thread,
//!   with progress lines if that takes long; the previous versions serve
//!   meanwhile.
//! - A changed plugin that fails to load is reported, and its previous
//!   version keeps serving. If the file was modified within [`SETTLE`], it
//!   may be a copy still in progress: it is retried after [`SETTLE`] and
//!   reported only if it still fails, so a half-written file causes no
//!   spurious error.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::registry::{Plugins, Table, plugin_names};
use super::{Fingerprint, Plugin, fingerprint};

/// How long the directory must be quiet before a reload.
pub const QUIET: Duration = Duration::from_millis(200);
/// How recently a file may have changed and still be taken for a copy in
/// progress when it fails to load.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Keeps the watch alive; dropping it stops hot reload.
#[derive(Debug)]
pub struct Watch {
    _watcher: RecommendedWatcher,
}

/// Starts watching `plugins`' directory, reloading on change. Must be
/// called within a tokio runtime.
pub fn start(plugins: Arc<Plugins>) -> anyhow::Result<Watch> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let relevant = event
                .paths
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "wasm" || e == "toml"));
            if relevant {
                let _ = tx.send(());
            }
        }
    })?;
    watcher.watch(plugins.dir(), RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        let mut reported: HashMap<String, Fingerprint> = HashMap::new();
        while rx.recv().await.is_some() {
            loop {
                // Wait for quiet, then reload; retry while copies settle.
                while tokio::time::timeout(QUIET, rx.recv())
                    .await
                    .is_ok_and(|e| e.is_some())
                {}
                if !reload(&plugins, &mut reported).await {
                    break;
                }
                tokio::time::sleep(SETTLE).await;
            }
        }
    });
    Ok(Watch { _watcher: watcher })
}

/// Rescans and swaps the table. Returns whether some file failed while it
/// may still have been being written (worth another try). `reported`
/// remembers which failures were already logged, so each is logged once.
pub async fn reload(plugins: &Plugins, reported: &mut HashMap<String, Fingerprint>) -> bool {
    let dir = plugins.dir();
    let old = plugins.table();
    let names = match plugin_names(dir) {
        Ok(names) => names,
        Err(e) => {
            crate::log::line(format!("wasmhttpd: {}: {e}", dir.display()));
            return false;
        }
    };
    let mut unsettled = false;
    let mut loaded: Vec<Arc<Plugin>> = Vec::new();
    let mut compiling: Vec<(Arc<Plugin>, Option<&Arc<Plugin>>)> = Vec::new();
    for name in &names {
        let previous = old.get(name);
        if let Some(previous) = previous.filter(|p| p.fingerprint == fingerprint(dir, name)) {
            loaded.push(Arc::clone(previous));
            continue;
        }
        match Plugin::load(plugins.runtime(), dir, name, plugins.defaults()) {
            Ok(plugin) => compiling.push((Arc::new(plugin), previous)),
            Err(problem) => {
                unsettled |= failed(dir, name, previous, &problem, reported);
                loaded.extend(previous.cloned());
            }
        }
    }
    for (plugin, previous) in compiling {
        let name = &plugin.name;
        match plugin.compiled_reporting().await {
            Ok(()) => {
                reported.remove(name);
                let verb = if previous.is_some() {
                    "reloaded"
                } else {
                    "added"
                };
                println!("{} ({verb})", plugin.describe());
                loaded.push(plugin);
            }
            Err(problem) => {
                unsettled |= failed(dir, name, previous, &problem, reported);
                loaded.extend(previous.cloned());
            }
        }
    }
    for gone in old.plugins().filter(|p| !names.contains(&p.name)) {
        println!("Plugin {}: removed", gone.name);
    }
    loaded.sort_by(|a, b| a.name.cmp(&b.name));
    let (table, conflicts) = Table::build(loaded);
    for conflict in conflicts {
        crate::log::line(format!("wasmhttpd: {conflict}"));
    }
    plugins.replace(table);
    unsettled
}

/// Handles a plugin that failed to load: reports it once per version of
/// its files, unless it may be a copy still in progress. Returns whether
/// it is worth another try.
fn failed(
    dir: &Path,
    name: &str,
    previous: Option<&Arc<Plugin>>,
    problem: &str,
    reported: &mut HashMap<String, Fingerprint>,
) -> bool {
    if recently_modified(dir, name) {
        return true;
    }
    let now = fingerprint(dir, name);
    if reported.get(name) != Some(&now) {
        reported.insert(name.to_string(), now);
        let keeps = if previous.is_some() {
            "; the previous version keeps serving"
        } else {
            ""
        };
        crate::log::line(format!("wasmhttpd: {problem}{keeps}"));
    }
    false
}

fn recently_modified(dir: &Path, name: &str) -> bool {
    [format!("{name}.wasm"), format!("{name}.toml")]
        .iter()
        .any(|file| {
            std::fs::metadata(dir.join(file))
                .and_then(|m| m.modified())
                .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() < SETTLE)
        })
}
