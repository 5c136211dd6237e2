//! The wasi:http executor: a component exporting
//! `wasi:http/incoming-handler@0.2.x` (the `wasi:http/proxy` world), one
//! fresh instance per request, or, when the sidecar asks for reuse, an
//! instance kept from an earlier request ([`Pool`]): one whose request
//! ended cleanly (no trap, no limit reached, within its time, its response
//! body finished and read to its end), up to `requests` requests each.
//!
//! The request reaches the guest as a wasi:http `incoming-request`: method,
//! the path and query as the client sent them, `http` scheme (`https`
//! over TLS), the `Host`
//! header (or the address the client connected to) as authority, the
//! header fields except the connection's own (`Connection`, `Keep-Alive`,
//! `TE`, `Transfer-Encoding`, `Upgrade`), and the body, decoded. Fields
//! that the server sets (a client's own are dropped) say what wasi:http
//! cannot:
//! - `wasmhttpd-script-name` and `wasmhttpd-path-info`: the route and the
//!   rest of the path, decoded, then percent-encoded whole (CGI's
//!   `SCRIPT_NAME` and `PATH_INFO`);
//! - `wasmhttpd-client-addr` and `wasmhttpd-server-addr`: the client's
//!   `ip:port`, and the one it connected to;
//! - `wasmhttpd-request-line`: the request line as sent (the version is
//!   nowhere else); for HTTP/2, whose semantics are HTTP/1.1's, the line
//!   made from its parts says `HTTP/1.1`;
//! - `wasmhttpd-field-names`: the names of the fields passed on, in the
//!   client's order and case, comma-separated (wasi:http lower-cases them).
//!
//! These let Python's http.server run inside a guest exactly as it runs
//! behind a socket (see `pybuild`).
//!
//! Bodies stream both ways, bounded:
//! - the request body is passed on as the guest reads it, through a
//!   channel of a few chunks (a client is never read faster than the guest
//!   takes its body); past the request-body limit the guest's stream fails,
//!   and the client gets 413 if no response has begun;
//! - the response is held until its body ends or passes the commit
//!   threshold (a guest that fails before then gets a clean error page),
//!   then streams with backpressure up to the response-size limit. While
//!   the client is still sending a body the guest is reading, the response
//!   waits for the upload to end (held in memory up to the request-body
//!   limit): the HTTP/1 connection carries one direction at a time.
//!
//! The guest's stdout and stderr go to the log; its environment is what
//! the sidecar grants; outbound requests pass [`Outbound`]. Time, memory
//! and trap handling are the CGI-over-WASI executor's (see [`judge`]).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use anyhow::anyhow;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use wasmtime::Store;
use wasmtime::component::Component;
use wasmtime_wasi::cli::AsyncStdoutStream;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::{Proxy as Instance, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::engine::Runtime;
use super::manifest::Reuse;
use super::outbound::Outbound;
use super::reuse::Pool;
use super::store::{ComponentState, new_store, set_deadline};
use super::wagi::{Invocation, judge, sandbox};
use crate::budget::Share;
use crate::cgi::output::{AbortOnDrop, COMMIT_THRESHOLD, Output};
use crate::cgi::response::SET_BY_SERVER;
use crate::cgi::stderr::StderrLog;
use crate::error::HttpError;
use crate::listing::percent_encode;
use crate::request::Request;
use crate::request_body::RequestBody;
use crate::response::{self, Failure, Outcome};

/// Request body chunks in flight to the guest.
const UPLOAD_CHUNKS: usize = 4;

/// A component pre-linked against WASI and wasi:http, and its instances
/// kept for reuse.
pub struct Proxy {
    pre: ProxyPre<ComponentState>,
    pool: Arc<Pool<Warm>>,
}

/// An instance that served a request cleanly, with what it holds.
struct Warm {
    store: Store<ComponentState>,
    instance: Instance,
    /// Requests it has served.
    served: u32,
    /// Its memory cap's share of the guest-memory budget.
    memory: Share,
    /// The slot it holds between pool and task: its running slot until it
    /// is parked, its idle slot until it runs again.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").finish_non_exhaustive()
    }
}

