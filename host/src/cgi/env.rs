//! The request as CGI/1.1 meta-variables (RFC 3875 §4.1).
//!
//! One implementation for every CGI backend. Choices, each for a reason:
//! - `SERVER_PROTOCOL` is the *request's* version (§4.1.16), not the
//!   server's, as Python wrongly sends.
//! - `QUERY_STRING` is raw, always set (`""` when absent, §4.1.7);
//!   `PATH_INFO` is decoded (§4.1.5); `SCRIPT_NAME` is the route.
//! - `CONTENT_LENGTH` is set only when there is a body, and is its exact
//!   decoded length (§4.1.2); `CONTENT_TYPE` only when the client sent one.
//! - Every other request header becomes `HTTP_NAME` (upper-cased, `-` → `_`),
//!   repeated fields joined with `, ` (`; ` for `Cookie`), except:
//!   `Authorization` (the script must not see credentials the server did not
//!   check, §4.1.18), `Proxy` (httpoxy, CVE-2016-5387), `Content-Length` and
//!   `Content-Type` (they are `CONTENT_*`), the hop-by-hop fields
//!   (`Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`), and
//!   any name containing `_`, which would be indistinguishable from its
//!   `-` twin once mapped (Apache and nginx drop them for the same reason).
//! - `DOCUMENT_ROOT`, `SCRIPT_FILENAME` and `PATH_TRANSLATED` (§4.1.6: the
//!   served directory joined with `PATH_INFO`, set only when there is a
//!   `PATH_INFO`) for a script on disk; a sandboxed module is not told
//!   host paths.
//! - Nothing of the server's own environment.
//!
//! Also the command line of §4.4: an "indexed" query (GET or HEAD, no `=`)
//! becomes the script's arguments, one per `+`-separated word, decoded —
//! unless a word would start with `-`: arguments that a program could take
//! for options are how CVE-2012-1823 turned a query into PHP's `-s` and
//! `-d`, so then there is no command line at all (as §4.4 allows).

use std::net::SocketAddr;
use std::path::Path;

use http::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, TE, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderName, Method};

use crate::request::Request;

/// What the CGI environment of one request is made from, beyond the request.
#[derive(Debug, Clone)]
pub struct Script<'a> {
    /// `SCRIPT_NAME`: the URL path that selected the script (decoded).
    pub script_name: &'a str,
    /// `PATH_INFO`: the rest of the URL path, decoded (`""` for none).
    pub path_info: &'a str,
    /// The request body's exact length, if it has a body.
    pub content_length: Option<u64>,
    /// Where the script is on disk, for a classic CGI script.
    pub on_disk: Option<OnDisk<'a>>,
}

/// Where a classic CGI script is on disk.
#[derive(Debug, Clone, Copy)]
pub struct OnDisk<'a> {
    /// `DOCUMENT_ROOT`: the served directory.
    pub document_root: &'a Path,
    /// `SCRIPT_FILENAME`: the script's absolute path.
    pub script_filename: &'a Path,
}

