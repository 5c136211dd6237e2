//! `--tls-self-signed`: a certificate made at startup for local testing.
//!
//! It names `localhost`, the loopback addresses and the bind address, is
//! valid for 30 days, and lives only in memory: the banner prints its
//! SHA-256 fingerprint, so that a client can check it is talking to this
//! server (`curl -k` then proves nothing more).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::keys::Loaded;

/// How long a self-signed certificate is valid.
const VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);

/// The names a self-signed certificate for a server bound to `bind`
/// carries.
pub fn names(bind: Option<IpAddr>) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(ip) = bind.filter(|ip| !ip.is_unspecified() && !ip.is_loopback()) {
        names.push(ip.to_string());
    }
    names
}

/// A fresh key pair and a certificate for `names`.
pub fn make(names: &[String]) -> anyhow::Result<Loaded> {
    let mut params =
        rcgen::CertificateParams::new(names.to_vec()).context("cannot make a certificate")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "wasmhttpd self-signed");
    let now = SystemTime::now();
    params.not_before = (now - Duration::from_secs(60)).into();
    params.not_after = (now + VALIDITY).into();
    let key_pair = rcgen::KeyPair::generate().context("cannot make a key pair")?;
    let cert = params
        .self_signed(&key_pair)
        .context("cannot sign the certificate")?;
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let signing = any_supported_type(&key).context("cannot use the key pair")?;
    Ok(Loaded {
        key: Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)),
        not_after: now + VALIDITY,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bind_address_is_named_unless_it_is_a_wildcard_or_loopback() {
        assert_eq!(names(None), ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(names(Some("0.0.0.0".parse().expect("ip"))).len(), 3);
        assert_eq!(names(Some("127.0.0.1".parse().expect("ip"))).len(), 3);
        assert_eq!(
            names(Some("192.168.1.7".parse().expect("ip")))
                .last()
                .map(String::as_str),
            Some("192.168.1.7")
        );
    }

    #[test]
    fn a_made_certificate_matches_its_key() {
        let made = make(&names(None)).expect("made");
        made.key.keys_match().expect("matching");
        assert_eq!(made.key.cert.len(), 1);
    }
}