/// The guest's answer: its response, or the error code it set.
type Head = Result<http::Response<HyperOutgoingBody>, ErrorCode>;

impl Proxy {
    /// Links `component` once; a missing import is named in the error.
    pub fn prepare(runtime: &Runtime, component: &Component) -> anyhow::Result<Proxy> {
        let pre = ProxyPre::new(runtime.link_component(component)?)
            .map_err(|e| anyhow!("cannot link: {e:#}"))?;
        Ok(Proxy {
            pre,
            pool: Arc::default(),
        })
    }

    /// How many instances wait for a request.
    pub fn parked(&self) -> usize {
        self.pool.parked()
    }

    /// Answers `request`: starts an instance, streams the body to it and
    /// its response back.
    pub async fn serve(
        &self,
        runtime: &Arc<Runtime>,
        request: &Request,
        body: &mut RequestBody<'_>,
        run: Invocation<'_>,
        outbound: &Outbound,
    ) -> Result<Output, HttpError> {
        let limits = run.limits;
        body.check_declared(limits.request_body)
            .map_err(|e| e.to_http_error())?;
        let (upload, guest_body) = match body.declared_length() {
            Some(0) => (None, GuestBody::empty()),
            declared => {
                let (sender, receiver) = mpsc::channel(UPLOAD_CHUNKS);
                (Some(sender), GuestBody::new(receiver, declared))
            }
        };
        let incoming = incoming_request(request, &run, guest_body)?;
        let instance = match limits.reuse.and_then(|reuse| self.pool.take(&reuse)) {
            Some((mut warm, idle_slot)) => {
                warm.slot = Some(idle_slot);
                Ready::Warm(warm)
            }
            None => Ready::Fresh(runtime.reserve_memory(limits.memory)?),
        };
        let held = runtime.budgets().bodies.empty_share();
        let (head_sender, head) = oneshot::channel();
        let (handover, handed) = oneshot::channel();
        let (outcome, producer) = self
            .start(
                runtime,
                &run,
                outbound,
                incoming,
                instance,
                Ends {
                    head: head_sender,
                    handover,
                },
            )
            .map_err(|error| {
                crate::log::line(format!("{} {error:#}", run.tag));
                HttpError::Upstream(StatusCode::INTERNAL_SERVER_ERROR)
            })?;
        let guard = AbortOnDrop::new(producer);
        let mut exchange = Exchange {
            upload: upload.map(|sender| Upload {
                body,
                sender,
                sent: 0,
                limit: limits.request_body,
            }),
            head,
            answer: None,
            buffered: BytesMut::new(),
            held,
            ended: false,
            parking: limits.reuse.map(|reuse| Parking {
                handed,
                pool: Arc::clone(&self.pool),
                reuse,
                idle_slots: Arc::clone(runtime.idle_slots()),
            }),
        };
        let result = exchange.run(limits.response).await;
        finish(exchange, result, outcome, guard, run.tag, limits.response).await
    }

