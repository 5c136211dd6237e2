//! Response head and body on the wire.
//!
//! The writer owns framing: it adds `Server` and `Date` (first, as Python
//! orders them; a backend's own win), `Content-Length` (every response here has a known length)
//! and `Connection`, sends no body for HEAD, 1xx, 204 and
//! 304, and writes the head and an in-memory body with a single `write`, so
//! a keep-alive response is one segment (no Nagle stall between head and
//! body). File bodies follow the head with `sendfile(2)`. An unframed
//! response (an `nph-` script's) goes out untouched and closes the
//! connection. Every write is
//! bounded by the I/O timeout and the whole response by the minimum
//! transfer rate ([`Pace`]), so a client that stops reading, or reads a
//! byte a minute, cannot hold the connection open.

use http::{HeaderMap, StatusCode, Version};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use super::transport::Transport;
use crate::pace::Pace;
use crate::response::{Body, BodyStream, Response, SERVER};

/// Bodies up to this size (in memory, or read from a file) go after the
/// head in the same buffer and the same write.
const COALESCE_LIMIT: usize = 64 * 1024;
/// Room reserved for the head: enough for a typical file response.
const HEAD_CAPACITY: usize = 384;
/// Largest single `sendfile` call.
const SENDFILE_CHUNK: usize = 8 << 20;

/// How the response is framed for this request.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// The version written in the status line.
    pub version: Version,
    /// The request's version (a keep-alive HTTP/1.0 client is told so).
    pub request_version: Version,
    /// Whether the request was HEAD (headers only).
    pub head_only: bool,
    /// Whether the connection stays open after this response.
    pub keep_alive: bool,
}

/// Whether a response with this status may carry content.
pub fn status_allows_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// What was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Body bytes sent.
    pub body_bytes: u64,
    /// Whether the connection can carry another response (a body of unknown
    /// length to an HTTP/1.0 client ends with the connection).
    pub keep_alive: bool,
}

/// How the end of the body is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delimiting {
    /// The status allows no body (1xx, 204, 304).
    NoBody,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// The end of the connection (HTTP/1.0, unknown length).
    Close,
}

