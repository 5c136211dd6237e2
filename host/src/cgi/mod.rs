//! CGI/1.1 (RFC 3875): the core every CGI backend shares, and the classic
//! CGI backend.
//!
//! The core, used by CGI-over-WASI plugins and by classic CGI alike:
//! - [`env`]: the request as meta-variables (and a command line).
//! - [`response`]: the script's output head, parsed strictly.
//! - [`output`]: the script's output, held until it is known to be good,
//!   then streamed; or passed through whole (`nph-`).
//! - [`stderr`]: the script's stderr → the server's log.
//!
//! Classic CGI (`--cgi`), in the order a request meets it:
//! - [`dirs`]: which URL paths are CGI directories;
//! - [`locate`]: the script a path names, and its `PATH_INFO`;
//! - [`spool`]: the request body, with its exact length, as stdin;
//! - [`process`]: a script run as a process, started by the [`spawner`]
//!   as the user [`identity`] names;
//! - [`wasm`]: a `.wasm` script run in the plugin sandbox;
//! - [`scripts`]: the backend that ties them together.

pub mod dirs;
pub mod env;
pub mod identity;
pub mod locate;
pub mod output;
pub mod process;
pub mod response;
pub mod scripts;
pub mod spawner;
pub mod spool;
pub mod stderr;
pub mod wasm;
