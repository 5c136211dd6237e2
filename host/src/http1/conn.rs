//! One client connection: read a head, dispatch, write, repeat while kept alive.
//!
//! Timeouts, so that slow or idle clients cannot hold the server:
//! - a new connection, or a request head once its first byte arrived, must
//!   be complete within the header timeout (an incomplete head gets 408);
//! - between keep-alive requests the connection may idle for the keep-alive
//!   timeout, then closes silently;
//! - every write, and every read of a body, must make progress within the
//!   I/O timeout, and a body or a response must keep above the minimum
//!   transfer rate (see [`super::pace`]); a body being discarded must end
//!   within one I/O timeout.
//!
//! A head that cannot be parsed gets its error page with `Connection: close`,
//! and the connection closes gracefully: the write side is shut and what the
//! client still sends is read and discarded for a moment, so the kernel does
//! not answer it with a reset that would destroy the error page in flight.
//!
//! On shutdown an idle connection closes at once; one in the middle of a
//! request finishes it and closes with `Connection: close`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::body::{BodyDecoder, Decoded, Http1Body, declared_length};
use super::parse::{Framing, Head, HeadError, Limits, parse_head};
use super::transport::Transport;
use super::write::{self, write_response};
use crate::error::HttpError;
use crate::handler::Handler;
use crate::pace::{MinRate, Pace};
use crate::request::{Ends, Request};
use crate::request_body::RequestBody;

/// The most body bytes read and discarded to keep a connection alive when
/// no backend wanted the body; a larger body closes the connection instead.
const MAX_DRAIN: u64 = 1 << 20;
/// How long a closing connection keeps reading what the client still sends.
const LINGER: Duration = Duration::from_secs(2);

/// Per-connection settings, fixed at startup.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Request head limits.
    pub limits: Limits,
    /// Time allowed for a request head once it starts (and for the first).
    pub header_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub keep_alive_timeout: Duration,
    /// Time any single read or write may stall.
    pub io_timeout: Duration,
    /// The slowest a request body or a response may move.
    pub min_rate: MinRate,
    /// The protocol in status lines; HTTP/1.0 closes after every response.
    pub protocol: Version,
}

impl Settings {
    /// A transfer's progress against the timeouts.
    fn pace(&self) -> Pace {
        Pace::new(self.min_rate, self.io_timeout)
    }
}

enum Next {
    Request(Head),
    Close,
    Reject(HeadError),
}

/// Serves requests on `stream` until the client or the server closes it;
/// `buf` holds what was already read from it.
pub async fn serve<S: Transport, H: Handler>(
    mut stream: S,
    mut buf: BytesMut,
    ends: Ends,
    service: &H,
    settings: &Settings,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ends { peer, local, .. } = ends;
    buf.reserve(4096);
    let mut first = true;
    loop {
        let head = match read_head(&mut stream, &mut buf, first, settings, &mut shutdown).await {
            Next::Request(head) => head,
            Next::Close => return,
            Next::Reject(rejected) => {
                reject(&mut stream, service, settings, peer, rejected).await;
                return;
            }
        };
        first = false;

        let request = Request {
            method: head.method,
            target: head.target,
            version: head.version,
            headers: head.headers,
            head: head.raw,
            peer,
            local,
            secure: ends.secure,
        };
        let mut decoder = BodyDecoder::new(head.framing);
        let response = {
            let mut source = Http1Body::new(
                &mut stream,
                &mut buf,
                &mut decoder,
                head.expect_continue,
                settings.pace(),
            );
            let mut body = RequestBody::new(&mut source, declared_length(head.framing));
            service.handle(&request, &mut body).await
        };
        // A body the backend did not read is discarded before the response
        // when that is cheap, so that a malformed one is answered 400 like
        // any other; otherwise the connection closes. A client still waiting
        // for 100 Continue may or may not send its body, so its connection
        // cannot be reused. Any body error is final: nothing after it is
        // parsed, and the answer says `Connection: close`.
        let mut response = response;
        let mut body_ok = decoder.is_done();
        if !body_ok && !decoder.has_failed() {
            let discardable = match head.framing {
                Framing::Empty => true,
                Framing::Length(n) => n <= MAX_DRAIN && !head.expect_continue,
                Framing::Chunked => !head.expect_continue,
            };
            if discardable {
                match drain(&mut stream, &mut buf, &mut decoder, settings.io_timeout).await {
                    Drained::Done => body_ok = true,
                    Drained::TooLong | Drained::TimedOut => {}
                    Drained::Refused(error) => response = error.to_response(),
                    Drained::Lost => {
                        service.log(peer, &head.request_line, response.status, None);
                        return;
                    }
                }
            }
        }
        let keep_alive = head.keep_alive
            && settings.protocol == Version::HTTP_11
            && body_ok
            && !*shutdown.borrow();
        let status = response.status;
        let framing = write::Framing {
            version: settings.protocol,
            request_version: request.version,
            head_only: request.is_head(),
            keep_alive,
        };
        let written = write_response(&mut stream, response, framing, &mut settings.pace()).await;
        service.log(
            peer,
            &head.request_line,
            status,
            written.as_ref().ok().map(|w| w.body_bytes),
        );
        let Ok(written) = written else {
            return;
        };
        if !written.keep_alive {
            linger_close(&mut stream).await;
            return;
        }
    }
}

