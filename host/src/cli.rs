//! Command-line arguments, as parsed: a superset of `python -m http.server`.
//!
//! Parsing only; `config.rs` validates these into a [`crate::config::Config`].

use std::path::PathBuf;

use clap::Parser;

use crate::budget;

/// Serve a directory over HTTP or HTTPS, like `python -m http.server`.
#[derive(Debug, Parser)]
#[command(
    name = "wasmhttpd",
    version,
    about,
    max_term_width = 100,
    after_help = "Also: wasmhttpd build HANDLER.py [-o OUT.wasm] turns a Python http.server handler into a plugin (see wasmhttpd build --help); wasmhttpd check FILE.wasm tells whether a .wasm would load as a plugin, and what it would be (see wasmhttpd check --help)."
)]
pub struct Args {
    /// Port to listen on; 0 picks a free port.
    #[arg(default_value_t = 8000, value_name = "PORT")]
    pub port: u16,

    /// Address to bind: an IP address or a host name
    /// [default: all interfaces, IPv6 and IPv4]
    #[arg(short, long, value_name = "ADDRESS")]
    pub bind: Option<String>,

    /// Directory to serve [default: the current directory]
    #[arg(short, long, value_name = "DIRECTORY")]
    pub directory: Option<PathBuf>,

    /// HTTP version of responses: HTTP/1.1 keeps connections alive,
    /// HTTP/1.0 closes each one after its response
    #[arg(short, long, value_name = "VERSION", default_value = "HTTP/1.1",
          value_parser = ["HTTP/1.0", "HTTP/1.1"])]
    pub protocol: String,

    /// Do not write the access log
    #[arg(short, long)]
    pub quiet: bool,

    /// Serve files through symlinks that lead out of the directory
    /// (by default such a symlink answers 404)
    #[arg(long)]
    pub follow_symlinks: bool,

    /// Most connections open at once; further clients wait to be accepted
    #[arg(long, default_value_t = 1024, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Seconds a client has to send a complete request head
    #[arg(long, default_value_t = 30, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub header_timeout: u64,

    /// Seconds an idle kept-alive connection waits for its next request
    #[arg(long, default_value_t = 60, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub keep_alive_timeout: u64,

    /// Seconds a read of a request body or a write of a response may stall
    #[arg(long, default_value_t = 60, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub io_timeout: u64,

    /// Slowest a request body or a response may move, in bytes per second,
    /// measured over --min-rate-window (as Apache's mod_reqtimeout
    /// MinRate); a slower client is cut off (408 for a request body).
    /// 0 turns the floor off
    #[arg(long, default_value_t = 500, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    pub min_rate: u64,

    /// Seconds of waiting on the client in which each --min-rate worth of
    /// a window must move
    #[arg(long, default_value_t = 20, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub min_rate_window: u64,

    /// Directory of WebAssembly plugins: NAME.wasm answers /NAME and below
    /// [default: ./plugins when it exists]
    #[arg(long, value_name = "DIR")]
    pub plugins: Option<PathBuf>,

    #[command(flatten)]
    pub plugin_limits: crate::plugin::limits::DefaultLimits,

    /// Directory where compiled plugins are kept across restarts
    /// [default: $XDG_CACHE_HOME/wasmhttpd/compiled, or ~/.cache/wasmhttpd/compiled]
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,

    /// Compile plugins at every start; keep nothing on disk
    #[arg(long)]
    pub no_cache: bool,

    /// Run CGI scripts in /cgi-bin and /htbin, as Python's --cgi does
    #[arg(long)]
    pub cgi: bool,

    /// A CGI directory (repeatable; replaces /cgi-bin and /htbin; implies --cgi)
    #[arg(long = "cgi-dir", value_name = "URLPATH")]
    pub cgi_dirs: Vec<String>,

    /// Seconds a CGI script may run before it is killed, with its process group
    #[arg(long, default_value_t = 60, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub cgi_timeout: u64,

    /// MiB of request body a CGI script may be sent (kept in a temporary file)
    #[arg(long, default_value_t = 1024, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(0..=1 << 20))]
    pub cgi_max_body: u64,

    /// MiB of guest memory all plugin instances together may reserve (each
    /// reserves its whole memory cap while it runs); past it, 503. By
    /// default half of this machine's memory
    #[arg(long, value_name = "MIB", default_value_t = budget::default_guest_memory_mib(),
          value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub guest_memory_budget: u64,

    /// MiB of request bodies (and held responses) all requests together may
    /// buffer in memory; past it, 503. By default an eighth of this
    /// machine's memory
    #[arg(long, value_name = "MIB", default_value_t = budget::default_bodies_mib(),
          value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub body_budget: u64,

    /// MiB of request bodies all CGI scripts together may have spooled to
    /// $TMPDIR; past it, 503. By default half the space free there at start
    #[arg(long, value_name = "MIB", default_value_t = budget::default_spool_mib(),
          value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub spool_budget: u64,

    /// Serve HTTPS with this certificate (PEM; the chain may follow it, and
    /// the key too when --tls-key is not given)
    #[arg(long, value_name = "FILE", conflicts_with = "tls_self_signed")]
    pub tls_cert: Option<PathBuf>,

    /// The certificate's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// A file whose first line is the private key's password
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_password_file: Option<PathBuf>,

    /// Serve HTTPS with a certificate made at startup for localhost and the
    /// bind address (for local testing; its SHA-256 fingerprint is printed)
    #[arg(long)]
    pub tls_self_signed: bool,

    /// Most HTTP/2 streams a client may have open on one connection
    #[arg(long, default_value_t = 128, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_streams: u32,

    /// Seconds requests in flight may take to finish after SIGINT or SIGTERM
    #[arg(long, default_value_t = 10, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub shutdown_grace: u64,
}
