//! The guest SDK for wasmhttpd plugins; its README follows as the crate documentation.
//!
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod dispatch;
pub mod form;
mod request;

pub use dispatch::{Handler, run, serve};
pub use request::{Headers, Request};
pub use wasmhttpd_guest_macros::plugin;
