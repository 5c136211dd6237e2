//! One request's exchange with a wasi:http guest (0.2 or 0.3), whatever
//! runs it: the request body passed on as the guest reads it, and the
//! response read back, bounded.
//!
//! - The request body goes through a channel of a few chunks (a client is
//!   never read faster than the guest takes its body); past the
//!   request-body limit the guest's stream fails, and the client gets 413
//!   if no response has begun.
//! - The response is held until its body ends or passes the commit
//!   threshold (a guest that fails before then gets a clean error page),
//!   then streams with backpressure up to the response-size limit. While
//!   the client is still sending a body the guest is reading, the response
//!   waits for the upload to end (held in memory up to the request-body
//!   limit): the HTTP/1 connection carries one direction at a time.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{mpsc, oneshot};

use crate::budget::Share;
use crate::cgi::output::{AbortOnDrop, COMMIT_THRESHOLD, Output};
use crate::cgi::response::SET_BY_SERVER;
use crate::error::HttpError;
use crate::request_body::RequestBody;
use crate::response::{self, Failure, Outcome};

/// Request body chunks in flight to the guest.
const UPLOAD_CHUNKS: usize = 4;

/// What a guest answers instead of a response, as the client is told.
pub trait Refusal {
    /// The status and the reason for the log.
    fn failure(self) -> Failure;
}

impl Refusal for Failure {
    fn failure(self) -> Failure {
        self
    }
}

