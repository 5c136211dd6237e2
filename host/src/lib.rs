//! wasmhttpd: `python -m http.server`, rebuilt in Rust.
//!
//! A request's way through the code, top to bottom; each layer uses only
//! the ones below it:
//!
//! 1. **Protocol.** [`server`] binds and accepts; [`front`] tells what a
//!    connection speaks: [`tls`] (rustls) or plain, then [`http1`] (our
//!    own parser and writer) or [`http2`] (hyper). Each turns its wire
//!    into a [`request::Request`] with a [`request_body::RequestBody`]
//!    and writes the [`response::Response`] back, paced by [`pace`].
//! 2. **The seam.** [`handler::Handler`]: request head and streaming
//!    body in, response out, and the access log line. The protocol layers
//!    know nothing else of what answers.
//! 3. **Service.** [`service`] implements it: it routes ([`route`]),
//!    calls the backend, and logs ([`access_log`]).
//! 4. **Backends.** [`static_files`] (with [`safe_path`], [`fs_root`],
//!    [`validators`], [`range`], [`mime`], [`listing`]), CGI scripts
//!    ([`cgi::scripts`]), and [`plugin`]s (wasi:http and CGI-over-WASI).
//! 5. **Shared cores.** The CGI/1.1 core in [`cgi`] (environment, output
//!    parsing, spooling), used by scripts and by CGI-over-WASI plugins;
//!    the WebAssembly engine in [`plugin::engine`], used by plugins and
//!    `.wasm` scripts.
//! 6. **Leaves.** [`error`] (the typed error on the request path, each
//!    answered with Python's error page), [`budget`], [`clock`], [`log`].
//!
//! [`config`] assembles each module's settings, defined where they are
//! used, from [`cli`]; [`pybuild`] is `wasmhttpd build`, beside the server.

pub mod access_log;
pub mod budget;
pub mod cgi;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod front;
pub mod fs_root;
pub mod handler;
pub mod http1;
pub mod http2;
pub mod listing;
pub mod log;
pub mod mime;
pub mod pace;
pub mod plugin;
pub mod pybuild;
pub mod range;
pub mod request;
pub mod request_body;
pub mod response;
pub mod route;
pub mod safe_path;
pub mod server;
pub mod service;
pub mod static_files;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod validators;
