//! The guest SDK for wasmhttpd plugins; its README follows as the crate documentation.
//!
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod dispatch;
pub mod form;
mod request;
#[cfg(all(target_arch = "wasm32", target_env = "p2"))]
pub mod wasi_http;

/// What [`plugin`] expands to on `wasm32-wasip2`; not for direct use.
#[cfg(all(target_arch = "wasm32", target_env = "p2"))]
#[doc(hidden)]
pub use wasip2 as __wasip2;

pub use dispatch::{Handler, run, serve};
pub use request::{Headers, Request};
pub use wasmhttpd_guest_macros::plugin;