/// Where an instance goes once its response was read to its end.
pub trait Park: Send {
    /// Parks it; `Pending` until it can be.
    fn poll_park(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// The request body's way to the guest: what passes it on (none when it is
/// empty), and what the guest reads.
pub fn upload<'b, 'c>(
    body: &'b mut RequestBody<'c>,
    limit: u64,
) -> (Option<Upload<'b, 'c>>, GuestBody) {
    match body.declared_length() {
        Some(0) => (None, GuestBody::empty()),
        declared => {
            let (sender, receiver) = mpsc::channel(UPLOAD_CHUNKS);
            let upload = Upload {
                body,
                sender,
                sent: 0,
                limit,
            };
            (Some(upload), GuestBody::new(receiver, declared))
        }
    }
}

/// The request body as the guest reads it: chunks from the connection, or
/// the error that ended it.
pub struct GuestBody {
    chunks: Option<mpsc::Receiver<Result<Bytes, wasmtime_wasi_http::Error>>>,
    declared: Option<u64>,
}

impl GuestBody {
    /// A body with nothing in it.
    pub fn empty() -> GuestBody {
        GuestBody {
            chunks: None,
            declared: Some(0),
        }
    }

    /// A body made of `chunks`, `declared` long if its length is known.
    pub fn new(
        chunks: mpsc::Receiver<Result<Bytes, wasmtime_wasi_http::Error>>,
        declared: Option<u64>,
    ) -> GuestBody {
        GuestBody {
            chunks: Some(chunks),
            declared,
        }
    }
}

impl Body for GuestBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let Some(chunks) = self.chunks.as_mut() else {
            return Poll::Ready(None);
        };
        chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.declared {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// The part of the request body still to pass on, and where to.
pub struct Upload<'b, 'c> {
    body: &'b mut RequestBody<'c>,
    sender: mpsc::Sender<Result<Bytes, wasmtime_wasi_http::Error>>,
    sent: u64,
    limit: u64,
}

/// How passing on one chunk went.
enum Step {
    /// More to come.
    More,
    /// The body ended, or the guest stopped reading it.
    Done,
    /// The client's body could not be read or was too large: the guest's
    /// stream failed, and this is what the client is told.
    Failed(HttpError),
}

impl Upload<'_, '_> {
    /// Passes on the next chunk once the guest has room for it.
    async fn step(&mut self) -> Step {
        let Ok(permit) = self.sender.reserve().await else {
            return Step::Done;
        };
        match self.body.chunk().await {
            Ok(None) => Step::Done,
            Ok(Some(chunk)) => {
                self.sent += chunk.len() as u64;
                if self.sent > self.limit {
                    permit.send(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(Some(
                        self.sent,
                    ))));
                    return Step::Failed(self.body.too_large(self.limit).to_http_error());
                }
                permit.send(Ok(chunk));
                Step::More
            }
            Err(error) => {
                permit.send(Err(wasmtime_wasi_http::Error::ConnectionTerminated));
                Step::Failed(error.to_http_error())
            }
        }
    }
}

/// One request's exchange with the guest, up to the point where the
/// response can be handed to the connection.
pub struct Exchange<'b, 'c, B, E> {
    upload: Option<Upload<'b, 'c>>,
    head: oneshot::Receiver<Result<http::Response<B>, E>>,
    /// The response's head and the rest of its body, once set.
    answer: Option<(http::response::Parts, B)>,
    /// Response body read so far.
    buffered: BytesMut,
    /// Its share of the server's budget for buffered bodies.
    held: Share,
    /// Whether the response body has ended.
    ended: bool,
    /// Where the instance goes once the response was read to its end.
    parking: Option<Box<dyn Park>>,
}

/// Why the exchange stopped before a response could be sent.
pub enum Stop {
    /// The guest ended (or failed) without setting a response.
    NoResponse,
    /// It refused, or failed, instead.
    Refused(Failure),
    /// It aborted its response body.
    BodyFailed(String),
    /// The response outgrew its limit.
    TooLarge,
    /// Its status cannot end a response (1xx, or past 599).
    BadStatus(StatusCode),
    /// Holding more of it would exceed the server's budget for buffered
    /// bodies.
    Overloaded,
    /// The client's body failed.
    Client(HttpError),
}

impl<'b, 'c, B, E> Exchange<'b, 'c, B, E>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
    E: Refusal,
{
    /// An exchange that passes `upload` on and waits for `head`; buffered
    /// response bytes are counted in `held`. The response's reader parks
    /// the instance with `parking` once it was read to its end.
    pub fn new(
        upload: Option<Upload<'b, 'c>>,
        head: oneshot::Receiver<Result<http::Response<B>, E>>,
        held: Share,
        parking: Option<Box<dyn Park>>,
    ) -> Self {
        Exchange {
            upload,
            head,
            answer: None,
            buffered: BytesMut::new(),
            held,
            ended: false,
            parking,
        }
    }

    /// Passes the upload on and reads the response until the upload is
    /// over and the response is whole or past the commit threshold.
    pub async fn run(&mut self, limit: u64) -> Result<(), Stop> {
        loop {
            let uploading = self.upload.is_some();
            let head_pending = self.answer.is_none();
            if !uploading
                && !head_pending
                && (self.ended || self.buffered.len() >= COMMIT_THRESHOLD)
            {
                return Ok(());
            }
            // While the upload goes on, the response is held up to the
            // upload's own limit; past that it waits.
            let room = match &self.upload {
                Some(upload) => {
                    (self.buffered.len() as u64) < upload.limit.max(COMMIT_THRESHOLD as u64)
                }
                None => true,
            };
            let reading = !head_pending && !self.ended && room;
            tokio::select! {
                head = &mut self.head, if head_pending => match head {
                    Ok(Ok(response)) if !response::is_final_status(response.status()) => {
                        return Err(Stop::BadStatus(response.status()));
                    }
                    Ok(Ok(response)) => {
                        let (parts, body) = response.into_parts();
                        self.answer = Some((parts, body));
                    }
                    Ok(Err(refusal)) => return Err(Stop::Refused(refusal.failure())),
                    Err(_) => return Err(Stop::NoResponse),
                },
                frame = next_frame(&mut self.answer), if reading => match frame {
                    None => self.ended = true,
                    Some(Ok(data)) => {
                        if !self.held.grow(data.len() as u64) {
                            return Err(Stop::Overloaded);
                        }
                        self.buffered.extend_from_slice(&data);
                        if self.buffered.len() as u64 > limit {
                            return Err(Stop::TooLarge);
                        }
                    }
                    Some(Err(error)) => return Err(Stop::BodyFailed(error)),
                },
                step = step(&mut self.upload), if uploading => match step {
                    Step::More => {}
                    Step::Done => self.upload = None,
                    Step::Failed(error) => return Err(Stop::Client(error)),
                },
            }
        }
    }
}

async fn step(upload: &mut Option<Upload<'_, '_>>) -> Step {
    match upload {
        Some(upload) => upload.step().await,
        None => Step::Done,
    }
}

/// The next piece of data of the response body (trailers are dropped);
/// `None` at its end.
async fn next_frame<B>(
    answer: &mut Option<(http::response::Parts, B)>,
) -> Option<Result<Bytes, String>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let (_, body) = answer.as_mut()?;
    loop {
        match body.frame().await? {
            Ok(frame) => match frame.into_data() {
                Ok(data) if data.is_empty() => {}
                Ok(data) => return Some(Ok(data)),
                Err(_trailers) => {}
            },
            Err(error) => return Some(Err(error.to_string())),
        }
    }
}

/// The exchange's end → the output: the whole response, a streaming one,
/// or an error page (logged, with why, unless the guest's failure was).
pub async fn finish<B, E>(
    exchange: Exchange<'_, '_, B, E>,
    result: Result<(), Stop>,
    outcome: Outcome,
    guard: AbortOnDrop,
    tag: &str,
    limit: u64,
) -> Result<Output, HttpError>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Display,
{
    let failed = |status: StatusCode, why: Option<String>| {
        if let Some(why) = why {
            crate::log::line(format!("{tag} {why}"));
        }
        Err(HttpError::Upstream(status))
    };
    match result {
        Ok(()) => {}
        Err(Stop::Client(error)) => return Err(error),
        Err(Stop::TooLarge) => {
            let why = format!("response larger than {limit} bytes");
            return failed(StatusCode::INTERNAL_SERVER_ERROR, Some(why));
        }
        Err(Stop::NoResponse) => {
            // The guest let go of its response: it returned, or failed
            // (and its end says why).
            drop(exchange);
            if let Ok(Err(Failure { status, .. })) = outcome.await {
                return Err(HttpError::Upstream(status));
            }
            let why = "returned without setting a response".to_string();
            return failed(StatusCode::BAD_GATEWAY, Some(why));
        }
        Err(Stop::Overloaded) => return Err(HttpError::Overloaded("buffered bodies")),
        Err(Stop::BadStatus(status)) => {
            let why = format!(
                "responded with status {}, which cannot end a response (200-599 can)",
                status.as_u16()
            );
            return failed(StatusCode::BAD_GATEWAY, Some(why));
        }
        Err(Stop::Refused(Failure { status, reason })) => return failed(status, Some(reason)),
        Err(Stop::BodyFailed(error)) => {
            // A body that fails because its instance did (a trap, a limit)
            // is answered as that failure, which the instance's end logged.
            drop(exchange);
            if let Ok(Err(Failure { status, .. })) = outcome.await {
                return Err(HttpError::Upstream(status));
            }
            let why = format!("aborted its response body: {error}");
            return failed(StatusCode::BAD_GATEWAY, Some(why));
        }
    }
    let Exchange {
        answer,
        buffered,
        ended,
        parking,
        ..
    } = exchange;
    let Some((parts, body)) = answer else {
        return failed(StatusCode::BAD_GATEWAY, Some("no response".into()));
    };
    let status = parts.status;
    let headers = response_headers(parts.headers);
    let body = if ended {
        drop(body);
        match outcome.await {
            Ok(Ok(())) => {}
            Ok(Err(Failure { status, .. })) => return Err(HttpError::Upstream(status)),
            Err(_) => {
                return failed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Some("the instance vanished".into()),
                );
            }
        }
        if let Some(mut parking) = parking {
            std::future::poll_fn(|cx| parking.poll_park(cx)).await;
        }
        // The instance has ended: the guard, dropped, stops nothing.
        response::Body::Bytes(buffered.freeze())
    } else {
        let reader = BodyReader::new(body, parking);
        let stream = guard.stream(buffered.freeze(), reader, outcome, limit);
        response::Body::Stream(stream)
    };
    let mut response = response::Response::new(status, body);
    response.headers = headers;
    Ok(Output::Response(response))
}

