//! Validated configuration: `Config::try_from(Args)`.
//!
//! Everything that can be wrong with the command line is found here, before
//! the server binds: a directory that does not exist or is not a directory,
//! a bind address that does not resolve. Paths are made canonical once.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use http::Version;

use crate::budget::Budgets;
use crate::cgi::dirs::{CgiDirs, DEFAULT_DIRS};
use crate::cgi::scripts::CgiSettings;
use crate::cli::Args;
use crate::http1::conn::Settings;
use crate::http1::parse::Limits;
use crate::http2;
use crate::pace::MinRate;
use crate::plugin;
use crate::plugin::engine::CompileCache;
use crate::tls;

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindTarget {
    /// All interfaces: IPv6 and IPv4 on one socket where the system allows,
    /// IPv4 only where it has no IPv6.
    AllInterfaces(u16),
    /// One address.
    Address(SocketAddr),
}

/// The server's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub bind: BindTarget,
    /// The served directory, canonical.
    pub directory: PathBuf,
    /// Whether symlinks may lead out of the directory.
    pub follow_symlinks: bool,
    /// Whether the access log is off.
    pub quiet: bool,
    /// Most connections open at once.
    pub max_connections: u32,
    /// How long requests in flight may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Per-connection limits and timeouts.
    pub connection: Settings,
    /// HTTP/2's limits.
    pub http2: http2::Settings,
    /// HTTPS, if it is on.
    pub tls: Option<tls::Settings>,
    /// The plugins directory, canonical, if plugins are on.
    pub plugins: Option<PathBuf>,
    /// The limits plugins get unless their sidecar says otherwise.
    pub plugin_limits: plugin::Limits,
    /// Classic CGI, if it is on.
    pub cgi: Option<CgiSettings>,
    /// Where compiled WebAssembly is cached, if anywhere.
    pub compile_cache: Option<CompileCache>,
    /// What all requests together may hold.
    pub budgets: Budgets,
}

impl TryFrom<Args> for Config {
    type Error = anyhow::Error;

    fn try_from(args: Args) -> anyhow::Result<Config> {
        let requested = match &args.directory {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().context("cannot read the current directory")?,
        };
        let directory = requested
            .canonicalize()
            .with_context(|| format!("cannot serve {}", requested.display()))?;
        if !directory.is_dir() {
            bail!("cannot serve {}: not a directory", requested.display());
        }
        let bind = match &args.bind {
            None => BindTarget::AllInterfaces(args.port),
            Some(host) => BindTarget::Address(resolve(host, args.port)?),
        };
        let plugins = match &args.plugins {
            Some(dir) => {
                let canonical = dir
                    .canonicalize()
                    .with_context(|| format!("cannot use plugins directory {}", dir.display()))?;
                if !canonical.is_dir() {
                    bail!(
                        "cannot use plugins directory {}: not a directory",
                        dir.display()
                    );
                }
                Some(canonical)
            }
            None => PathBuf::from("plugins")
                .canonicalize()
                .ok()
                .filter(|p| p.is_dir()),
        };
        let cgi = if args.cgi || !args.cgi_dirs.is_empty() {
            let dirs = if args.cgi_dirs.is_empty() {
                CgiDirs::new(&DEFAULT_DIRS)
            } else {
                CgiDirs::new(&args.cgi_dirs)
            }
            .map_err(|e| anyhow::anyhow!("--cgi-dir: {e}"))?;
            Some(CgiSettings {
                dirs,
                timeout: Duration::from_secs(args.cgi_timeout),
                max_body: args.cgi_max_body << 20,
            })
        } else {
            None
        };
        let compile_cache = if args.no_cache {
            None
        } else if let Some(dir) = &args.cache_dir {
            let dir = std::path::absolute(dir)
                .with_context(|| format!("cannot use cache directory {}", dir.display()))?;
            Some(CompileCache {
                dir,
                explicit: true,
            })
        } else {
            user_cache_dir().map(|dir| CompileCache {
                dir: dir.join("compiled"),
                explicit: false,
            })
        };
        let protocol = if args.protocol == "HTTP/1.0" {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let limits = Limits::default();
        let min_rate = MinRate {
            bytes_per_sec: args.min_rate,
            window: Duration::from_secs(args.min_rate_window),
        };
        let http2 = http2::Settings {
            max_concurrent_streams: args.max_streams,
            max_header_list_size: limits.max_header_bytes as u32,
            stream_window: 1 << 20,
            connection_window: 2 << 20,
            io_timeout: Duration::from_secs(args.io_timeout),
            min_rate,
            idle_timeout: Duration::from_secs(args.keep_alive_timeout),
        };
        let tls = if let Some(cert) = &args.tls_cert {
            Some(tls::Settings::Files(tls::keys::KeyFiles {
                cert: std::path::absolute(cert)
                    .with_context(|| format!("cannot use {}", cert.display()))?,
                key: args
                    .tls_key
                    .as_deref()
                    .map(std::path::absolute)
                    .transpose()?,
                password: args
                    .tls_password_file
                    .as_deref()
                    .map(std::path::absolute)
                    .transpose()?,
            }))
        } else if args.tls_self_signed {
            let ip = match &bind {
                BindTarget::Address(addr) => Some(addr.ip()),
                BindTarget::AllInterfaces(_) => None,
            };
            Some(tls::Settings::SelfSigned(tls::self_signed::names(ip)))
        } else {
            None
        };
        Ok(Config {
            bind,
            directory,
            follow_symlinks: args.follow_symlinks,
            quiet: args.quiet,
            max_connections: args.max_connections,
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            connection: Settings {
                limits,
                header_timeout: Duration::from_secs(args.header_timeout),
                keep_alive_timeout: Duration::from_secs(args.keep_alive_timeout),
                io_timeout: Duration::from_secs(args.io_timeout),
                min_rate,
                protocol,
            },
            http2,
            tls,
            plugins,
            plugin_limits: args.plugin_limits.limits(),
            cgi,
            compile_cache,
            budgets: Budgets::new(
                args.guest_memory_budget,
                args.body_budget,
                args.spool_budget,
            ),
        })
    }
}

/// `$XDG_CACHE_HOME/wasmhttpd`, or `$HOME/.cache/wasmhttpd`: compiled
/// plugins go in `compiled/` (wasmtime's cache, which prunes what it does
/// not know in its directory), `wasmhttpd build`'s toolchain in `build/`.
pub fn user_cache_dir() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("wasmhttpd"))
}

