//! Certificate reload: the certificate, key and password files are
//! watched, and a change takes effect for new connections without a
//! restart, as plugins do.
//!
//! Events are gathered until the files have been quiet for [`QUIET`] (a
//! renewal tool writes the certificate and key one after the other). A
//! reload that fails (a key that no longer matches, a half-written file)
//! is reported, and the previous certificate keeps serving; the next
//! change tries again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::keys::{self, KeyFiles};
use super::{Settings, Tls};

/// How long the files must be quiet before a reload.
pub const QUIET: Duration = Duration::from_millis(300);

/// Keeps the watch alive; dropping it stops reloading.
#[derive(Debug)]
pub struct Watch {
    _watcher: RecommendedWatcher,
}

/// Starts watching `tls`'s files (none for a self-signed certificate).
/// Must be called within a tokio runtime.
pub fn start(tls: &Arc<Tls>) -> anyhow::Result<Option<Watch>> {
    let Settings::Files(files) = &tls.settings else {
        return Ok(None);
    };
    let watched: HashSet<PathBuf> = files.paths().into_iter().map(absolute).collect();
    let dirs: HashSet<PathBuf> = watched
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
            && event.paths.iter().any(|p| watched.contains(&absolute(p)))
        {
            let _ = tx.send(());
        }
    })?;
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    let tls = Arc::clone(tls);
    let files = files.clone();
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            while tokio::time::timeout(QUIET, rx.recv())
                .await
                .is_ok_and(|e| e.is_some())
            {}
            reload(&tls, &files);
        }
    });
    Ok(Some(Watch { _watcher: watcher }))
}

/// Loads `files` again and swaps them in if they are good and new.
fn reload(tls: &Tls, files: &KeyFiles) {
    match keys::load(files) {
        Ok(loaded) => {
            let old = tls.current.get();
            if old.key.cert == loaded.key.cert {
                return;
            }
            tls.current.set(loaded);
            crate::log::line(format!("wasmhttpd: reloaded {}", tls.describe()));
        }
        Err(error) => crate::log::line(format!(
            "wasmhttpd: cannot reload the TLS certificate ({error:#}); keeping the previous one"
        )),
    }
}

fn absolute(path: impl AsRef<Path>) -> PathBuf {
    std::path::absolute(path.as_ref()).unwrap_or_else(|_| path.as_ref().to_path_buf())
}
