//! Outbound HTTP from wasi:http components: denied unless the sidecar's
//! `allowed_outbound_hosts` grants the destination.
//!
//! A pattern is `scheme://host[:port]`:
//! - scheme: `http`, `https` or `*`;
//! - host: a name or address (`[::1]` for IPv6), `*` for any host, or
//!   `*.example.com` for any name below `example.com` (not `example.com`
//!   itself);
//! - port: a number, `*` for any; omitted, the scheme's default port (80 or
//!   443; with scheme `*`, either).
//!
//! A request that no pattern allows fails inside the guest with
//! `error-code.HTTP-request-denied`, before any connection is made, and the
//! server logs which destination was refused. An instance may have only so
//! many requests in flight (each holds a connection and its buffers); one
//! more fails with `error-code.connection-limit-reached`.
//!
//! The same hooks bound what a guest's outgoing bodies buffer on the host:
//! one chunk of at most [`BODY_CHUNK`] bytes per body.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// One `scheme://host:port` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundPattern {
    written: String,
    scheme: Option<Scheme>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// Omitted: the scheme's default port.
    Default,
    Exact(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn parse(text: &str) -> Option<Scheme> {
        match text.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.suffix`: stored as `.suffix`.
    Below(String),
    Exact(String),
}

impl OutboundPattern {
    /// Parses `scheme://host[:port]`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<OutboundPattern, String> {
        let bad = |why: &str| format!("{text:?}: {why} (expected scheme://host[:port])");
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = match scheme {
            "*" => None,
            other => {
                Some(Scheme::parse(other).ok_or_else(|| bad("scheme must be http, https or *"))?)
            }
        };
        if rest.contains(['/', '?', '#', '@']) || rest.is_empty() {
            return Err(bad("only a host and port may follow the scheme"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| bad("bad host or port"))?;
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(digits) => PortPattern::Exact(
                digits
                    .parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| bad("port must be 1-65535 or *"))?,
            ),
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(bad("a wildcard host is * or *.domain"));
            }
            HostPattern::Below(format!(".{suffix}"))
        } else if host.contains('*') {
            return Err(bad("a wildcard host is * or *.domain"));
        } else {
            HostPattern::Exact(host)
        };
        Ok(OutboundPattern {
            written: text.to_string(),
            scheme,
            host,
            port,
        })
    }

    /// The pattern as written in the sidecar.
    pub fn as_written(&self) -> &str {
        &self.written
    }

    fn allows(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if self.scheme.is_some_and(|s| s != scheme) {
            return false;
        }
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Default => port == scheme.default_port(),
            PortPattern::Exact(p) => p == port,
        };
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(exact) => exact == host,
            HostPattern::Below(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        };
        port_ok && host_ok
    }
}

/// `host[:port]` with `[v6]` hosts; `None` if malformed.
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let host = &text[..v6.len() + 2];
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match text.split_once(':') {
        None => Some((text, None)),
        Some((host, port)) if !host.is_empty() && !port.contains(':') => Some((host, Some(port))),
        Some(_) => None,
    }
}

/// A plugin's outbound grants, checked at every request it sends.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    allowed: Arc<[OutboundPattern]>,
    tag: Arc<str>,
    /// This instance's requests in flight, and how many it may have.
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
}

/// The most bytes one write to an outgoing body may hand the host (a guest
/// is told so by `check-write`, and std's writers split their writes by
/// it); one such chunk is buffered per body.
pub const BODY_CHUNK: usize = 64 * 1024;

