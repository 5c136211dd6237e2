//! The limits every plugin runs with (its sidecar may change them) and what
//! it is granted beyond the request.

use std::time::Duration;

use super::engine::MAX_MEMORY;
use super::manifest::{self, DirGrant, Manifest, Reuse};
use super::store;

/// The command line's limits for every plugin (its sidecar may change
/// them): the server's flags, and `wasmhttpd check`'s.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DefaultLimits {
    /// Seconds a plugin may run per request (a sidecar may change it)
    #[arg(long, default_value_t = 30, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub plugin_timeout: u64,

    /// MiB of memory a plugin instance may use (a sidecar may change it)
    #[arg(long, default_value_t = 128, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub plugin_memory: u64,
}

impl DefaultLimits {
    /// The limits these flags give.
    pub fn limits(&self) -> Limits {
        Limits::defaults(Duration::from_secs(self.plugin_timeout), self.plugin_memory)
    }
}

/// Limits every plugin gets unless its sidecar says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time per request.
    pub timeout: Duration,
    /// Linear memory, bytes.
    pub memory: u64,
    /// Request body, bytes.
    pub request_body: u64,
    /// Response body, bytes.
    pub response: u64,
    /// Resource handles a component may hold at once.
    pub handles: usize,
    /// Bytes of one header-fields object a component builds.
    pub field_bytes: usize,
    /// Outbound requests a component may have in flight.
    pub outbound_requests: usize,
    /// How long a wasi:http instance lives, if it serves more than one
    /// request.
    pub reuse: Option<Reuse>,
}

impl Limits {
    /// The defaults: `--plugin-timeout` and `--plugin-memory` from the
    /// command line; 16 MiB of request body and 256 MiB of response; for a
    /// component, 1024 handles, 64 KiB per header object and 8 outbound
    /// requests in flight, so that what it makes the host hold stays
    /// within 64 MiB (1024 × 64 KiB) beside its memory.
    pub fn defaults(timeout: Duration, memory_mib: u64) -> Limits {
        Limits {
            timeout,
            memory: memory_mib << 20,
            request_body: 16 << 20,
            response: 256 << 20,
            handles: 1024,
            field_bytes: 64 << 10,
            outbound_requests: 8,
            reuse: None,
        }
    }

    /// What a component instance may use, on the host side included.
    pub fn host_caps(&self) -> store::HostCaps {
        store::HostCaps {
            memory: self.memory,
            handles: self.handles,
            field_bytes: self.field_bytes,
            outbound: self.outbound_requests,
        }
    }

    /// A plugin's limits: these, with its sidecar's overrides and reuse.
    pub fn for_plugin(self, manifest: &Manifest) -> Limits {
        Limits {
            reuse: manifest.reuse,
            ..self.with(&manifest.limits)
        }
    }

    /// These limits, with a sidecar's overrides.
    pub fn with(self, overrides: &manifest::LimitOverrides) -> Limits {
        Limits {
            timeout: overrides
                .timeout_secs
                .map_or(self.timeout, Duration::from_secs),
            memory: overrides
                .memory_mib
                .map_or(self.memory, |m| m << 20)
                .min(MAX_MEMORY),
            request_body: overrides
                .request_body_kib
                .map_or(self.request_body, |k| k << 10),
            response: overrides.response_kib.map_or(self.response, |k| k << 10),
            handles: overrides
                .handles
                .map_or(self.handles, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            field_bytes: overrides.header_kib.map_or(self.field_bytes, |k| {
                usize::try_from(k << 10).unwrap_or(usize::MAX)
            }),
            outbound_requests: overrides
                .outbound_requests
                .map_or(self.outbound_requests, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            reuse: self.reuse,
        }
    }
}

/// What a plugin is granted beyond the request.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Directories.
    pub dirs: Vec<DirGrant>,
}