/// Reads until `buf` holds a complete request head.
async fn read_head<S: Transport>(
    stream: &mut S,
    buf: &mut BytesMut,
    first: bool,
    settings: &Settings,
    shutdown: &mut watch::Receiver<bool>,
) -> Next {
    let now = Instant::now();
    let mut started = first;
    let mut deadline = now
        + if first {
            settings.header_timeout
        } else {
            settings.keep_alive_timeout
        };
    // A head can only complete at a newline, so it is parsed again only when
    // one arrives (or when the buffer's length alone proves a limit
    // exceeded): a head dribbled in one byte at a time costs linear, not
    // quadratic, work.
    let limits = &settings.limits;
    let mut scanned: usize = 0;
    let mut seen_newline = false;
    loop {
        // RFC 9112 §2.2: ignore empty lines before a request line.
        let blank = buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        buf.advance(blank);
        scanned = scanned.saturating_sub(blank);
        if !buf.is_empty() {
            if !started {
                started = true;
                deadline = Instant::now() + settings.header_timeout;
            }
            let fresh_newline = buf[scanned..].contains(&b'\n');
            seen_newline |= fresh_newline;
            scanned = buf.len();
            let decidable = fresh_newline
                || (!seen_newline && buf.len() > limits.max_request_line + 1)
                || buf.len() > limits.max_request_line + 2 + limits.max_header_bytes;
            if decidable {
                match parse_head(buf, limits) {
                    Ok(Some(head)) => return Next::Request(head),
                    Ok(None) => {}
                    Err(rejected) => return Next::Reject(rejected),
                }
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(8192);
        }
        let idle = buf.is_empty();
        tokio::select! {
            read = stream.read_buf(buf) => match read {
                Ok(0) | Err(_) => return Next::Close,
                Ok(_) => {}
            },
            () = sleep_until(deadline) => {
                return if idle {
                    Next::Close
                } else {
                    Next::Reject(HeadError {
                        error: HttpError::RequestTimeout,
                        request_line: bytes::Bytes::new(),
                    })
                };
            }
            _ = shutdown.wait_for(|stop| *stop), if idle => return Next::Close,
        }
    }
}

/// Answers a head that could not be accepted, then closes.
async fn reject<S: Transport, H: Handler>(
    stream: &mut S,
    service: &H,
    settings: &Settings,
    peer: SocketAddr,
    rejected: HeadError,
) {
    let response = rejected.error.to_response();
    let status = response.status;
    let framing = write::Framing {
        version: settings.protocol,
        request_version: Version::HTTP_11,
        head_only: false,
        keep_alive: false,
    };
    let written = write_response(stream, response, framing, &mut settings.pace()).await;
    service.log(
        peer,
        &rejected.request_line,
        status,
        written.as_ref().ok().map(|w| w.body_bytes),
    );
    if written.is_ok() && status != StatusCode::REQUEST_TIMEOUT {
        linger_close(stream).await;
    }
}

/// How discarding an unread request body went.
enum Drained {
    /// The body ended; the connection can continue.
    Done,
    /// Longer than is worth reading: the connection closes after the
    /// response.
    TooLong,
    /// Not over within its deadline: the connection closes after the
    /// response.
    TimedOut,
    /// Malformed: this is the answer, and the connection closes.
    Refused(HttpError),
    /// The client went away.
    Lost,
}

/// Reads and discards the rest of a request body, within one I/O timeout
/// for the whole body (so a trickled body cannot hold the connection).
async fn drain<S: Transport>(
    stream: &mut S,
    buf: &mut BytesMut,
    decoder: &mut BodyDecoder,
    io_timeout: Duration,
) -> Drained {
    let deadline = Instant::now() + io_timeout;
    let mut drained = 0u64;
    loop {
        match decoder.decode(buf) {
            Ok(Decoded::End) => return Drained::Done,
            Ok(Decoded::Data(bytes)) => {
                drained += bytes.len() as u64;
                if drained > MAX_DRAIN {
                    decoder.fail("body too long to discard");
                    return Drained::TooLong;
                }
            }
            Ok(Decoded::NeedMore) => {
                buf.reserve(8192);
                match timeout_at(deadline, stream.read_buf(buf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    Ok(_) => return Drained::Lost,
                    Err(_) => {
                        decoder.fail("body timed out");
                        return Drained::TimedOut;
                    }
                }
            }
            Err(error) => return Drained::Refused(HttpError::BadRequest(error.to_string())),
        }
    }
}

/// Shuts the write side, then reads and discards briefly so that unread
/// request bytes do not turn the close into a reset.
pub async fn linger_close<S: Transport>(stream: &mut S) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; 8192];
    let mut discarded = 0usize;
    while discarded < (1 << 20) {
        match timeout_at(deadline, stream.read(&mut scratch)).await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => return,
        }
    }
}
