//! Bind, banner, accept loop, connection cap, graceful shutdown.
//!
//! The listener binds before anything is served, and the banner reports the
//! address really bound (so `0` shows the port the system picked). The
//! accept loop takes a permit per connection from a semaphore sized by
//! `--max-connections`: at the cap it stops accepting, and clients wait in
//! the kernel's backlog rather than exhausting file descriptors.
//!
//! Plugins compile before the banner if that takes at most a second; a
//! larger one compiles while the server answers (see `plugin::registry`).
//!
//! SIGINT and SIGTERM stop the accept loop, tell every connection to finish
//! the request it is serving and close, and wait for them up to the grace
//! period; then the process exits 0.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};

use crate::access_log::AccessLog;
use crate::cgi::scripts::CgiScripts;
use crate::cgi::spawner::Spawner;
use crate::cgi::wasm::WasmScripts;
use crate::config::{BindTarget, Config};
use crate::front::Front;
use crate::fs_root::Root;
use crate::plugin::engine::Runtime;
use crate::plugin::registry::Plugins;
use crate::plugin::watch as hot_reload;
use crate::request::Ends;
use crate::service::Service;
use crate::tls::{Tls, reload};

/// How long startup waits for plugins to compile before it serves; those
/// still compiling then are followed in the background.
const STARTUP_COMPILE_WAIT: Duration = Duration::from_secs(1);

/// Binds the listening socket (blocking; call before starting to serve).
pub fn bind(target: &BindTarget) -> anyhow::Result<std::net::TcpListener> {
    match *target {
        BindTarget::Address(addr) => bind_one(addr),
        BindTarget::AllInterfaces(port) => {
            bind_one(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)).or_else(|v6_error| {
                bind_one(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)).map_err(|v4_error| {
                    if port != 0 && is_in_use(&v6_error) {
                        v6_error
                    } else {
                        v4_error
                    }
                })
            })
        }
    }
}

fn is_in_use(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
}

fn bind_one(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let fail = || format!("cannot listen on {}", url_host_port(addr));
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .with_context(fail)?;
    // As Python's HTTPServer: a restarted server can bind at once.
    socket.set_reuse_address(true).with_context(fail)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // Dual-stack, as Python's DualStackServer; ignored where unsupported.
        let _ = socket.set_only_v6(false);
    }
    socket.bind(&addr.into()).with_context(fail)?;
    socket.listen(1024).with_context(fail)?;
    socket.set_nonblocking(true).with_context(fail)?;
    Ok(socket.into())
}

fn url_host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Python's startup line for the bound address:
/// `Serving HTTP on 0.0.0.0 port 8000 (http://0.0.0.0:8000/) ...`, or
/// with `tls`, as Python 3.14's: `Serving HTTPS on … (https://…/) ...`.
pub fn banner(addr: SocketAddr, tls: bool) -> String {
    let (protocol, scheme) = if tls {
        ("HTTPS", "https")
    } else {
        ("HTTP", "http")
    };
    format!(
        "Serving {protocol} on {} port {} ({scheme}://{}/) ...",
        addr.ip(),
        addr.port(),
        url_host_port(addr)
    )
}

