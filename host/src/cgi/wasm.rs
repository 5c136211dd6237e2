//! `.wasm` files in CGI directories: run as CGI-over-WASI modules in the
//! plugin sandbox, not as processes.
//!
//! A module is compiled the first time it is requested (on a blocking
//! thread: compiling a large module takes a while, and other requests go
//! on meanwhile), once however many requests come for it at once (they
//! all wait for the one compile), and kept, with the identity of the file
//! it came from
//! (device, inode, size, modification time). A request that finds the file
//! changed compiles the new version; one that finds it broken gets a 500,
//! and the verdict is kept too, so that a broken file is not recompiled on
//! every request. Each run gets the plugin defaults (`--plugin-timeout`,
//! `--plugin-memory`) and no grants: no directory, no extra variable, no
//! host path in its environment.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::fs_root::Root;
use crate::plugin::engine::Runtime;
use crate::plugin::executor::{Executor, prepare};
use crate::plugin::limits::Limits;
use crate::plugin::wagi::Wagi;

/// Which version of a file a module was compiled from.
type FileId = (u64, u64, u64, i64, i64);

fn file_id(metadata: &Metadata) -> FileId {
    (
        metadata.dev(),
        metadata.ino(),
        metadata.size(),
        metadata.mtime(),
        metadata.mtime_nsec(),
    )
}

/// What compiling a file gave.
type Verdict = Result<Arc<Wagi>, String>;

/// A file's version and its compile, done or under way.
type Compiled = (FileId, Arc<OnceCell<Verdict>>);

/// The compiled `.wasm` scripts, by path.
#[derive(Debug)]
pub struct WasmScripts {
    runtime: Arc<Runtime>,
    limits: Limits,
    modules: Mutex<HashMap<PathBuf, Compiled>>,
}

impl WasmScripts {
    /// Scripts run on `runtime`, each with `limits`.
    pub fn new(runtime: Arc<Runtime>, limits: Limits) -> WasmScripts {
        WasmScripts {
            runtime,
            limits,
            modules: Mutex::new(HashMap::new()),
        }
    }

    /// The engine they run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The limits each run gets.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The module in `relative` (beneath `root`), whose metadata is
    /// `metadata`: compiled now if this version of it was never seen.
    /// Its compile is logged under `tag`.
    pub async fn module(
        &self,
        root: &Root,
        relative: &Path,
        metadata: &Metadata,
        tag: &str,
    ) -> Result<Arc<Wagi>, String> {
        let id = file_id(metadata);
        let compile = {
            let mut modules = self.lock();
            match modules.get(relative) {
                Some((seen, compile)) if *seen == id => Arc::clone(compile),
                _ => {
                    let compile = Arc::new(OnceCell::new());
                    modules.insert(relative.to_path_buf(), (id, Arc::clone(&compile)));
                    compile
                }
            }
        };
        compile
            .get_or_init(|| self.compile(root, relative, tag))
            .await
            .clone()
    }

    async fn compile(&self, root: &Root, relative: &Path, tag: &str) -> Verdict {
        let file = root
            .open(relative)
            .map_err(|e| format!("cannot open: {e}"))?;
        let runtime = Arc::clone(&self.runtime);
        let started = std::time::Instant::now();
        let verdict = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut bytes = Vec::new();
            (&file)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read: {e}"))?;
            match prepare(&runtime, &bytes) {
                Ok(Executor::Wagi(wagi)) => Ok(Arc::new(wagi)),
                Ok(Executor::Proxy(_) | Executor::P3(_)) => Err(
                    "cannot load: a wasi:http component (serve it from the plugins directory)"
                        .to_string(),
                ),
                Err(e) => Err(format!("cannot load: {e:#}")),
            }
        })
        .await
        .unwrap_or_else(|e| Err(format!("cannot load: {e}")));
        if verdict.is_ok() {
            crate::log::line(format!(
                "{tag} compiled in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
        }
        verdict
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Compiled>> {
        self.modules
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