/// Holds one place among an instance's requests in flight.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Outbound {
    /// The grants of the plugin whose log lines start with `tag`.
    pub fn new(allowed: &[OutboundPattern], tag: &str) -> Outbound {
        Outbound {
            allowed: allowed.into(),
            tag: tag.into(),
            in_flight: Arc::default(),
            max_in_flight: 0,
        }
    }

    /// The same grants for one instance, with at most `max_in_flight`
    /// requests at once.
    pub fn for_instance(&self, max_in_flight: usize) -> Outbound {
        Outbound {
            in_flight: Arc::default(),
            max_in_flight,
            ..self.clone()
        }
    }

    /// A place among the requests in flight, if one is free.
    fn take_place(&self) -> Option<InFlight> {
        let taken = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_in_flight).then_some(n + 1)
            });
        taken.ok().map(|_| InFlight(Arc::clone(&self.in_flight)))
    }

    /// Whether a request to `uri` may be sent. The host and port are
    /// read from the authority exactly as the connector will use it (it
    /// connects to the authority's text, adding the scheme's port when
    /// there is none), so what is checked is what is reached: an authority
    /// with userinfo (`u@host`), whose host a URI parser and a resolver may
    /// read differently, is refused, and so is any that does not split
    /// cleanly into host and port.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = match uri.scheme_str().and_then(Scheme::parse) {
            Some(scheme) => scheme,
            None => return false,
        };
        let Some(authority) = uri.authority().map(http::uri::Authority::as_str) else {
            return false;
        };
        if authority.contains('@') {
            return false;
        }
        let Some((host, port)) = split_host_port(authority) else {
            return false;
        };
        let port = match port {
            None => scheme.default_port(),
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                match digits.parse() {
                    Ok(port) => port,
                    Err(_) => return false,
                }
            }
            Some(_) => return false,
        };
        let host = host.to_ascii_lowercase();
        self.allowed.iter().any(|p| p.allows(scheme, &host, port))
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<HyperOutgoingBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        if !self.allows(request.uri()) {
            crate::log::line(format!(
                "{} outbound request to {} denied: not in allowed_outbound_hosts",
                self.tag,
                destination(request.uri())
            ));
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let Some(place) = self.take_place() else {
            crate::log::line(format!(
                "{} outbound request to {} refused: {} already in flight",
                self.tag,
                destination(request.uri()),
                self.max_in_flight
            ));
            return Box::new(async { Err(Error::ConnectionLimitReached) });
        };
        let sent = wasmtime_wasi_http::default_hooks().send_request(request, options, fut);
        // The place is held until the response has come and its body has
        // been read (the connection's own future ends), or until either is
        // dropped.
        Box::new(async move {
            let (response, io) = Box::into_pin(sent).await?;
            let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async move {
                let _place = place;
                Box::into_pin(io).await
            });
            Ok((response, io))
        })
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        BODY_CHUNK
    }
}

/// `scheme://host:port` of `uri`, for the log.
fn destination(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("?");
    let host = uri.host().unwrap_or("?");
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(patterns: &[&str], uri: &str) -> bool {
        let patterns: Vec<_> = patterns
            .iter()
            .map(|p| OutboundPattern::parse(p).expect(p))
            .collect();
        Outbound::new(&patterns, "[t]").allows(&uri.parse().expect(uri))
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        assert!(!allows(&[], "http://127.0.0.1/"));
    }

    #[test]
    fn exact_host_and_default_port() {
        let p = &["https://api.example.com"];
        assert!(allows(p, "https://api.example.com/v1"));
        assert!(allows(p, "https://API.example.com:443/v1"));
        assert!(!allows(p, "https://api.example.com:8443/"));
        assert!(!allows(p, "http://api.example.com/"));
        assert!(!allows(p, "https://evil.example.com/"));
        assert!(!allows(p, "https://api.example.com.evil.net/"));
    }

    /// The host checked is the host the connector reaches: userinfo, which
    /// a URI parser strips and a resolver may not, is refused, as is an
    /// empty or odd port.
    #[test]
    fn the_authority_is_checked_as_it_will_be_connected_to() {
        let p = &["http://127.0.0.1:8080", "http://allowed.example"];
        assert!(allows(p, "http://127.0.0.1:8080/"));
        assert!(!allows(p, "http://u@127.0.0.1:8080/"));
        assert!(!allows(p, "http://u:pw@127.0.0.1:8080/"));
        assert!(!allows(p, "http://evil.example@allowed.example/"));
        assert!(!allows(p, "http://allowed.example:/"));
        assert!(!allows(p, "http://allowed.example:080x/"));
        assert!(allows(p, "http://allowed.example:80/"));
    }

    #[test]
    fn wildcards() {
        assert!(allows(&["http://127.0.0.1:*"], "http://127.0.0.1:8080/"));
        assert!(allows(&["http://127.0.0.1:*"], "http://127.0.0.1/"));
        assert!(allows(&["*://*:*"], "https://anything:1/"));
        let below = &["https://*.example.com"];
        assert!(allows(below, "https://a.b.example.com/"));
        assert!(!allows(below, "https://example.com/"));
        assert!(!allows(below, "https://badexample.com/"));
        let any_scheme = &["*://example.com"];
        assert!(allows(any_scheme, "http://example.com/"));
        assert!(allows(any_scheme, "https://example.com/"));
        assert!(!allows(any_scheme, "http://example.com:443/"));
        assert!(allows(&["http://[::1]:8080"], "http://[::1]:8080/"));
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in [
            "example.com",
            "ftp://example.com",
            "http://",
            "http://example.com/path",
            "http://example.com:0",
            "http://example.com:70000",
            "http://ex*ample.com",
            "http://*.",
            "http://user@example.com",
            "http://[::1",
        ] {
            let error = OutboundPattern::parse(bad).expect_err(bad);
            assert!(error.contains("expected scheme://host[:port]"), "{error}");
        }
    }
}