    /// Runs the request in its own task, on `ready`'s instance (or a new
    /// one). An instance that may serve again is handed over to whoever
    /// reads the response, who parks it once the response was read to its
    /// end ([`Parking`]).
    fn start(
        &self,
        runtime: &Arc<Runtime>,
        run: &Invocation<'_>,
        outbound: &Outbound,
        incoming: http::Request<GuestBody>,
        ready: Ready,
        ends: Ends,
    ) -> anyhow::Result<(Outcome, tokio::task::AbortHandle)> {
        let Ends { head, handover } = ends;
        let timeout = run.limits.timeout;
        let memory = run.limits.memory;
        // Taken from the pool, an instance keeps its idle slot until it has
        // a running one, so it is always counted in one of the two.
        let (mut store, mut instance, served, memory_share, idle_slot) = match ready {
            Ready::Warm(warm) => (
                warm.store,
                Some(warm.instance),
                warm.served,
                warm.memory,
                warm.slot,
            ),
            Ready::Fresh(share) => {
                let mut wasi = sandbox(run)?;
                wasi.envs(&run.grants.env)
                    .stdout(AsyncStdoutStream::new(4096, StderrLog::new(run.tag)));
                let state = ComponentState::new(wasi.build(), outbound, run.limits.host_caps());
                let store = new_store(runtime.engine(), state, Instant::now() + timeout);
                (store, None, 0, share, None)
            }
        };
        let reuse = run.limits.reuse.filter(|r| served + 1 < r.requests);
        let pre = self.pre.clone();
        let slots = Arc::clone(runtime.slots());
        let tag = run.tag.to_string();
        let (report, outcome) = oneshot::channel();
        let scheme = if incoming.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let task = tokio::spawn(async move {
            let Ok(slot) = slots.acquire_owned().await else {
                return;
            };
            drop(idle_slot);
            // Its time starts now, not while it waited for a slot.
            set_deadline(&mut store, Instant::now() + timeout);
            let handle = async {
                let proxy = match instance.take() {
                    Some(proxy) => proxy,
                    None => pre.instantiate_async(&mut store).await?,
                };
                let proxy = instance.insert(proxy);
                let request = store
                    .data_mut()
                    .http()
                    .new_incoming_request(scheme, incoming)?;
                let response = store.data_mut().http().new_response_outparam(head)?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, request, response)
                    .await
            };
            let result = tokio::time::timeout(timeout, handle).await;
            // Only a guest that returned may serve again (one that exited,
            // even with status 0, has ended).
            let returned = matches!(result, Ok(Ok(())));
            let mut verdict = judge(result, timeout, memory);
            let held = Held::of(&mut store.data_mut().table);
            // A response body the guest never finished (it exited, or kept
            // the handle) would read as complete once its store is gone:
            // wasmtime ends a body whose finisher is dropped as if finished.
            if verdict.is_ok() && held.open_body {
                verdict = Err(Failure {
                    status: StatusCode::BAD_GATEWAY,
                    reason: "ended without finishing its response body".into(),
                });
            }
            if let Err(failure) = &verdict {
                crate::log::line(format!("{tag} {}", failure.reason));
            }
            // An instance near its memory cap is retired rather than kept
            // to fail a later request (a guest that leaks, as
            // componentize-py 0.25 leaks every byte written to a stream).
            let used = store.data_mut().caps.memory_used();
            let roomy = used <= memory / 4 * 3;
            if reuse.is_some() && verdict.is_ok() && !roomy {
                crate::log::line(format!(
                    "{tag} instance retired: it uses {} of its {} MiB of memory",
                    used >> 20,
                    memory >> 20
                ));
            }
            // One that kept a handle of its request or response (in a global,
            // say) would hold the response open while parked.
            let done = returned && !held.request_or_response;
            let (Some(_), Some(instance), true, true) = (reuse, instance, done, roomy) else {
                // The store goes, and the response body is closed, before
                // the outcome is reported.
                drop(store);
                let _ = report.send(verdict);
                return;
            };
            // Handed over before the outcome is reported: the reader of the
            // response has it by the time it learns the outcome. It keeps
            // its running slot until it is parked (or dropped).
            let _ = handover.send(Warm {
                store,
                instance,
                served: served + 1,
                memory: memory_share,
                slot: Some(slot),
            });
            let _ = report.send(verdict);
        });
        Ok((outcome, task.abort_handle()))
    }
}

/// What a guest still holds once its call has ended, read in one pass
/// over its resource table.
struct Held {
    /// An outgoing body still open: the response's (or, in a guest that
    /// left one unfinished, an outbound request's, which is as wrong).
    open_body: bool,
    /// Any handle of its request or response.
    request_or_response: bool,
}

impl Held {
    fn of(table: &mut wasmtime::component::ResourceTable) -> Held {
        use wasmtime_wasi_http::p2::body::{HostIncomingBody, HostOutgoingBody};
        use wasmtime_wasi_http::p2::types::{
            HostIncomingRequest, HostOutgoingResponse, HostResponseOutparam,
        };
        let mut held = Held {
            open_body: false,
            request_or_response: false,
        };
        for entry in table.iter_mut() {
            let body = entry.is::<HostOutgoingBody>();
            held.open_body |= body;
            held.request_or_response |= body
                || entry.is::<HostResponseOutparam>()
                || entry.is::<HostOutgoingResponse>()
                || entry.is::<HostIncomingRequest>()
                || entry.is::<HostIncomingBody>();
        }
        held
    }
}