/// The meta-variables for `request` reaching `script`, in a stable order.
pub fn meta_variables(request: &Request, script: &Script<'_>) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::with_capacity(24 + request.headers.len());
    let mut set = |name: &str, value: String| vars.push((name.to_string(), value));
    set("GATEWAY_INTERFACE", "CGI/1.1".into());
    set("SERVER_SOFTWARE", crate::response::SERVER.into());
    set("SERVER_PROTOCOL", format!("{:?}", request.version));
    if request.secure {
        // Not in RFC 3875; Apache's and nginx's convention, which scripts
        // test to build their own URLs.
        set("HTTPS", "on".into());
        set("REQUEST_SCHEME", "https".into());
    } else {
        set("REQUEST_SCHEME", "http".into());
    }
    set("SERVER_NAME", server_name(request));
    set("SERVER_PORT", request.local.port().to_string());
    set("SERVER_ADDR", request.local.ip().to_canonical().to_string());
    set("REQUEST_METHOD", request.method.as_str().into());
    set(
        "REQUEST_URI",
        String::from_utf8_lossy(&request.target).into_owned(),
    );
    set("SCRIPT_NAME", script.script_name.into());
    set("PATH_INFO", script.path_info.into());
    set(
        "QUERY_STRING",
        String::from_utf8_lossy(request.query().unwrap_or_default()).into_owned(),
    );
    set("REMOTE_ADDR", remote_ip(request.peer));
    set("REMOTE_HOST", remote_ip(request.peer));
    set("REMOTE_PORT", request.peer.port().to_string());
    if let Some(length) = script.content_length {
        set("CONTENT_LENGTH", length.to_string());
    }
    if let Some(on_disk) = script.on_disk {
        let root = on_disk.document_root.to_string_lossy();
        if !script.path_info.is_empty() {
            set(
                "PATH_TRANSLATED",
                format!("{}{}", root.trim_end_matches('/'), script.path_info),
            );
        }
        set("DOCUMENT_ROOT", root.into_owned());
        set(
            "SCRIPT_FILENAME",
            on_disk.script_filename.to_string_lossy().into_owned(),
        );
    }
    if let Some(kind) = request.headers.get(CONTENT_TYPE) {
        set(
            "CONTENT_TYPE",
            String::from_utf8_lossy(kind.as_bytes()).into_owned(),
        );
    }
    for name in request.headers.keys() {
        if !passed_as_http_variable(name) {
            continue;
        }
        let separator = if name == COOKIE { "; " } else { ", " };
        let value = request
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(separator);
        let variable: String = name
            .as_str()
            .chars()
            .map(|c| {
                if c == '-' {
                    '_'
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        vars.push((format!("HTTP_{variable}"), value));
    }
    vars
}

/// The script's arguments (RFC 3875 §4.4): the words of an "indexed"
/// query, or none.
pub fn command_line(request: &Request) -> Vec<String> {
    let indexed = matches!(request.method, Method::GET | Method::HEAD);
    let Some(query) = request.query().filter(|q| indexed && !q.is_empty()) else {
        return Vec::new();
    };
    if query.contains(&b'=') {
        return Vec::new();
    }
    let mut words = Vec::new();
    for raw in query.split(|&b| b == b'+') {
        let Some(word) = decode_search_word(raw) else {
            return Vec::new();
        };
        if word.is_empty() || word.starts_with('-') || word.contains('\0') {
            return Vec::new();
        }
        words.push(word);
    }
    words
}

/// Percent-decodes a search word; `None` if it is not valid UTF-8 or has a
/// broken escape.
fn decode_search_word(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' {
            let hi = (*bytes.next()? as char).to_digit(16)?;
            let lo = (*bytes.next()? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

fn passed_as_http_variable(name: &HeaderName) -> bool {
    let dropped = [
        AUTHORIZATION,
        CONTENT_LENGTH,
        CONTENT_TYPE,
        CONNECTION,
        TE,
        TRANSFER_ENCODING,
        UPGRADE,
    ];
    !dropped.contains(name)
        && !matches!(
            name.as_str(),
            "proxy" | "keep-alive" | "proxy-authorization"
        )
        && !name.as_str().contains('_')
}

fn remote_ip(peer: SocketAddr) -> String {
    peer.ip().to_canonical().to_string()
}

/// The host the client addressed (an absolute-form target's authority, or
/// `Host`, without its port), or the address it connected to.
fn server_name(request: &Request) -> String {
    let from_host = request
        .authority()
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|host| {
            let name = if host.starts_with('[') {
                host.find(']').map(|end| &host[..=end])
            } else {
                Some(host.rsplit_once(':').map_or(host, |(name, _)| name))
            }?;
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
            valid.then(|| name.to_string())
        });
    from_host.unwrap_or_else(|| request.local.ip().to_canonical().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method, Version};

    fn request(headers: &[(&'static str, &'static str)]) -> Request {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, HeaderValue::from_static(value));
        }
        Request {
            method: Method::POST,
            target: Bytes::from_static(b"/app/x%20y?a=1&b=%20"),
            version: Version::HTTP_10,
            headers: map,
            head: Bytes::new(),
            peer: "[::ffff:10.1.2.3]:5555".parse().expect("addr"),
            local: "127.0.0.1:8000".parse().expect("addr"),
            secure: false,
        }
    }

    fn vars(request: &Request, content_length: Option<u64>) -> Vec<(String, String)> {
        let script = Script {
            script_name: "/app",
            path_info: "/x y",
            content_length,
            on_disk: None,
        };
        meta_variables(request, &script)
    }

    fn get<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
        vars.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn required_variables() {
        let r = request(&[("host", "example.com:8000"), ("content-type", "text/plain")]);
        let v = vars(&r, Some(5));
        assert_eq!(get(&v, "GATEWAY_INTERFACE"), Some("CGI/1.1"));
        assert_eq!(
            get(&v, "SERVER_PROTOCOL"),
            Some("HTTP/1.0"),
            "the request's version"
        );
        assert_eq!(get(&v, "SERVER_NAME"), Some("example.com"));
        assert_eq!(get(&v, "SERVER_PORT"), Some("8000"));
        assert_eq!(get(&v, "REQUEST_METHOD"), Some("POST"));
        assert_eq!(get(&v, "QUERY_STRING"), Some("a=1&b=%20"), "raw");
        assert_eq!(get(&v, "SCRIPT_NAME"), Some("/app"));
        assert_eq!(get(&v, "PATH_INFO"), Some("/x y"), "decoded");
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("10.1.2.3"));
        assert_eq!(get(&v, "REMOTE_PORT"), Some("5555"));
        assert_eq!(get(&v, "CONTENT_LENGTH"), Some("5"));
        assert_eq!(get(&v, "CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(get(&v, "REQUEST_URI"), Some("/app/x%20y?a=1&b=%20"));
        assert!(get(&v, "SERVER_SOFTWARE").is_some_and(|s| s.starts_with("wasmhttpd/")));
    }

    #[test]
    fn scripts_on_disk_get_their_paths() {
        let r = request(&[]);
        let on_disk = OnDisk {
            document_root: Path::new("/srv/site"),
            script_filename: Path::new("/srv/site/app"),
        };
        let script = Script {
            script_name: "/app",
            path_info: "/x y",
            content_length: None,
            on_disk: Some(on_disk),
        };
        let v = meta_variables(&r, &script);
        assert_eq!(get(&v, "DOCUMENT_ROOT"), Some("/srv/site"));
        assert_eq!(get(&v, "SCRIPT_FILENAME"), Some("/srv/site/app"));
        assert_eq!(get(&v, "PATH_TRANSLATED"), Some("/srv/site/x y"));
        let no_info = Script {
            path_info: "",
            ..script
        };
        assert_eq!(get(&meta_variables(&r, &no_info), "PATH_TRANSLATED"), None);
        assert_eq!(
            get(&vars(&r, None), "DOCUMENT_ROOT"),
            None,
            "not for modules"
        );
    }

    #[test]
    fn indexed_queries_become_arguments_but_never_options() {
        let args = |method: Method, target: &'static str| {
            let mut r = request(&[]);
            r.method = method;
            r.target = Bytes::from_static(target.as_bytes());
            command_line(&r)
        };
        assert_eq!(args(Method::GET, "/s?cat+dog%21"), ["cat", "dog!"]);
        assert_eq!(args(Method::HEAD, "/s?one"), ["one"]);
        let none: [&str; 0] = [];
        assert_eq!(args(Method::GET, "/s?a=b"), none, "a form query");
        assert_eq!(args(Method::POST, "/s?cat"), none, "not GET or HEAD");
        assert_eq!(args(Method::GET, "/s"), none);
        assert_eq!(
            args(Method::GET, "/s?-s"),
            none,
            "an option (CVE-2012-1823)"
        );
        assert_eq!(args(Method::GET, "/s?x+%2ds"), none, "an encoded option");
        assert_eq!(args(Method::GET, "/s?a++b"), none, "an empty word");
        assert_eq!(args(Method::GET, "/s?%zz"), none, "a broken escape");
        assert_eq!(args(Method::GET, "/s?%00"), none, "a NUL");
    }

    #[test]
    fn no_body_no_content_length_and_empty_query() {
        let mut r = request(&[]);
        r.target = Bytes::from_static(b"/app");
        let v = vars(&r, None);
        assert_eq!(get(&v, "CONTENT_LENGTH"), None);
        assert_eq!(get(&v, "CONTENT_TYPE"), None);
        assert_eq!(get(&v, "QUERY_STRING"), Some(""));
        assert_eq!(
            get(&v, "SERVER_NAME"),
            Some("127.0.0.1"),
            "no Host: the local address"
        );
    }

    #[test]
    fn headers_become_http_variables_except_the_dangerous_ones() {
        let r = request(&[
            ("user-agent", "t/1"),
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("authorization", "Basic secret"),
            ("proxy", "http://evil:1"),
            ("x_under", "smuggled"),
            ("connection", "keep-alive"),
            ("content-length", "5"),
        ]);
        let v = vars(&r, Some(5));
        assert_eq!(get(&v, "HTTP_USER_AGENT"), Some("t/1"));
        assert_eq!(get(&v, "HTTP_X_MULTI"), Some("a, b"));
        assert_eq!(get(&v, "HTTP_COOKIE"), Some("a=1; b=2"));
        for hidden in [
            "HTTP_AUTHORIZATION",
            "HTTP_PROXY",
            "HTTP_X_UNDER",
            "HTTP_CONNECTION",
            "HTTP_CONTENT_LENGTH",
        ] {
            assert_eq!(get(&v, hidden), None, "{hidden}");
        }
    }

    #[test]
    fn ipv6_host_keeps_its_brackets() {
        let r = request(&[("host", "[::1]:8000")]);
        assert_eq!(get(&vars(&r, None), "SERVER_NAME"), Some("[::1]"));
        let r = request(&[("host", "bad host\"")]);
        assert_eq!(get(&vars(&r, None), "SERVER_NAME"), Some("127.0.0.1"));
    }
}
