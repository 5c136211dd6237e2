//! A certificate chain and its private key, read from PEM files and
//! checked: readable, a key that decrypts, a key that matches the
//! certificate, a certificate within its validity period.
//!
//! As Python's `ssl.SSLContext.load_cert_chain`: the certificate file may
//! hold the chain after the server's certificate, and the key may be in
//! the certificate file when no key file is given. An encrypted key
//! (PKCS#8, `BEGIN ENCRYPTED PRIVATE KEY`, OpenSSL 3's default) is
//! decrypted with the password file's first line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, bail};
use pkcs8::der::Decode;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// Where the certificate and key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    /// The certificate, then its chain (PEM).
    pub cert: PathBuf,
    /// The private key (PEM), or `None` when it is in `cert`.
    pub key: Option<PathBuf>,
    /// A file whose first line is the key's password.
    pub password: Option<PathBuf>,
}

impl KeyFiles {
    /// The files to watch for changes.
    pub fn paths(&self) -> Vec<&Path> {
        let mut paths = vec![self.cert.as_path()];
        paths.extend(self.key.as_deref());
        paths.extend(self.password.as_deref());
        paths
    }
}

/// A loaded certificate chain with its signing key.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// The end of the certificate's validity period.
    pub not_after: SystemTime,
}

/// Reads and checks `files`.
pub fn load(files: &KeyFiles) -> anyhow::Result<Loaded> {
    let cert_pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow::anyhow!("{}: not a PEM certificate file ({e})", files.cert.display())
        })?;
    let Some(leaf) = chain.first() else {
        bail!("{}: holds no certificate", files.cert.display());
    };
    let not_after = check_validity(leaf, &files.cert, SystemTime::now())?;
    let (key_path, key_pem) = match &files.key {
        Some(path) => (path.as_path(), read(path)?),
        None => (files.cert.as_path(), cert_pem.clone()),
    };
    let password = match &files.password {
        Some(path) => Some(read_password(path)?),
        None => None,
    };
    let key = private_key(&key_pem, key_path, password.as_deref())?;
    let signing = any_supported_type(&key)
        .map_err(|e| anyhow::anyhow!("{}: unusable private key ({e})", key_path.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        anyhow::anyhow!(
            "{}: the private key does not match the certificate in {}",
            key_path.display(),
            files.cert.display()
        )
    })?;
    Ok(Loaded {
        key: Arc::new(certified),
        not_after,
    })
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The password file's first line, as Python reads it (without the line
/// end).
fn read_password(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = read(path)?;
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(line.strip_suffix(b"\r").unwrap_or(line).to_vec())
}

/// The one private key in `pem`, decrypted with `password` if it is
/// encrypted.
fn private_key(
    pem: &[u8],
    path: &Path,
    password: Option<&[u8]>,
) -> anyhow::Result<PrivateKeyDer<'static>> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let Some(password) = password else {
            bail!(
                "{}: the private key is encrypted; give its password with --tls-password-file",
                path.display()
            );
        };
        let begin = text
            .find("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            .unwrap_or(0);
        let end_marker = "-----END ENCRYPTED PRIVATE KEY-----";
        let end = text[begin..]
            .find(end_marker)
            .map(|e| begin + e + end_marker.len())
            .with_context(|| format!("{}: unterminated encrypted key", path.display()))?;
        let malformed = |e: pkcs8::der::Error| {
            anyhow::anyhow!("{}: malformed encrypted key ({e})", path.display())
        };
        let (_, der) = pkcs8::der::pem::decode_vec(text[begin..end].as_bytes())
            .map_err(|e| malformed(e.into()))?;
        let encrypted =
            pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|e| match e {
                pkcs8::Error::Asn1(e) => malformed(e),
                e => anyhow::anyhow!("{}: malformed encrypted key ({e})", path.display()),
            })?;
        let document = encrypted.decrypt(password).map_err(|_| {
            anyhow::anyhow!(
                "{}: cannot decrypt the private key: wrong password?",
                path.display()
            )
        })?;
        // A wrong password can decrypt to garbage that still unpads; the
        // result must be a PKCS#8 structure.
        pkcs8::PrivateKeyInfo::from_der(document.as_bytes()).map_err(|_| {
            anyhow::anyhow!(
                "{}: cannot decrypt the private key: wrong password?",
                path.display()
            )
        })?;
        return Ok(PrivatePkcs8KeyDer::from(document.as_bytes().to_vec()).into());
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        bail!(
            "{}: the private key is encrypted in OpenSSL's legacy format, which is not supported; \
             convert it with: openssl pkcs8 -topk8 -in OLD.key -out NEW.key",
            path.display()
        );
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            anyhow::anyhow!("{}: holds no private key", path.display())
        }
        e => anyhow::anyhow!("{}: not a PEM private key ({e})", path.display()),
    })
}