/// The guest's header fields, less those the connection sets itself
/// (`Server` and `Date` are the guest's to set, as a Python handler does).
fn response_headers(mut headers: HeaderMap) -> HeaderMap {
    for name in SET_BY_SERVER {
        if name != "server" && name != "date" {
            headers.remove(name);
        }
    }
    // Hop-by-hop fields, which a wasi:http response may also carry.
    headers.remove(header::UPGRADE);
    headers.remove(header::TE);
    headers
}

/// A response body read as bytes; at its end, its instance is parked
/// before the end is reported.
struct BodyReader<B> {
    body: B,
    chunk: Bytes,
    ended: bool,
    parking: Option<Box<dyn Park>>,
}

impl<B> BodyReader<B> {
    fn new(body: B, parking: Option<Box<dyn Park>>) -> BodyReader<B> {
        BodyReader {
            body,
            chunk: Bytes::new(),
            ended: false,
            parking,
        }
    }
}

impl<B> AsyncRead for BodyReader<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.chunk.is_empty() {
            if self.ended {
                if let Some(parking) = self.parking.as_mut() {
                    std::task::ready!(parking.poll_park(cx));
                    self.parking = None;
                }
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => self.ended = true,
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Err(std::io::Error::other(error.to_string())));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.chunk = data;
                    }
                }
            }
        }
        let n = self.chunk.len().min(buf.remaining());
        buf.put_slice(&self.chunk.split_to(n));
        Poll::Ready(Ok(()))
    }
}