/// An IP address (IPv6 with or without brackets) or a host name, resolved
/// to its first address as Python's `getaddrinfo` picks it.
fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (bare, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve bind address {host:?}"))?
        .next()
        .with_context(|| format!("bind address {host:?} has no addresses"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(argv: &[&str]) -> anyhow::Result<Config> {
        Config::try_from(Args::try_parse_from(argv)?)
    }

    #[test]
    fn defaults_are_pythons() {
        let c = config(&["wasmhttpd"]).expect("config");
        assert_eq!(c.bind, BindTarget::AllInterfaces(8000));
        assert_eq!(
            c.directory,
            std::env::current_dir()
                .expect("cwd")
                .canonicalize()
                .expect("c")
        );
        assert_eq!(c.connection.protocol, Version::HTTP_11);
    }

    #[test]
    fn bind_addresses() {
        let c = config(&["wasmhttpd", "0", "-b", "127.0.0.1"]).expect("config");
        assert_eq!(
            c.bind,
            BindTarget::Address("127.0.0.1:0".parse().expect("addr"))
        );
        let c = config(&["wasmhttpd", "9", "--bind", "[::1]"]).expect("config");
        assert_eq!(
            c.bind,
            BindTarget::Address("[::1]:9".parse().expect("addr"))
        );
        let c = config(&["wasmhttpd", "9", "-b", "localhost"]).expect("config");
        assert!(matches!(c.bind, BindTarget::Address(a) if a.ip().is_loopback()));
    }

    #[test]
    fn bad_directories_are_reported() {
        let err = config(&["wasmhttpd", "-d", "/no/such/dir"]).expect_err("missing");
        assert!(format!("{err:#}").contains("/no/such/dir"), "{err:#}");
        let file = tempfile::NamedTempFile::new().expect("file");
        let path = file.path().to_str().expect("utf-8");
        let err = config(&["wasmhttpd", "-d", path]).expect_err("file");
        assert!(format!("{err:#}").contains("not a directory"), "{err:#}");
    }

    #[test]
    fn plugins_directory_must_exist_when_named() {
        let err = config(&["wasmhttpd", "--plugins", "/no/such/plugins"]).expect_err("missing");
        assert!(format!("{err:#}").contains("/no/such/plugins"), "{err:#}");
        let c = config(&[
            "wasmhttpd",
            "--plugin-timeout",
            "5",
            "--plugin-memory",
            "64",
        ])
        .expect("config");
        assert_eq!(c.plugin_limits.timeout, Duration::from_secs(5));
        assert_eq!(c.plugin_limits.memory, 64 << 20);
    }

    #[test]
    fn cgi_directories() {
        assert!(config(&["wasmhttpd"]).expect("config").cgi.is_none());
        let on = config(&["wasmhttpd", "--cgi"])
            .expect("config")
            .cgi
            .expect("cgi");
        assert_eq!(on.dirs.iter().collect::<Vec<_>>(), ["/cgi-bin", "/htbin"]);
        assert_eq!(on.timeout, Duration::from_secs(60));
        let mine = config(&["wasmhttpd", "--cgi-dir", "/app/", "--cgi-dir", "/x/bin"])
            .expect("config")
            .cgi
            .expect("cgi");
        assert_eq!(mine.dirs.iter().collect::<Vec<_>>(), ["/app", "/x/bin"]);
        let err = config(&["wasmhttpd", "--cgi-dir", "cgi-bin"]).expect_err("relative");
        assert!(format!("{err:#}").contains("must start with /"), "{err:#}");
    }

    #[test]
    fn compile_cache_directory() {
        let c = config(&["wasmhttpd", "--no-cache"]).expect("config");
        assert_eq!(c.compile_cache, None);
        let c = config(&["wasmhttpd", "--cache-dir", "rel/dir"]).expect("config");
        let cache = c.compile_cache.expect("cache");
        assert!(cache.explicit && cache.dir.is_absolute() && cache.dir.ends_with("rel/dir"));
        assert!(Args::try_parse_from(["wasmhttpd", "--no-cache", "--cache-dir", "/x"]).is_err());
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(Args::try_parse_from(["wasmhttpd", "-p", "HTTP/2"]).is_err());
        assert!(Args::try_parse_from(["wasmhttpd", "70000"]).is_err());
        assert!(Args::try_parse_from(["wasmhttpd", "--header-timeout", "0"]).is_err());
    }
}
