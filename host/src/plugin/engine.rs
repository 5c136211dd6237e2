//! The one wasmtime `Engine` every plugin runs on, and what is shared by all
//! of their instances.
//!
//! - **Pooling allocator**: instance slots (memories, tables, fiber stacks)
//!   are reserved once and reused, so instantiation costs microseconds. If
//!   the machine cannot reserve the address space (a small virtual address
//!   space, a `ulimit -v`), the engine falls back to on-demand allocation
//!   and says so.
//! - **Semaphores sized to the pool**: a request waits for a free slot
//!   rather than failing when every slot is in use; instances kept for
//!   reuse have slots of their own, so they never starve running ones.
//! - **One epoch ticker thread**: it advances the engine's epoch every
//!   [`EPOCH_TICK`]; a running guest yields to the async executor at each
//!   tick (so a guest that loops cannot hold a worker thread) and is
//!   stopped at its deadline.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;

use crate::budget::{Budgets, Share};
use crate::error::HttpError;
use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy, Linker,
    PoolingAllocationConfig, component,
};

use super::store::{ComponentState, GuestState, MAX_TABLE_ELEMENTS};

/// How often the epoch advances: a guest's deadline is checked, and a
/// running guest yields, this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Instances that may run at once.
pub const MAX_INSTANCES: u32 = 256;
/// Instances that may wait for their next request at once, over every
/// plugin with reuse. The pool holds both kinds.
pub const MAX_IDLE: u32 = 64;

/// Bytes of each linear memory reset by `memset` and kept resident, where
/// the kernel tells which pages were touched (PAGEMAP_SCAN) and where it
/// does not (the lowest bytes are then reset, touched or not).
const KEEP_RESIDENT_MEMORY: (usize, usize) = (2 << 20, 128 << 10);
/// Bytes of each table reset by `memset` and kept resident.
const KEEP_RESIDENT_TABLE: usize = 64 << 10;

/// The largest linear memory any plugin may be granted.
pub const MAX_MEMORY: u64 = 4 << 30;

/// The on-disk cache of compiled WebAssembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileCache {
    /// The directory (absolute; created if missing).
    pub dir: PathBuf,
    /// Whether the user named it (`--cache-dir`): then a directory that
    /// cannot be used is an error rather than a warning.
    pub explicit: bool,
}

