//! The `wasmhttpd` binary: arguments → configuration → bind → serve.
//! (Run as `wasmhttpd __cgi-spawner` by the server itself, it is the CGI
//! spawner instead: see `cgi::spawner`.)
//!
//! Only here does an error become an exit status: a bad flag exits 2 with
//! one line on stderr (as argparse does), any other startup error exits 1
//! with one line.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use wasmhttpd::cgi::spawner::daemon;
use wasmhttpd::cli::Args;
use wasmhttpd::config::Config;
use wasmhttpd::server;

/// Every request allocates (buffers, the CGI environment, a WebAssembly
/// store); mimalloc's thread-local free lists make that cheaper than glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(daemon::ARG)) {
        return daemon::run();
    }
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let rendered = error.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let message = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("wasmhttpd: {message} (see wasmhttpd --help)");
            return ExitCode::from(2);
        }
    };
    let result = run(args);
    // What the log still holds goes out before the process does.
    wasmhttpd::log::flush(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wasmhttpd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::try_from(args)?;
    let listener = server::bind(&config.bind)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(server::run(config, listener))?;
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(())
}
