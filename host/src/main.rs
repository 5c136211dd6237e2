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
use wasmhttpd::config::{Config, user_cache_dir};
use wasmhttpd::plugin::check::CheckArgs;
use wasmhttpd::plugin::engine::Runtime;
use wasmhttpd::pybuild::{self, BuildArgs};
use wasmhttpd::server;

/// Every request allocates (buffers, the CGI environment, a WebAssembly
/// store); mimalloc's thread-local free lists make that cheaper than glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(daemon::ARG)) {
        return daemon::run();
    }
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new("build")) {
        return build();
    }
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new("check")) {
        return check();
    }
    let args = match parse::<Args>(std::env::args_os(), "wasmhttpd") {
        Ok(args) => args,
        Err(code) => return code,
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

/// Parses `argv` (named `name` in messages); `--help` and `--version`
/// print and exit 0, a bad flag prints one line and exits 2 (as argparse).
fn parse<A: Parser>(
    argv: impl IntoIterator<Item = std::ffi::OsString>,
    name: &str,
) -> Result<A, ExitCode> {
    A::try_parse_from(argv).map_err(|error| {
        if !error.use_stderr() {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        eprintln!("{name}: {} (see {name} --help)", one_line(&error));
        ExitCode::from(2)
    })
}

/// clap's error on one line: its first, and the one that first line
/// introduces (`required arguments were not provided:` and which).
fn one_line(error: &clap::Error) -> String {
    let rendered = error.to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match lines.next() {
        Some(next) if first.ends_with(':') => format!("{first} {next}"),
        _ => first.to_string(),
    }
}

/// `wasmhttpd build HANDLER.py`: a Python handler becomes a plugin.
fn build() -> ExitCode {
    let argv = std::iter::once("wasmhttpd build".into()).chain(std::env::args_os().skip(2));
    let args = match parse::<BuildArgs>(argv, "wasmhttpd build") {
        Ok(args) => args,
        Err(code) => return code,
    };
    let Some(cache) = user_cache_dir().map(|dir| dir.join("build")) else {
        eprintln!(
            "wasmhttpd build: no cache directory for the toolchain (set HOME or XDG_CACHE_HOME)"
        );
        return ExitCode::FAILURE;
    };
    match pybuild::run(&args, &cache) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wasmhttpd build: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `wasmhttpd check FILE.wasm`: whether a plugin would load, and what it
/// would be; exit 0 if it would, 1 if not.
fn check() -> ExitCode {
    let argv = std::iter::once("wasmhttpd check".into()).chain(std::env::args_os().skip(2));
    let args = match parse::<CheckArgs>(argv, "wasmhttpd check") {
        Ok(args) => args,
        Err(code) => return code,
    };
    let runtime = match Runtime::new(None) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wasmhttpd check: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let report = wasmhttpd::plugin::check::check(&runtime, &args);
    print!("{}", report.text);
    if report.loads {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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
