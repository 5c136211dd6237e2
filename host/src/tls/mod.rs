//! HTTPS: rustls sessions over the accepted sockets, with the certificate
//! from files (reloaded when they change) or made at startup.
//!
//! - [`keys`]: reading and checking a certificate chain and its key.
//! - [`self_signed`]: the certificate `--tls-self-signed` makes.
//! - [`reload`]: watching the files and swapping the certificate.
//!
//! ALPN offers `h2`, then `http/1.1`; a client that offers neither gets
//! HTTP/1.1. The certificate is looked up per handshake, so a reload
//! takes effect for the next connection and never disturbs one in
//! progress.

pub mod keys;
pub mod reload;
pub mod self_signed;

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use anyhow::Context;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use keys::{KeyFiles, Loaded};

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settings {
    /// PEM files (`--tls-cert`, `--tls-key`, `--tls-password-file`).
    Files(KeyFiles),
    /// Made at startup for these names (`--tls-self-signed`).
    SelfSigned(Vec<String>),
}

/// The ALPN protocol names offered, in order of preference.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The server's TLS configuration and its current certificate.
#[derive(Debug)]
pub struct Tls {
    settings: Settings,
    current: Arc<Current>,
    config: Arc<ServerConfig>,
}

/// The certificate handshakes use now.
#[derive(Debug)]
struct Current(RwLock<Loaded>);

impl Current {
    fn get(&self) -> Loaded {
        self.0
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    fn set(&self, loaded: Loaded) {
        *self.0.write().unwrap_or_else(|poison| poison.into_inner()) = loaded;
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get().key)
    }
}

impl Tls {
    /// Loads or makes the certificate; any problem with the files is an
    /// error naming the file.
    pub fn new(settings: Settings) -> anyhow::Result<Tls> {
        let loaded = match &settings {
            Settings::Files(files) => keys::load(files)?,
            Settings::SelfSigned(names) => self_signed::make(names)?,
        };
        let current = Arc::new(Current(RwLock::new(loaded)));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("cannot configure TLS")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Tls {
            settings,
            current,
            config: Arc::new(config),
        })
    }

    /// The rustls configuration to accept sessions with.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The startup line about the certificate.
    pub fn describe(&self) -> String {
        let loaded = self.current.get();
        let fingerprint = loaded
            .key
            .end_entity_cert()
            .map(keys::fingerprint)
            .unwrap_or_default();
        let until = httpdate::fmt_http_date(loaded.not_after);
        match &self.settings {
            Settings::Files(files) => format!(
                "TLS certificate: {} (valid until {until}; SHA-256 {fingerprint})",
                files.cert.display()
            ),
            Settings::SelfSigned(names) => format!(
                "TLS certificate: self-signed for {} (valid until {until}; SHA-256 {fingerprint})",
                names.join(", ")
            ),
        }
    }

    /// When the current certificate stops being valid.
    pub fn not_after(&self) -> SystemTime {
        self.current.get().not_after
    }
}