/// Refuses a certificate outside its validity period at `now`; returns
/// its end.
fn check_validity(
    leaf: &CertificateDer<'_>,
    path: &Path,
    now: SystemTime,
) -> anyhow::Result<SystemTime> {
    let cert = x509_cert::Certificate::from_der(leaf)
        .map_err(|e| anyhow::anyhow!("{}: malformed certificate ({e})", path.display()))?;
    let validity = &cert.tbs_certificate.validity;
    let not_before = validity.not_before.to_system_time();
    let not_after = validity.not_after.to_system_time();
    if now > not_after {
        bail!(
            "{}: the certificate expired on {}",
            path.display(),
            httpdate::fmt_http_date(not_after)
        );
    }
    if now < not_before {
        bail!(
            "{}: the certificate is not valid before {}",
            path.display(),
            httpdate::fmt_http_date(not_before)
        );
    }
    Ok(not_after)
}

/// The SHA-256 fingerprint of a certificate, as `openssl x509
/// -fingerprint -sha256` shows it (`AB:CD:…`).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A certificate for localhost valid from `from` to `to`, and its key,
    /// both PEM.
    fn made(from: SystemTime, to: SystemTime) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.not_before = from.into();
        params.not_after = to.into();
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    fn files(dir: &Path, cert: &str, key: Option<&str>) -> KeyFiles {
        std::fs::write(dir.join("cert.pem"), cert).expect("cert");
        if let Some(key) = key {
            std::fs::write(dir.join("key.pem"), key).expect("key");
        }
        KeyFiles {
            cert: dir.join("cert.pem"),
            key: key.map(|_| dir.join("key.pem")),
            password: None,
        }
    }

    fn day() -> Duration {
        Duration::from_secs(86_400)
    }

    #[test]
    fn a_good_pair_loads_and_the_key_may_share_the_certificate_file() {
        let dir = tempfile::tempdir().expect("dir");
        let now = SystemTime::now();
        let (cert, key) = made(now - day(), now + day());
        let loaded = load(&files(dir.path(), &cert, Some(&key))).expect("loads");
        assert_eq!(loaded.key.cert.len(), 1);
        load(&files(dir.path(), &format!("{cert}{key}"), None)).expect("key in the cert file");
    }

    #[test]
    fn each_bad_file_is_one_clear_error() {
        let dir = tempfile::tempdir().expect("dir");
        let now = SystemTime::now();
        let (cert, key) = made(now - day(), now + day());
        let (_, other_key) = made(now - day(), now + day());
        let error = |files: &KeyFiles| format!("{:#}", load(files).expect_err("refused"));

        let mismatch = error(&files(dir.path(), &cert, Some(&other_key)));
        assert!(
            mismatch.contains("does not match the certificate"),
            "{mismatch}"
        );
        let (old, old_key) = made(now - 3 * day(), now - day());
        let expired = error(&files(dir.path(), &old, Some(&old_key)));
        assert!(expired.contains("the certificate expired on"), "{expired}");
        let (early, early_key) = made(now + day(), now + 3 * day());
        let early = error(&files(dir.path(), &early, Some(&early_key)));
        assert!(early.contains("not valid before"), "{early}");
        let no_key = error(&files(dir.path(), &cert, None));
        assert!(no_key.contains("holds no private key"), "{no_key}");
        let not_a_key = error(&files(dir.path(), &cert, Some(&cert)));
        assert!(not_a_key.contains("holds no private key"), "{not_a_key}");
        let no_cert = error(&files(dir.path(), &key, Some(&key)));
        assert!(no_cert.contains("holds no certificate"), "{no_cert}");
        let missing = error(&KeyFiles {
            cert: dir.path().join("absent.pem"),
            key: None,
            password: None,
        });
        assert!(
            missing.contains("cannot read") && missing.contains("absent.pem"),
            "{missing}"
        );
        let legacy = key.replace(
            "-----BEGIN PRIVATE KEY-----\n",
            "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\n",
        );
        let legacy = error(&files(dir.path(), &cert, Some(&legacy)));
        assert!(legacy.contains("openssl pkcs8 -topk8"), "{legacy}");
    }

    #[test]
    fn the_fingerprint_reads_like_openssls() {
        let cert = CertificateDer::from(vec![1u8, 2, 3]);
        let fingerprint = fingerprint(&cert);
        assert_eq!(fingerprint.len(), 32 * 3 - 1);
        assert!(
            fingerprint.starts_with("03:90:58:C6:F2:C0:CB:49"),
            "{fingerprint}"
        );
    }
}
