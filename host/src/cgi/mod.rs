//! The CGI core, shared by every backend that speaks CGI/1.1 (RFC 3875):
//! CGI-over-WASI plugins now, classic CGI processes next.
//!
//! - [`env`]: the request as meta-variables.
//! - [`response`]: the script's output head, parsed strictly.

pub mod env;
pub mod response;
