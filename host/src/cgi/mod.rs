//! The CGI core, shared by every backend that speaks CGI/1.1 (RFC 3875):
//! CGI-over-WASI plugins now, classic CGI processes next.
//!
//! - [`env`]: the request as meta-variables.
//! - [`response`]: the script's output head, parsed strictly.
//! - [`output`]: the script's output, held until it is known to be good,
//!   then streamed.

pub mod env;
pub mod output;
pub mod response;