/// Where the instance's answer goes, and the instance itself when it may
/// serve again.
struct Ends {
    head: oneshot::Sender<Head>,
    handover: oneshot::Sender<Warm>,
}

/// What the reader of a response parks its instance with, once the
/// response was read to its end: the request is then over, cleanly. A
/// response not read to its end drops this, and the instance with it.
struct Parking {
    handed: oneshot::Receiver<Warm>,
    pool: Arc<Pool<Warm>>,
    reuse: Reuse,
    idle_slots: Arc<tokio::sync::Semaphore>,
}

impl Parking {
    /// Parks the instance, once it has been handed over (it is, before the
    /// outcome is reported); `Pending` until then.
    fn poll_park(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match Pin::new(&mut self.handed).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(mut warm)) => {
                // Its running slot goes as it takes an idle one.
                let slot = warm.slot.take();
                self.pool.park(warm, &self.reuse, &self.idle_slots);
                drop(slot);
                Poll::Ready(())
            }
            // Not to be reused.
            Poll::Ready(Err(_)) => Poll::Ready(()),
        }
    }

    async fn park(mut self) {
        std::future::poll_fn(|cx| self.poll_park(cx)).await;
    }
}

/// The instance a request runs on.
enum Ready {
    /// A parked one.
    Warm(Warm),
    /// A new one, with its memory cap's share of the budget.
    Fresh(Share),
}

/// The `http::Request` the guest receives.
fn incoming_request(
    request: &Request,
    run: &Invocation<'_>,
    body: GuestBody,
) -> Result<http::Request<GuestBody>, HttpError> {
    let authority = request
        .authority()
        .and_then(|host| http::uri::Authority::try_from(host).ok())
        .map_or_else(|| request.local.to_string(), |a| a.to_string());
    let mut path_and_query = request.path().to_vec();
    if let Some(query) = request.query() {
        path_and_query.push(b'?');
        path_and_query.extend_from_slice(query);
    }
    let uri = http::Uri::builder()
        .scheme(if request.secure { "https" } else { "http" })
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| HttpError::BadRequest("Bad request path".into()))?;
    let mut headers = request.headers.clone();
    for hop in HOP_BY_HOP {
        headers.remove(hop);
    }
    for name in SERVER_FIELDS {
        headers.remove(name);
    }
    let mut add = |name: &'static str, value: String| {
        if let Ok(value) = http::HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    };
    add(SCRIPT_NAME, percent_encode(run.script_name.as_bytes()));
    add(PATH_INFO, percent_encode(run.path_info.as_bytes()));
    let canonical = |addr: std::net::SocketAddr| {
        std::net::SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
    };
    add(CLIENT_ADDR, canonical(request.peer));
    add(SERVER_ADDR, canonical(request.local));
    let (line, names) = as_sent(request);
    for (name, value) in [(REQUEST_LINE, line), (FIELD_NAMES, names)] {
        if let Ok(value) = http::HeaderValue::from_maybe_shared(value) {
            headers.insert(name, value);
        }
    }
    let mut incoming = http::Request::new(body);
    *incoming.method_mut() = request.method.clone();
    *incoming.uri_mut() = uri;
    *incoming.headers_mut() = headers;
    Ok(incoming)
}

/// The request line as sent, and the names of the fields the guest gets in
/// the client's order and case. A request that did not arrive as HTTP/1
/// text gets a line made from its parts, and no names.
fn as_sent(request: &Request) -> (Bytes, Bytes) {
    let mut lines = request.head.split(|&b| b == b'\n');
    let Some(first) = lines.next().filter(|line| !line.is_empty()) else {
        // HTTP/2's semantics are HTTP/1.1's; a handler written for HTTP/1
        // (Python's refuses any version from 2.0 on with 505) is told so.
        let version = request.version.min(http::Version::HTTP_11);
        let line = format!(
            "{} {} {version:?}",
            request.method,
            String::from_utf8_lossy(&request.target),
        );
        return (Bytes::from(line), Bytes::new());
    };
    let line = request
        .head
        .slice_ref(first.strip_suffix(b"\r").unwrap_or(first));
    let mut names = Vec::with_capacity(request.headers.len() * 12);
    for field in lines {
        let Some(colon) = field.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &field[..colon];
        let passed_on = !HOP_BY_HOP
            .iter()
            .any(|hop| name.eq_ignore_ascii_case(hop.as_bytes()))
            && !SERVER_FIELDS
                .iter()
                .any(|own| name.eq_ignore_ascii_case(own.as_bytes()));
        if passed_on {
            if !names.is_empty() {
                names.push(b',');
            }
            names.extend_from_slice(name);
        }
    }
    (line, Bytes::from(names))
}