/// Raises the soft limit on open files to the hard limit, so that
/// `--max-connections` is not cut short by a default of 1024 descriptors.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// Serves until SIGINT or SIGTERM.
pub async fn run(config: Config, listener: std::net::TcpListener) -> anyhow::Result<()> {
    raise_open_file_limit();
    let root = Root::open_dir(&config.directory, config.follow_symlinks)
        .with_context(|| format!("cannot open {}", config.directory.display()))?;
    // One engine for plugins and `.wasm` CGI scripts.
    let runtime = if config.plugins.is_some() || config.cgi.is_some() {
        Some(Arc::new(
            Runtime::new(config.compile_cache.as_ref())?.with_budgets(config.budgets.clone()),
        ))
    } else {
        None
    };
    let plugins = match (&config.plugins, &runtime) {
        (Some(dir), Some(runtime)) => {
            let (plugins, problems) = Plugins::load(
                dir.clone(),
                Arc::clone(runtime),
                config.plugin_limits,
                STARTUP_COMPILE_WAIT,
            )
            .await;
            for problem in problems {
                crate::log::line(format!("wasmhttpd: {problem}"));
            }
            Some(Arc::new(plugins))
        }
        _ => None,
    };
    let cgi = match (&config.cgi, &runtime) {
        (Some(settings), Some(runtime)) => Some(CgiScripts::new(
            settings.clone(),
            WasmScripts::new(Arc::clone(runtime), config.plugin_limits),
            Spawner::start().context("cannot start the CGI spawner")?,
            Arc::clone(&config.budgets.spool),
        )),
        _ => None,
    };
    let cgi_banner = cgi.as_ref().map(CgiScripts::describe);
    let service = Arc::new(Service::new(
        root,
        plugins.clone(),
        cgi,
        AccessLog::new(config.quiet),
    ));
    let tls = match &config.tls {
        Some(settings) => Some(Arc::new(Tls::new(settings.clone())?)),
        None => None,
    };
    let front = Arc::new(Front {
        handler: service,
        http1: Arc::new(config.connection.clone()),
        http2: Arc::new(config.http2.clone()),
        tls: tls.as_ref().map(|tls| tls.config()),
    });
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let listener = TcpListener::from_std(listener).context("cannot register the listener")?;
    let (stop, stopping) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(config.max_connections as usize));

    println!("{}", banner(listener.local_addr()?, tls.is_some()));
    let _tls_watch = match &tls {
        Some(tls) => {
            println!("{}", tls.describe());
            reload::start(tls).unwrap_or_else(|error| {
                crate::log::line(format!(
                    "wasmhttpd: cannot watch the TLS files ({error}); they will not reload"
                ));
                None
            })
        }
        None => None,
    };
    if let Some(line) = cgi_banner {
        println!("{line}");
    }
    let _watch = match &plugins {
        Some(plugins) => {
            for plugin in plugins.table().plugins() {
                println!("{}", plugin.describe());
            }
            if let Some((dir, reused, compiled)) = plugins.runtime().cache_stats() {
                println!(
                    "Compiled code cache: {} ({reused} reused, {compiled} compiled)",
                    dir.display()
                );
            }
            plugins.follow_compiles();
            match hot_reload::start(Arc::clone(plugins)) {
                Ok(watch) => Some(watch),
                Err(error) => {
                    crate::log::line(format!(
                        "wasmhttpd: cannot watch {} ({error}); plugins will not hot-reload",
                        plugins.dir().display()
                    ));
                    None
                }
            }
        }
        None => None,
    };

    let interrupted = loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.context("connection limit closed")?,
            _ = interrupt.recv() => break true,
            _ = terminate.recv() => break false,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = interrupt.recv() => break true,
            _ = terminate.recv() => break false,
        };
        match accepted {
            Ok((stream, peer)) => {
                let front = Arc::clone(&front);
                let stopping = stopping.clone();
                tokio::spawn(async move {
                    if let Ok(local) = stream.local_addr() {
                        let secure = front.tls.is_some();
                        front
                            .serve(
                                stream,
                                Ends {
                                    peer,
                                    local,
                                    secure,
                                },
                                stopping,
                            )
                            .await;
                    }
                    drop(permit);
                });
            }
            Err(error) => {
                // Out of descriptors or memory: say so, back off, go on.
                crate::log::line(format!("wasmhttpd: accept failed: {error}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    drop(listener);
    if interrupted {
        println!("\nKeyboard interrupt received, exiting.");
    }
    let _ = stop.send(true);
    let all = config.max_connections;
    if tokio::time::timeout(config.shutdown_grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        crate::log::line(
            "wasmhttpd: requests still running after the grace period; exiting anyway",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_reads_like_pythons() {
        assert_eq!(
            banner("0.0.0.0:8000".parse().expect("addr"), false),
            "Serving HTTP on 0.0.0.0 port 8000 (http://0.0.0.0:8000/) ..."
        );
        assert_eq!(
            banner("[::]:8000".parse().expect("addr"), false),
            "Serving HTTP on :: port 8000 (http://[::]:8000/) ..."
        );
        assert_eq!(
            banner("127.0.0.1:8443".parse().expect("addr"), true),
            "Serving HTTPS on 127.0.0.1 port 8443 (https://127.0.0.1:8443/) ..."
        );
    }

    #[test]
    fn port_zero_picks_a_port_and_a_taken_port_is_an_error() {
        let target = BindTarget::Address("127.0.0.1:0".parse().expect("addr"));
        let listener = bind(&target).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert_ne!(port, 0);
        let taken = BindTarget::Address(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
        let err = bind(&taken).expect_err("in use");
        assert!(format!("{err:#}").contains("in use"), "{err:#}");
    }
}