/// The engine, its linkers and the slots to run instances in.
pub struct Runtime {
    engine: Engine,
    linker: Linker<GuestState>,
    component_linker: component::Linker<ComponentState>,
    slots: Arc<Semaphore>,
    idle_slots: Arc<Semaphore>,
    pooling: bool,
    ticker: Arc<AtomicBool>,
    cache: Option<Cache>,
    budgets: Budgets,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("pooling", &self.pooling)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// An engine with the pooling allocator, or on-demand allocation where
    /// the pool cannot be reserved; compiled code is kept in `cache`. A
    /// cache directory that cannot be used is an error if the user named
    /// it, a warning otherwise.
    pub fn new(cache: Option<&CompileCache>) -> anyhow::Result<Runtime> {
        let cache = match cache {
            None => None,
            Some(wanted) => {
                let mut settings = CacheConfig::new();
                settings.with_directory(&wanted.dir);
                match Cache::new(settings) {
                    Ok(cache) => Some(cache),
                    Err(error) if wanted.explicit => {
                        anyhow::bail!(
                            "cannot use cache directory {}: {error:#}",
                            wanted.dir.display()
                        )
                    }
                    Err(error) => {
                        crate::log::line(format!(
                            "wasmhttpd: cannot use cache directory {} ({error:#}); plugins will be compiled at every start",
                            wanted.dir.display()
                        ));
                        None
                    }
                }
            }
        };
        let (engine, pooling) = match Engine::new(&config(true, cache.clone())) {
            Ok(engine) => (engine, true),
            Err(error) => {
                crate::log::line(format!(
                    "wasmhttpd: pooling allocator unavailable ({error:#}); allocating instances on demand"
                ));
                let engine = Engine::new(&config(false, cache.clone()))
                    .map_err(|e| anyhow::anyhow!("cannot create the WebAssembly engine: {e:#}"))?;
                (engine, false)
            }
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut GuestState| {
            &mut state.wasi
        })
        .map_err(|e| anyhow::anyhow!("cannot link WASI: {e:#}"))?;
        // Components get WASI 0.2 whole (toolchains' std imports wasi:cli,
        // wasi:filesystem, wasi:sockets beside the proxy world; each is
        // given nothing the sidecar does not grant) and wasi:http.
        let mut component_linker = component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut component_linker)
            .and_then(|()| {
                wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut component_linker)
            })
            .map_err(|e| anyhow::anyhow!("cannot link WASI 0.2: {e:#}"))?;
        // And WASI 0.3 (p3) whole, with its wasi:http, each as sandboxed.
        wasmtime_wasi::p3::add_to_linker(&mut component_linker)
            .and_then(|()| wasmtime_wasi_http::p3::add_to_linker(&mut component_linker))
            .map_err(|e| anyhow::anyhow!("cannot link WASI 0.3: {e:#}"))?;
        let ticker = Arc::new(AtomicBool::new(true));
        let running = Arc::clone(&ticker);
        let ticking = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while running.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match ticking.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })
            .context("cannot start the epoch ticker")?;
        Ok(Runtime {
            engine,
            linker,
            component_linker,
            slots: Arc::new(Semaphore::new(MAX_INSTANCES as usize)),
            idle_slots: Arc::new(Semaphore::new(MAX_IDLE as usize)),
            pooling,
            ticker,
            cache,
            budgets: Budgets::unlimited(),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker with WASI preview 1, for pre-linking modules.
    pub fn linker(&self) -> &Linker<GuestState> {
        &self.linker
    }

    /// The linker with WASI 0.2 and wasi:http, for components.
    pub fn component_linker(&self) -> &component::Linker<ComponentState> {
        &self.component_linker
    }

    /// Links `component` once against WASI 0.2 and wasi:http; a missing
    /// import is named in the error.
    pub fn link_component(
        &self,
        component: &component::Component,
    ) -> anyhow::Result<component::InstancePre<ComponentState>> {
        self.component_linker
            .instantiate_pre(component)
            .map_err(|e| anyhow::anyhow!("cannot link: {e:#}"))
    }

    /// The same runtime, with these server-wide budgets (unlimited until
    /// then).
    pub fn with_budgets(mut self, budgets: Budgets) -> Runtime {
        self.budgets = budgets;
        self
    }

    /// The server-wide budgets.
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Reserves an instance's memory cap from the guest-memory budget, for
    /// as long as the share is held; 503 when it is in use.
    pub fn reserve_memory(&self, bytes: u64) -> Result<Share, HttpError> {
        self.budgets
            .guest_memory
            .share(bytes)
            .ok_or(HttpError::Overloaded("guest memory"))
    }

    /// The slots instances run in: hold a permit while an instance lives.
    pub fn slots(&self) -> &Arc<Semaphore> {
        &self.slots
    }

    /// The slots instances kept for reuse wait in: hold a permit while one
    /// is parked.
    pub fn idle_slots(&self) -> &Arc<Semaphore> {
        &self.idle_slots
    }

    /// The compiled-code cache's directory, and how many modules it has
    /// supplied and how many it had to have compiled so far.
    pub fn cache_stats(&self) -> Option<(&std::path::Path, usize, usize)> {
        self.cache.as_ref().map(|cache| {
            (
                cache.directory().as_path(),
                cache.cache_hits(),
                cache.cache_misses(),
            )
        })
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.pooling
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.store(false, Ordering::Relaxed);
    }
}

/// Whether the kernel has the PAGEMAP_SCAN ioctl (Linux 6.7).
fn kernel_has_pagemap_scan() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|release| kernel_version(&release))
        .is_some_and(|version| version >= (6, 7))
}

/// `(major, minor)` from a kernel release such as `6.18.44-generic`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn config(pooling: bool, cache: Option<Cache>) -> Config {
    let mut config = Config::new();
    config.cache(cache);
    config.epoch_interruption(true);
    if std::env::var_os("WASMHTTPD_PERFMAP").is_some() {
        // For profiling: `perf` names guest functions from /tmp/perf-PID.map.
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        // A component is several core instances (a Rust one 3 or 4, an
        // interpreter's more), most of them without a memory.
        let instances = MAX_INSTANCES + MAX_IDLE;
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 2)
            .total_tables(instances * 8)
            .total_stacks(instances)
            .max_memory_size(MAX_MEMORY as usize)
            .max_tables_per_module(4)
            .max_memories_per_module(1)
            .table_elements(MAX_TABLE_ELEMENTS)
            // Reset the pages an instance touched with memset rather than
            // madvise: no page faults on the next instance and no TLB
            // shootdowns. Where the kernel has PAGEMAP_SCAN (Linux 6.7),
            // only the pages really touched are reset, wherever they are
            // (a Rust guest's stack sits at 1 MiB); elsewhere the lowest
            // bytes are.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(if kernel_has_pagemap_scan() {
                KEEP_RESIDENT_MEMORY.0
            } else {
                KEEP_RESIDENT_MEMORY.1
            })
            .table_keep_resident(KEEP_RESIDENT_TABLE);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

#[cfg(test)]
mod tests {
    use super::kernel_version;

    #[test]
    fn kernel_versions_are_read_from_the_release() {
        assert_eq!(kernel_version("6.18.44-fc-v669\n"), Some((6, 18)));
        assert_eq!(kernel_version("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(kernel_version("6.7"), Some((6, 7)));
        assert_eq!(kernel_version("weird"), None);
    }
}