/// The connection's own fields, which the guest does not get.
const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// The fields the server sets.
const SERVER_FIELDS: [&str; 6] = [
    SCRIPT_NAME,
    PATH_INFO,
    CLIENT_ADDR,
    SERVER_ADDR,
    REQUEST_LINE,
    FIELD_NAMES,
];

/// Where the plugin is mounted (`SCRIPT_NAME`), percent-encoded.
const SCRIPT_NAME: &str = "wasmhttpd-script-name";
/// The rest of the path (`PATH_INFO`), percent-encoded.
const PATH_INFO: &str = "wasmhttpd-path-info";
/// The client's `ip:port`.
const CLIENT_ADDR: &str = "wasmhttpd-client-addr";
/// The `ip:port` the client connected to.
const SERVER_ADDR: &str = "wasmhttpd-server-addr";
/// The request line as sent.
const REQUEST_LINE: &str = "wasmhttpd-request-line";
/// The names of the fields passed on, as sent.
const FIELD_NAMES: &str = "wasmhttpd-field-names";

/// The request body as the guest reads it: chunks from the connection, or
/// the error that ended it.
struct GuestBody {
    chunks: Option<mpsc::Receiver<Result<Bytes, wasmtime_wasi_http::Error>>>,
    declared: Option<u64>,
}

impl GuestBody {
    fn empty() -> GuestBody {
        GuestBody {
            chunks: None,
            declared: Some(0),
        }
    }

    fn new(
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
struct Upload<'b, 'c> {
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
struct Exchange<'b, 'c> {
    upload: Option<Upload<'b, 'c>>,
    head: oneshot::Receiver<Head>,
    /// The response's head and the rest of its body, once set.
    answer: Option<(http::response::Parts, HyperOutgoingBody)>,
    /// Response body read so far.
    buffered: BytesMut,
    /// Its share of the server's budget for buffered bodies.
    held: Share,
    /// Whether the response body has ended.
    ended: bool,
    /// Where the instance goes once the response was read to its end.
    parking: Option<Parking>,
}

/// Why the exchange stopped before a response could be sent.
enum Stop {
    /// The guest ended (or failed) without setting a response.
    NoResponse,
    /// It set an error code instead.
    ErrorCode(ErrorCode),
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

impl Exchange<'_, '_> {
    /// Passes the upload on and reads the response until the upload is
    /// over and the response is whole or past the commit threshold.
    async fn run(&mut self, limit: u64) -> Result<(), Stop> {
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
                    Ok(Err(code)) => return Err(Stop::ErrorCode(code)),
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
async fn next_frame(
    answer: &mut Option<(http::response::Parts, HyperOutgoingBody)>,
) -> Option<Result<Bytes, String>> {
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
async fn finish(
    exchange: Exchange<'_, '_>,
    result: Result<(), Stop>,
    outcome: Outcome,
    guard: AbortOnDrop,
    tag: &str,
    limit: u64,
) -> Result<Output, HttpError> {
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
        Err(Stop::ErrorCode(code)) => {
            let why = format!("responded with an error: {code:?}");
            return failed(StatusCode::BAD_GATEWAY, Some(why));
        }
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
        if let Some(parking) = parking {
            parking.park().await;
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
struct BodyReader {
    body: HyperOutgoingBody,
    chunk: Bytes,
    ended: bool,
    parking: Option<Parking>,
}

impl BodyReader {
    fn new(body: HyperOutgoingBody, parking: Option<Parking>) -> BodyReader {
        BodyReader {
            body,
            chunk: Bytes::new(),
            ended: false,
            parking,
        }
    }
}

impl AsyncRead for BodyReader {
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
