//! wasmhttpd: `python -m http.server`, rebuilt in Rust.
//!
//! A request's way through the code, top to bottom:
//! [`server`] accepts → [`http1`] parses → [`service`] routes ([`route`]) →
//! a backend: a [`plugin`], a CGI script ([`cgi`]) or [`static_files`] →
//! [`response`] → [`http1::write`] frames it → [`access_log`].
//!
//! The static backend leans on [`safe_path`] (URL → contained path),
//! [`fs_root`] (opening beneath the root), [`validators`] and [`range`]
//! (conditional and partial requests), [`mime`] and [`listing`]. Plugins
//! and CGI scripts share the CGI core in [`cgi`]. Errors on the request
//! path are [`error::HttpError`]s, each answered with Python's error page.

pub mod access_log;
pub mod budget;
pub mod cgi;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod fs_root;
pub mod http1;
pub mod listing;
pub mod log;
pub mod mime;
pub mod plugin;
pub mod pybuild;
pub mod range;
pub mod request;
pub mod response;
pub mod route;
pub mod safe_path;
pub mod server;
pub mod service;
pub mod static_files;
#[cfg(test)]
mod testing;
pub mod validators;
