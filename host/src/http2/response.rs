//! A service response on an HTTP/2 stream: hyper's response head and a
//! body that feeds hyper's DATA frames.
//!
//! The framing rules are HTTP/1's, stated for HTTP/2: `Server` and `Date`
//! on every response (a backend's own win), `Content-Length` wherever the
//! length is known, none of the connection-specific fields RFC 9113
//! §8.2.2 forbids, no content for HEAD, 1xx, 204 and 304. hyper asks for
//! the next piece only when the stream's flow-control window has room, so
//! a stream body never runs ahead of its client. A producer that fails
//! mid-body resets the stream, so that the client cannot take a truncated
//! body for a whole one. The access log line is written when the body is
//! done with: with its size if it went out whole, without if not.
//!
//! A client that stops reading (its window shut, or its socket) would
//! leave a stream waiting for room forever, holding the file or the guest
//! behind it, and hyper does not ask the body while it waits. So each
//! file or stream body is on its connection's [`Watchlist`]: the time a
//! body waits between handing hyper a piece and being asked for the next
//! is the client's, measured against the same minimum rate and I/O
//! timeout as an HTTP/1 write. A body that falls behind is cancelled: what
//! it held is dropped at once, and the stream is reset when hyper next
//! asks.

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, StatusCode, header};
use http_body::{Frame, SizeHint};

use crate::pace::{Pace, Stalled};
use crate::response::{Body, BodyStream, Response, SERVER};

/// The most bytes of a file read for one piece of a body.
const FILE_PIECE: u64 = 64 * 1024;

/// Fields that belong to an HTTP/1 connection, never to an HTTP/2
/// stream (RFC 9113 §8.2.2).
const CONNECTION_FIELDS: [HeaderName; 5] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Records the response when its body is done with: the body bytes sent
/// if it went out whole.
pub type Logger = Box<dyn FnOnce(StatusCode, Option<u64>) + Send>;

