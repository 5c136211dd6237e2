//! What one instance's store holds, and the caps and deadline every store
//! gets, whatever the kind of guest.
//!
//! - [`GuestState`]: a core `wasm32-wasip1` module (WASI preview 1).
//! - [`ComponentState`]: a component (WASI 0.2, and wasi:http with its
//!   outbound requests checked by [`Outbound`]).
//! - [`Caps`]: linear memory summed over every memory of the instance (a
//!   component may have several), and bounded counts of instances, tables
//!   and memories. Growing past the memory cap traps with
//!   [`MemoryLimitReached`].
//! - [`new_store`]: a store with the caps, that yields to the executor at
//!   every epoch tick and stops at its deadline with [`DeadlineExceeded`]
//!   (a reused instance's deadline is set again for each request:
//!   [`set_deadline`]).

use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::outbound::Outbound;

/// The most elements any table may have.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// What a core module instance's store holds.
pub struct GuestState {
    /// WASI: arguments, environment, stdio, granted directories.
    pub wasi: WasiP1Ctx,
    /// The caps.
    pub caps: Caps,
}

/// What a component instance's store holds.
pub struct ComponentState {
    /// WASI 0.2: environment, stdio, granted directories.
    pub wasi: WasiCtx,
    /// wasi:http's settings.
    pub http: WasiHttpCtx,
    /// Which outbound requests may be sent.
    pub outbound: Outbound,
    /// The guest's resources (streams, requests, …).
    pub table: ResourceTable,
    /// The caps.
    pub caps: Caps,
}

/// What a component instance may make the host hold, beside its linear
/// memory: the host side of every resource (header fields, bodies, streams,
/// requests) lives outside the guest's memory and its cap, so it is capped
/// here. The worst case is `handles` × the larger of `field_bytes` and a
/// body chunk ([`super::outbound::BODY_CHUNK`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCaps {
    /// Linear memory, bytes, over all of the instance's memories.
    pub memory: u64,
    /// Resource handles alive at once (the resource table's capacity).
    pub handles: usize,
    /// Bytes of one header-fields object the guest builds.
    pub field_bytes: usize,
    /// Outbound requests in flight at once.
    pub outbound: usize,
}

impl ComponentState {
    /// A component's state: `wasi`, outbound requests as `outbound`
    /// allows, memory and host-side state capped by `caps`.
    pub fn new(wasi: WasiCtx, outbound: &Outbound, caps: HostCaps) -> ComponentState {
        let mut table = ResourceTable::new();
        table.set_max_capacity(caps.handles);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(caps.field_bytes);
        ComponentState {
            wasi,
            http,
            outbound: outbound.for_instance(caps.outbound),
            table,
            caps: Caps::component(caps.memory),
        }
    }
}

impl std::fmt::Debug for GuestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestState").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ComponentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentState").finish_non_exhaustive()
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// A store's state that has caps.
pub trait Capped: Send + 'static {
    /// The caps.
    fn caps(&mut self) -> &mut Caps;
}

impl Capped for GuestState {
    fn caps(&mut self) -> &mut Caps {
        &mut self.caps
    }
}

impl Capped for ComponentState {
    fn caps(&mut self) -> &mut Caps {
        &mut self.caps
    }
}

/// The memory cap was reached: raised when a memory would grow past it.
#[derive(Debug)]
pub struct MemoryLimitReached;

impl std::fmt::Display for MemoryLimitReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("memory limit reached")
    }
}

impl std::error::Error for MemoryLimitReached {}

/// The deadline passed: raised from the epoch callback.
#[derive(Debug)]
pub struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Resource caps for one instance (and, for a component, all of its core
/// instances together).
#[derive(Debug)]
pub struct Caps {
    deadline: Instant,
    memory_limit: usize,
    memory_used: usize,
    instances: usize,
    memories: usize,
    tables: usize,
}

impl Caps {
    /// Caps for a core module: one instance, one memory, a few tables.
    pub fn module(memory_limit: u64) -> Caps {
        Caps::new(memory_limit, 1, 1, 4)
    }

    /// Caps for a component, which is several core instances.
    pub fn component(memory_limit: u64) -> Caps {
        Caps::new(memory_limit, 64, 16, 64)
    }

    fn new(memory_limit: u64, instances: usize, memories: usize, tables: usize) -> Caps {
        Caps {
            deadline: Instant::now(),
            memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX),
            memory_used: 0,
            instances,
            memories,
            tables,
        }
    }
}

impl Caps {
    /// Linear memory in use now, bytes, over all of the instance's memories.
    pub fn memory_used(&self) -> u64 {
        self.memory_used as u64
    }
}

impl ResourceLimiter for Caps {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.memory_used - current.min(self.memory_used)).saturating_add(desired);
        if total > self.memory_limit {
            return Err(wasmtime::Error::new(MemoryLimitReached));
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn memories(&self) -> usize {
        self.memories
    }

    fn tables(&self) -> usize {
        self.tables
    }
}

/// A store on the plugin engine for `state`, capped, that yields at every epoch tick and fails
/// with [`DeadlineExceeded`] once `deadline` has passed.
pub fn new_store<T: Capped>(engine: &Engine, state: T, deadline: Instant) -> Store<T> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| state.caps());
    store.epoch_deadline_callback(|mut store| {
        if Instant::now() >= store.data_mut().caps().deadline {
            Err(wasmtime::Error::new(DeadlineExceeded))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    set_deadline(&mut store, deadline);
    store
}

/// Sets the time after which the store's guest is stopped.
pub fn set_deadline<T: Capped>(store: &mut Store<T>, deadline: Instant) {
    store.data_mut().caps().deadline = deadline;
    store.set_epoch_deadline(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_capped_over_all_memories() {
        let mut caps = Caps::component(100);
        assert!(caps.memory_growing(0, 60, None).expect("first"));
        assert!(caps.memory_growing(60, 70, None).expect("grows"));
        let error = caps.memory_growing(0, 40, None).expect_err("second memory");
        assert!(error.is::<MemoryLimitReached>());
        assert!(caps.memory_growing(0, 30, None).expect("fits"));
    }
}
