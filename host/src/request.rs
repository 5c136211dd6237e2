//! The request every backend receives, once its head is parsed and validated.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Version};

/// The two ends of the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct Ends {
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// Whether the connection is TLS (the scheme is `https`).
    pub secure: bool,
}

/// A parsed request head and where it came from.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method, case-sensitive as sent (`get` is not `GET`).
    pub method: Method,
    /// The request target exactly as sent: origin-form (`/a?b`),
    /// absolute-form (`http://h/a`) or asterisk-form (`*`).
    pub target: Bytes,
    /// HTTP/1.0 or HTTP/1.1 (a 1.x minor above 1 is treated as 1.1).
    pub version: Version,
    /// Header fields, names lower-cased.
    pub headers: HeaderMap,
    /// The head as the client sent it (request line, fields in their order
    /// and case), or empty for a request that did not arrive as HTTP/1
    /// text (a CGI script's local redirect).
    pub head: Bytes,
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// Whether it arrived over TLS.
    pub secure: bool,
}

impl Request {
    /// The target's path: before `?` and `#`, after `scheme://authority`
    /// for absolute-form (RFC 9112 §3.2.2), `/` when absolute-form has none.
    pub fn path(&self) -> &[u8] {
        let target = strip_authority(&self.target);
        let end = target
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(target.len());
        match &target[..end] {
            b"" => b"/",
            path => path,
        }
    }

    /// The raw query, without `?`, if the target has one (fragment removed).
    pub fn query(&self) -> Option<&[u8]> {
        let target = strip_authority(&self.target);
        let target = &target[..target
            .iter()
            .position(|&b| b == b'#')
            .unwrap_or(target.len())];
        let start = target.iter().position(|&b| b == b'?')? + 1;
        Some(&target[start..])
    }

    /// The authority the client addressed: an absolute-form target's, which
    /// wins over `Host` (RFC 9112 §3.2.2), else the `Host` field's value.
    pub fn authority(&self) -> Option<&[u8]> {
        match split_absolute(&self.target) {
            Some((authority, _)) => Some(authority),
            None => self.headers.get(http::header::HOST).map(|h| h.as_bytes()),
        }
    }

    /// Whether this is a HEAD request (its response carries no body).
    pub fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }
}

/// For absolute-form targets, the part after `scheme://authority`.
fn strip_authority(target: &[u8]) -> &[u8] {
    split_absolute(target).map_or(target, |(_, rest)| rest)
}

/// An absolute-form target → its authority and what follows it.
fn split_absolute(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let scheme_end = find(target, b"://")?;
    if target.first() == Some(&b'/') || !target[..scheme_end].iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let rest = &target[scheme_end + 3..];
    let path_start = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    Some(rest.split_at(path_start))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &'static str) -> Request {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        Request {
            method: Method::GET,
            target: Bytes::from_static(target.as_bytes()),
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            head: Bytes::new(),
            peer: addr,
            local: addr,
            secure: false,
        }
    }

    #[test]
    fn origin_form() {
        let r = request("/a/b?x=1&y#frag");
        assert_eq!(r.path(), b"/a/b");
        assert_eq!(r.query(), Some(&b"x=1&y"[..]));
        assert_eq!(request("/a#f?x").query(), None);
        assert_eq!(request("/a").query(), None);
    }

    #[test]
    fn absolute_form() {
        let r = request("http://example.com:8000/dir/f?q");
        assert_eq!(r.path(), b"/dir/f");
        assert_eq!(r.query(), Some(&b"q"[..]));
        assert_eq!(request("http://example.com").path(), b"/");
        assert_eq!(request("http://example.com?q").path(), b"/");
    }

    #[test]
    fn an_absolute_form_authority_wins_over_host() {
        let mut r = request("http://target.example:81/a");
        r.headers
            .insert(http::header::HOST, "host.example".parse().expect("value"));
        assert_eq!(r.authority(), Some(&b"target.example:81"[..]));
        let mut r = request("/a");
        assert_eq!(r.authority(), None);
        r.headers
            .insert(http::header::HOST, "host.example".parse().expect("value"));
        assert_eq!(r.authority(), Some(&b"host.example"[..]));
    }

    #[test]
    fn a_path_containing_scheme_like_text_is_not_absolute() {
        assert_eq!(request("/redirect?to=http://x/").path(), b"/redirect");
    }
}