/// A response body on its way out through hyper.
pub struct Outgoing {
    flow: Arc<Flow>,
    status: StatusCode,
    sent: u64,
    failed: bool,
    log: Option<Logger>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("status", &self.status)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

type NextPiece = Pin<Box<dyn Future<Output = (BodyStream, io::Result<Option<Bytes>>)> + Send>>;

enum Content {
    Done,
    /// Given up on: the client did not keep up.
    Cancelled(Stalled),
    Bytes(Bytes),
    File {
        file: File,
        offset: u64,
        left: u64,
    },
    Stream(Option<BodyStream>, Option<NextPiece>),
}

/// `response` as hyper's response to a request (`head_only` for HEAD),
/// its body watched, if it is long, under `pace` on `watchlist`.
pub fn convert(
    response: Response,
    head_only: bool,
    log: Logger,
    pace: Pace,
    watchlist: &Watchlist,
) -> http::Response<Outgoing> {
    let Response {
        status,
        mut headers,
        body,
    } = response;
    for name in &CONNECTION_FIELDS {
        headers.remove(name);
    }
    let body = match body {
        Body::Unframed(_) => {
            // An nph- script's output is an HTTP/1 response, status line
            // and all: it cannot be carried by a stream.
            crate::log::line(
                "wasmhttpd: an nph- script's output cannot be sent over HTTP/2; answered 502",
            );
            let mut error =
                crate::error::HttpError::Upstream(StatusCode::BAD_GATEWAY).to_response();
            let head = (error.status, std::mem::take(&mut error.headers));
            return convert_parts(head, error.body, head_only, log, pace, watchlist);
        }
        body => body,
    };
    convert_parts((status, headers), body, head_only, log, pace, watchlist)
}

fn convert_parts(
    (status, mut headers): (StatusCode, http::HeaderMap),
    body: Body,
    head_only: bool,
    log: Logger,
    pace: Pace,
    watchlist: &Watchlist,
) -> http::Response<Outgoing> {
    let allows_body = !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED);
    if allows_body && let Some(len) = body.known_len() {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    headers
        .entry(header::SERVER)
        .or_insert(HeaderValue::from_static(SERVER));
    if !headers.contains_key(header::DATE) {
        headers.insert(header::DATE, crate::clock::http_date());
    }
    let content = if !allows_body || head_only {
        Content::Done
    } else {
        match body {
            Body::Empty | Body::Unframed(_) => Content::Done,
            Body::Bytes(bytes) => Content::Bytes(bytes),
            Body::File { file, offset, len } => Content::File {
                file,
                offset,
                left: len,
            },
            Body::Stream(stream) => Content::Stream(Some(stream), None),
        }
    };
    let long = matches!(content, Content::File { .. } | Content::Stream(..));
    let flow = Arc::new(Flow(Mutex::new(FlowState {
        content,
        pace,
        waiting_since: None,
    })));
    if long {
        watchlist.add(&flow);
    }
    let mut response = http::Response::new(Outgoing {
        flow,
        status,
        sent: 0,
        failed: false,
        log: Some(log),
    });
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

impl http_body::Body for Outgoing {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let mut state = this.flow.lock();
        let state = &mut *state;
        if let Some(since) = state.waiting_since.take() {
            state.pace.record(since.elapsed(), 0);
        }
        let piece = match &mut state.content {
            Content::Done => return Poll::Ready(None),
            Content::Cancelled(why) => Err(io::Error::from(*why)),
            Content::Bytes(bytes) => {
                let bytes = std::mem::take(bytes);
                state.content = Content::Done;
                Ok(Some(bytes))
            }
            Content::File { file, offset, left } => {
                let want = (*left).min(FILE_PIECE) as usize;
                let mut buf = BytesMut::zeroed(want);
                match file.read_at(&mut buf, *offset) {
                    Ok(0) => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while sending",
                    )),
                    Ok(n) => {
                        buf.truncate(n);
                        *offset += n as u64;
                        *left -= n as u64;
                        if *left == 0 {
                            state.content = Content::Done;
                        }
                        Ok(Some(buf.freeze()))
                    }
                    Err(error) => Err(error),
                }
            }
            Content::Stream(stream, pending) => {
                if pending.is_none() {
                    let Some(mut body) = stream.take() else {
                        return Poll::Ready(None);
                    };
                    *pending = Some(Box::pin(async move {
                        let next = body.next().await;
                        (body, next)
                    }));
                }
                let Some(future) = pending.as_mut() else {
                    return Poll::Ready(None);
                };
                let (body, next) = match future.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(done) => done,
                };
                *pending = None;
                if matches!(next, Ok(Some(_))) {
                    *stream = Some(body);
                }
                next
            }
        };
        match piece {
            Ok(Some(bytes)) => {
                this.sent += bytes.len() as u64;
                state.pace.moved(bytes.len() as u64);
                if !matches!(state.content, Content::Done) {
                    // Until hyper asks again, the stream waits on the client.
                    state.waiting_since = Some(Instant::now());
                }
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Ok(None) => {
                state.content = Content::Done;
                Poll::Ready(None)
            }
            Err(error) => {
                state.content = Content::Done;
                this.failed = true;
                Poll::Ready(Some(Err(error)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.flow.lock().content, Content::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.flow.lock().content {
            Content::Done => SizeHint::with_exact(0),
            Content::Bytes(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Content::File { left, .. } => SizeHint::with_exact(*left),
            Content::Stream(..) | Content::Cancelled(_) => SizeHint::default(),
        }
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        let whole = !self.failed && matches!(self.flow.lock().content, Content::Done);
        if let Some(log) = self.log.take() {
            log(self.status, whole.then_some(self.sent));
        }
    }
}

/// A body's content and how fast its client takes it, shared by the
/// stream and its connection's [`Watchlist`].
struct Flow(Mutex<FlowState>);

struct FlowState {
    content: Content,
    pace: Pace,
    /// Since when the body has waited for hyper to ask for more.
    waiting_since: Option<Instant>,
}

impl Flow {
    fn lock(&self) -> MutexGuard<'_, FlowState> {
        // The state stays whole whatever panicked while it was held.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cancels the body if its client has fallen behind; whether it is
    /// cancelled.
    fn check(&self, now: Instant) -> bool {
        let mut state = self.lock();
        if matches!(state.content, Content::Cancelled(_)) {
            return true;
        }
        let Some(since) = state.waiting_since else {
            return false;
        };
        let (allowed, why) = state.pace.allowance();
        if now.saturating_duration_since(since) <= allowed {
            return false;
        }
        // Dropping the content closes the file, or tells the guest or the
        // script that nobody reads what it writes.
        state.content = Content::Cancelled(why);
        true
    }
}

/// The long bodies of one connection, looked at by [`Watchlist::sweep`].
#[derive(Default)]
pub struct Watchlist(Mutex<Vec<Weak<Flow>>>);

impl std::fmt::Debug for Watchlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchlist").finish_non_exhaustive()
    }
}

impl Watchlist {
    fn add(&self, flow: &Arc<Flow>) {
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        list.push(Arc::downgrade(flow));
    }

    /// Cancels every body whose client has fallen behind, forgets those
    /// gone, and counts the cancelled ones still held by hyper.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut cancelled = 0;
        list.retain(|flow| match flow.upgrade() {
            Some(flow) => {
                cancelled += usize::from(flow.check(now));
                true
            }
            None => false,
        });
        cancelled
    }
}