/// Writes `response` to `stream`.
pub async fn write_response<S: Transport>(
    stream: &mut S,
    response: Response,
    mut framing: Framing,
    pace: &mut Pace,
) -> io::Result<Written> {
    if let Body::Unframed(body) = response.body {
        return write_unframed(stream, body, pace).await;
    }
    let delimiting = if !status_allows_body(response.status) {
        Delimiting::NoBody
    } else if let Some(len) = response.body.known_len() {
        Delimiting::Length(len)
    } else if framing.version == Version::HTTP_11 && framing.request_version == Version::HTTP_11 {
        Delimiting::Chunked
    } else {
        Delimiting::Close
    };
    if delimiting == Delimiting::Close {
        framing.keep_alive = false;
    }
    let send_body = delimiting != Delimiting::NoBody && !framing.head_only;
    let inline = match delimiting {
        Delimiting::Length(len) if send_body => len.min(COALESCE_LIMIT as u64) as usize,
        _ => 0,
    };
    let mut out = Vec::with_capacity(HEAD_CAPACITY + inline);
    encode_head(
        &mut out,
        &response.status,
        &response.headers,
        delimiting,
        framing,
    );
    let mut body_bytes = 0;
    match response.body {
        Body::Bytes(bytes) if send_body && bytes.len() <= COALESCE_LIMIT => {
            out.extend_from_slice(&bytes);
            write_all(stream, &out, pace).await?;
            body_bytes = bytes.len() as u64;
        }
        Body::Bytes(bytes) if send_body => {
            write_all(stream, &out, pace).await?;
            write_all(stream, &bytes, pace).await?;
            body_bytes = bytes.len() as u64;
        }
        Body::File { file, offset, len } if send_body && len <= COALESCE_LIMIT as u64 => {
            // A small file is read straight after the head: one buffer, one
            // write. Nothing has been sent yet if the read fails, but the
            // head promised this length, so the connection must end.
            let head_len = out.len();
            out.resize(head_len + len as usize, 0);
            file.read_exact_at(&mut out[head_len..], offset)?;
            write_all(stream, &out, pace).await?;
            body_bytes = len;
        }
        Body::File { file, offset, len } if send_body => {
            write_all(stream, &out, pace).await?;
            send_file(stream, &file, offset, len, pace).await?;
            body_bytes = len;
        }
        Body::Stream(mut body) if send_body => {
            write_all(stream, &out, pace).await?;
            let chunked = delimiting == Delimiting::Chunked;
            // An error from the producer ends the connection here, before
            // the last chunk: the client sees an incomplete response.
            while let Some(chunk) = body.next().await? {
                if chunk.is_empty() {
                    continue;
                }
                out.clear();
                if chunked {
                    push_hex(&mut out, chunk.len() as u64);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(&chunk);
                if chunked {
                    out.extend_from_slice(b"\r\n");
                }
                write_all(stream, &out, pace).await?;
                body_bytes += chunk.len() as u64;
            }
            if chunked {
                write_all(stream, b"0\r\n\r\n", pace).await?;
            }
        }
        _ => write_all(stream, &out, pace).await?,
    }
    // A TLS session may hold the last records until flushed.
    pace.wait(stream.flush()).await??;
    Ok(Written {
        body_bytes,
        keep_alive: framing.keep_alive,
    })
}

/// Sends a response produced whole elsewhere (an `nph-` script's), then
/// ends the connection: its framing is unknown to the server.
async fn write_unframed<S: Transport>(
    stream: &mut S,
    mut body: BodyStream,
    pace: &mut Pace,
) -> io::Result<Written> {
    let mut sent = 0;
    while let Some(chunk) = body.next().await? {
        write_all(stream, &chunk, pace).await?;
        sent += chunk.len() as u64;
    }
    pace.wait(stream.flush()).await??;
    Ok(Written {
        body_bytes: sent,
        keep_alive: false,
    })
}

/// Serialises the status line and header fields.
fn encode_head(
    out: &mut Vec<u8>,
    status: &StatusCode,
    headers: &HeaderMap,
    delimiting: Delimiting,
    framing: Framing,
) {
    out.extend_from_slice(if framing.version == Version::HTTP_10 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    // Every response carries these, first, in Python's order, unless the
    // backend set its own (a wasi:http component may).
    if !headers.contains_key(http::header::SERVER) {
        out.extend_from_slice(b"Server: ");
        out.extend_from_slice(SERVER.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(http::header::DATE) {
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(crate::clock::http_date().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        push_title_case(out, name.as_str());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match delimiting {
        Delimiting::Length(len) => {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, len);
            out.extend_from_slice(b"\r\n");
        }
        Delimiting::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Delimiting::NoBody | Delimiting::Close => {}
    }
    if !framing.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if framing.request_version == Version::HTTP_10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in lower-case hexadecimal (chunk sizes).
fn push_hex(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 16];
    let len = crate::validators::write_hex(&mut digits, n);
    out.extend_from_slice(&digits[..len]);
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes a lower-case header name as `Title-Case` (`ETag` as such), the
/// way Python, nginx and browsers' developer tools show them.
fn push_title_case(out: &mut Vec<u8>, name: &str) {
    let known: &[u8] = match name {
        "content-type" => b"Content-Type",
        "last-modified" => b"Last-Modified",
        "etag" => b"ETag",
        "accept-ranges" => b"Accept-Ranges",
        "content-range" => b"Content-Range",
        "location" => b"Location",
        _ => b"",
    };
    if !known.is_empty() {
        out.extend_from_slice(known);
        return;
    }
    let mut upper = true;
    for &b in name.as_bytes() {
        out.push(if upper { b.to_ascii_uppercase() } else { b });
        upper = b == b'-';
    }
}

async fn write_all<S: Transport>(
    stream: &mut S,
    mut bytes: &[u8],
    pace: &mut Pace,
) -> io::Result<()> {
    while !bytes.is_empty() {
        match pace.io(stream.write(bytes)).await?? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => bytes = &bytes[n..],
        }
    }
    Ok(())
}

/// Sends `len` bytes of `file` from `offset`: with `sendfile(2)` on a
/// plain socket, else read and written a piece at a time. A file that
/// shrinks while being sent ends the connection (the client sees a short
/// body against its `Content-Length`, never a silently wrong one).
async fn send_file<S: Transport>(
    stream: &mut S,
    file: &std::fs::File,
    offset: u64,
    len: u64,
    pace: &mut Pace,
) -> io::Result<()> {
    match stream.raw_socket() {
        Some(socket) => sendfile(socket, file, offset, len, pace).await,
        None => copy_file(stream, file, offset, len, pace).await,
    }
}

/// The most bytes of a file read at a time for a stream that cannot
/// take `sendfile(2)`.
const COPY_CHUNK: u64 = 256 * 1024;

async fn copy_file<S: Transport>(
    stream: &mut S,
    file: &std::fs::File,
    offset: u64,
    len: u64,
    pace: &mut Pace,
) -> io::Result<()> {
    let mut buf = vec![0u8; len.min(COPY_CHUNK) as usize];
    let mut position = offset;
    let end = offset + len;
    while position < end {
        let want = (end - position).min(COPY_CHUNK) as usize;
        let n = file.read_at(&mut buf[..want], position)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while sending",
            ));
        }
        write_all(stream, &buf[..n], pace).await?;
        position += n as u64;
    }
    Ok(())
}

async fn sendfile(
    stream: &TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: u64,
    pace: &mut Pace,
) -> io::Result<()> {
    let mut position = offset;
    let end = offset + len;
    while position < end {
        let want = (end - position).min(SENDFILE_CHUNK as u64) as usize;
        pace.wait(stream.writable()).await??;
        let before = position;
        let sent = stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream.as_fd(), file.as_fd(), Some(&mut position), want)
                .map_err(io::Error::from)
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while sending",
                ));
            }
            Ok(_) => pace.moved(position - before),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn head(
        status: StatusCode,
        delimiting: Delimiting,
        keep_alive: bool,
        request_version: Version,
    ) -> String {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.insert("etag", HeaderValue::from_static("\"x\""));
        let mut out = Vec::new();
        let framing = Framing {
            version: Version::HTTP_11,
            request_version,
            head_only: false,
            keep_alive,
        };
        encode_head(&mut out, &status, &headers, delimiting, framing);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn head_is_title_cased_with_length() {
        assert_eq!(
            head(
                StatusCode::OK,
                Delimiting::Length(3),
                true,
                Version::HTTP_11
            ),
            format!(
                "HTTP/1.1 200 OK\r\nServer: {SERVER}\r\nDate: {}\r\n\
                 Content-Type: text/plain\r\nETag: \"x\"\r\nContent-Length: 3\r\n\r\n",
                crate::clock::http_date().to_str().expect("ascii")
            )
        );
    }

    #[test]
    fn hex_chunk_sizes() {
        for (n, text) in [
            (0, "0"),
            (10, "a"),
            (4096, "1000"),
            (u64::MAX, "ffffffffffffffff"),
        ] {
            let mut out = Vec::new();
            push_hex(&mut out, n);
            assert_eq!(out, text.as_bytes());
        }
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 1024, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn connection_header_follows_keep_alive() {
        assert!(
            head(
                StatusCode::OK,
                Delimiting::Length(0),
                false,
                Version::HTTP_11
            )
            .contains("Connection: close\r\n")
        );
        assert!(
            head(
                StatusCode::OK,
                Delimiting::Length(0),
                true,
                Version::HTTP_10
            )
            .contains("Connection: keep-alive\r\n")
        );
    }

    #[test]
    fn not_modified_has_no_length() {
        assert!(
            !head(
                StatusCode::NOT_MODIFIED,
                Delimiting::NoBody,
                true,
                Version::HTTP_11
            )
            .contains("Content-Length")
        );
        let chunked = head(StatusCode::OK, Delimiting::Chunked, true, Version::HTTP_11);
        assert!(
            chunked.contains("Transfer-Encoding: chunked\r\n")
                && !chunked.contains("Content-Length")
        );
        assert!(!status_allows_body(StatusCode::NOT_MODIFIED));
        assert!(!status_allows_body(StatusCode::NO_CONTENT));
        assert!(!status_allows_body(StatusCode::CONTINUE));
        assert!(status_allows_body(StatusCode::NOT_FOUND));
    }
}
