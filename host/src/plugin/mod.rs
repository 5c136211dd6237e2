//! WebAssembly plugins: `.wasm` files in the plugins directory that answer
//! requests, sandboxed.
//!
//! - [`manifest`]: the optional sidecar `NAME.toml`.

pub mod manifest;
