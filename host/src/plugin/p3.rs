//! The wasi:http p3 executor: a component exporting
//! `wasi:http/handler@0.3.x` (the `wasi:http/service` world), whose
//! instances each serve several requests at once and are kept between
//! them.
//!
//! Instances are run by wasmtime-wasi-http's `ProxyHandler`, as `wasmtime
//! serve` runs them: one worker task per instance, whose store's event loop
//! runs every request the instance has taken, and keeps running after the
//! guest returned a response while its body streams. What this module adds
//! is the server's rules:
//! - an instance takes up to `[reuse] concurrent` requests at once and
//!   `requests` in all, and is dropped after `idle_secs` unused (the
//!   defaults are `wasmtime serve`'s: 16, 128, 1 s);
//! - it holds one of the runtime's instance slots and its memory cap's
//!   share of the guest-memory budget while it lives; the memory cap, and
//!   the host-side caps, are the instance's, shared by the requests it
//!   serves at once;
//! - each request has its own deadline, which covers its response body: a
//!   request past it is answered 504 (or, once its response has begun, cut
//!   short) and the instance takes no more requests and is dropped once the
//!   others are done, which ends the task that overran;
//! - a guest that blocks its instance (a loop that never yields) cannot be
//!   stopped alone: once the newest request on it is past its deadline the
//!   instance is dropped, and every request on it answered 504 if past its
//!   own deadline, 502 otherwise;
//! - an instance that traps is dropped with every request on it, each
//!   answered as the trap (500, or 504 for a deadline), and a response
//!   whose body was cut by it ends as a failure, never as a whole response.
//!
//! The request and its body reach the guest as they reach a wasi:http 0.2
//! guest (see [`incoming_request`] and [`exchange`]).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use bytes::Bytes;
use http::StatusCode;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use wasmtime::component::{Component, GuestTaskId};
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi::cli::AsyncStdoutStream;
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, InstantiationError, Proxy, ProxyHandler, ShouldAccept,
    TrapOrPanicError, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use super::engine::Runtime;
use super::exchange::{self, Exchange};
use super::incoming::incoming_request;
use super::limits::{Grants, Limits};
use super::manifest::Reuse;
use super::outbound::Outbound;
use super::store::{ComponentState, new_store};
use super::wagi::{Invocation, judge, sandbox};
use crate::budget::Share;
use crate::cgi::output::{AbortOnDrop, Output};
use crate::cgi::stderr::StderrLog;
use crate::error::HttpError;
use crate::request::Request;
use crate::request_body::RequestBody;
use crate::response::Failure;

/// What a p3 instance is allowed when its sidecar has no `[reuse]`:
/// `wasmtime serve`'s defaults for p3.
pub const DEFAULT_REUSE: Reuse = Reuse {
    requests: 128,
    concurrent: 16,
    idle_secs: 1,
};

/// How long past a request's deadline its answer may take before it is
/// given up (the instance is being dropped by then).
const GRACE: Duration = Duration::from_secs(1);

/// A p3 component pre-linked against WASI and wasi:http, and the handler
/// that runs its instances (made at its first request, from the plugin's
/// settings).
pub struct P3 {
    pre: ServicePre<ComponentState>,
    handler: OnceLock<ProxyHandler<Instances>>,
}

impl std::fmt::Debug for P3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P3").finish_non_exhaustive()
    }
}

impl P3 {
    /// Links `component` once; a missing import, or an export that is not
    /// wasi:http p3's handler, is named in the error.
    pub fn prepare(runtime: &Runtime, component: &Component) -> anyhow::Result<P3> {
        let pre = ServicePre::new(runtime.link_component(component)?)
            .map_err(|e| anyhow!("cannot link: {e:#}"))?;
        Ok(P3 {
            pre,
            handler: OnceLock::new(),
        })
    }

    /// Answers `request` on an instance that has room for it, or a new one.
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
        let handler = self
            .handler
            .get_or_init(|| {
                ProxyHandler::new(Instances::new(self.pre.clone(), runtime, &run, outbound))
            })
            .clone();
        let (upload, guest_body) = exchange::upload(body, limits.request_body);
        let incoming = incoming_request(request, &run, guest_body)?.map(BodyExt::boxed_unsync);
        let deadline = Instant::now() + limits.timeout;
        let (fate_sender, fate) = oneshot::channel();
        let (head_sender, head) = oneshot::channel();
        // The watched body reports how the response ended, once read.
        let (report, outcome) = oneshot::channel();
        let ticket = Ticket {
            deadline,
            fate: fate_sender,
        };
        let timeout = limits.timeout;
        let tag: Arc<str> = Arc::from(run.tag);
        let task = tokio::spawn(async move {
            let answer = tokio::time::timeout_at(
                (deadline + GRACE).into(),
                handler.handle(ticket, incoming),
            )
            .await;
            let head = match answer {
                Ok(Ok(response)) => Ok(response.map(|body| Watched {
                    body,
                    deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
                    timeout,
                    fate,
                    report: Some(report),
                    tag,
                })),
                Ok(Err(error)) => Err(refusal(error, fate, timeout).await),
                Err(_) => Err(past_deadline(timeout)),
            };
            let _ = head_sender.send(head);
        });
        let guard = AbortOnDrop::new(task.abort_handle());
        let held = runtime.budgets().bodies.empty_share();
        let mut exchange = Exchange::new(upload, head, held, None);
        let result = exchange.run(limits.response).await;
        exchange::finish(exchange, result, outcome, guard, run.tag, limits.response).await
    }
}

/// How a request that got no response is answered.
async fn refusal(
    error: wasmtime::Error,
    fate: oneshot::Receiver<Failure>,
    timeout: Duration,
) -> Failure {
    if error.is::<ExpirationError>() {
        return past_deadline(timeout);
    }
    if error.is::<TrapOrPanicError>() {
        // Its instance went: why is its fate (sent before the store goes).
        return match tokio::time::timeout(GRACE, fate).await {
            Ok(Ok(failure)) => failure,
            _ => Failure {
                status: StatusCode::BAD_GATEWAY,
                reason: "its instance ended before it answered".into(),
            },
        };
    }
    if let Some(failed) = error.downcast_ref::<InstantiationError<Ticket>>() {
        if let Some(overloaded) = failed.error.downcast_ref::<Overloaded>() {
            return Failure {
                status: StatusCode::SERVICE_UNAVAILABLE,
                reason: format!("no room for a new instance: {} in use", overloaded.0),
            };
        }
        return Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            reason: format!("cannot start an instance: {:#}", failed.error),
        };
    }
    // The guest's own answer: an error code instead of a response.
    if let Some(code) =
        error.downcast_ref::<wasmtime_wasi_http::p3::bindings::http::types::ErrorCode>()
    {
        return Failure {
            status: StatusCode::BAD_GATEWAY,
            reason: format!("responded with an error: {code:?}"),
        };
    }
    match judge(Ok(Err(error)), timeout, 0) {
        Err(failure) => failure,
        Ok(()) => Failure {
            status: StatusCode::BAD_GATEWAY,
            reason: "returned without a response".into(),
        },
    }
}

fn past_deadline(timeout: Duration) -> Failure {
    Failure {
        status: StatusCode::GATEWAY_TIMEOUT,
        reason: format!("stopped after its time limit of {}s", timeout.as_secs()),
    }
}

/// What a request brings to the instance that takes it: its deadline, and
/// where to say why the instance went, if it goes before the request is
/// answered.
struct Ticket {
    deadline: Instant,
    fate: oneshot::Sender<Failure>,
}

/// The plugin's settings every instance is made with.
struct Instances {
    pre: ServicePre<ComponentState>,
    runtime: Arc<Runtime>,
    name: String,
    tag: String,
    grants: Grants,
    limits: Limits,
    reuse: Reuse,
    outbound: Outbound,
}

impl Instances {
    fn new(
        pre: ServicePre<ComponentState>,
        runtime: &Arc<Runtime>,
        run: &Invocation<'_>,
        outbound: &Outbound,
    ) -> Instances {
        Instances {
            pre,
            runtime: Arc::clone(runtime),
            name: run.name.to_string(),
            tag: run.tag.to_string(),
            grants: run.grants.clone(),
            limits: *run.limits,
            reuse: run.limits.reuse.unwrap_or(DEFAULT_REUSE),
            outbound: outbound.clone(),
        }
    }
}

/// No instance slot or memory was free for a new instance.
#[derive(Debug)]
struct Overloaded(&'static str);

impl std::fmt::Display for Overloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no room for a new instance: {} in use", self.0)
    }
}

impl std::error::Error for Overloaded {}

impl HandlerState for Instances {
    type StoreData = ComponentState;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<ComponentState, Expiry, Worker>> {
        let memory = self
            .runtime
            .reserve_memory(self.limits.memory)
            .map_err(|_| wasmtime::Error::new(Overloaded("guest memory")))?;
        let slot = Arc::clone(self.runtime.slots())
            .acquire_owned()
            .await
            .map_err(|_| wasmtime::Error::new(Overloaded("instance slots")))?;
        let run = Invocation {
            name: &self.name,
            tag: &self.tag,
            grants: &self.grants,
            limits: &self.limits,
            script_name: "",
            path_info: "",
        };
        let mut wasi = sandbox(&run).map_err(|e| wasmtime::Error::msg(format!("{e:#}")))?;
        wasi.envs(&self.grants.env)
            .stdout(AsyncStdoutStream::new(4096, StderrLog::new(&self.tag)));
        let state = ComponentState::new(wasi.build(), &self.outbound, self.limits.host_caps());
        // The store never stops on its own: each request's deadline is
        // kept by the worker (and, for a guest that will not yield, by
        // dropping the instance). It still yields at every epoch tick.
        let mut store = new_store(self.runtime.engine(), state, far_future());
        let instance =
            tokio::time::timeout(self.limits.timeout, self.pre.instantiate_async(&mut store))
                .await
                .map_err(|_| {
                    wasmtime::Error::msg("instantiation took longer than the time limit")
                })??;
        let busy_expired = Arc::new(AtomicBool::new(false));
        Ok(Instance {
            store,
            proxy: Proxy::P3(instance),
            view: <ComponentState as WasiHttpView>::http,
            expiration: Expiry {
                timeout: self.limits.timeout,
                idle: Duration::from_secs(self.reuse.idle_secs),
                timer: None,
                busy_expired: Arc::clone(&busy_expired),
            },
            state: Worker {
                reuse: self.reuse,
                timeout: self.limits.timeout,
                memory: self.limits.memory,
                tag: self.tag.clone(),
                fates: Mutex::new(Vec::new()),
                busy_expired,
                _slot: slot,
                _memory: memory,
            },
        })
    }
}

/// Practically never: a store's deadline when its requests keep their own.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// One instance's worker: what it may take, the fates of the requests it
/// took, and what it holds while it lives.
struct Worker {
    reuse: Reuse,
    timeout: Duration,
    memory: u64,
    tag: String,
    fates: Mutex<Vec<(Instant, oneshot::Sender<Failure>)>>,
    /// Whether the instance was dropped because it was busy past a deadline.
    busy_expired: Arc<AtomicBool>,
    _slot: OwnedSemaphorePermit,
    _memory: Share,
}

impl WorkerState for Worker {
    type StoreData = ComponentState;
    type RequestData = Ticket;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.requests as usize {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.concurrent as usize {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, ComponentState>,
        ticket: Ticket,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let mut fates = self.fates.lock().unwrap_or_else(|e| e.into_inner());
        fates.retain(|(_, fate)| !fate.is_closed());
        fates.push((ticket.deadline, ticket.fate));
        Box::pin(tokio::time::sleep_until(ticket.deadline.into()))
    }

    fn drop(&self, store: Store<ComponentState>, result: wasmtime::Result<()>) {
        let failure = match result {
            Ok(()) => None,
            Err(_) if self.busy_expired.load(Ordering::Acquire) => Some(Failure {
                status: StatusCode::BAD_GATEWAY,
                reason: "its instance was dropped, busy past the time limit of its newest \
                         request (a guest that does not yield cannot be stopped alone)"
                    .into(),
            }),
            Err(error) => judge(Ok(Err(error)), self.timeout, self.memory).err(),
        };
        let fates = std::mem::take(&mut *self.fates.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(failure) = &failure {
            let waiting = fates.iter().filter(|(_, fate)| !fate.is_closed()).count();
            crate::log::line(format!(
                "{} instance dropped with {waiting} request(s) unfinished: {}",
                self.tag, failure.reason
            ));
            // Every request still waiting learns why, before the store (and
            // with it any response body still streaming) goes.
            let now = Instant::now();
            for (deadline, fate) in fates {
                let told = if now >= deadline {
                    past_deadline(self.timeout)
                } else {
                    failure.clone()
                };
                let _ = fate.send(told);
            }
        }
        drop(store);
    }
}

/// When an instance is dropped: unused for its idle time; or busy (taking
/// requests, or finishing their bodies) for longer than the time limit
/// since its newest request came, when every request on it is past its
/// deadline. The second is the backstop for a guest that never yields, as
/// the requests' own deadlines are watched from inside its event loop.
struct Expiry {
    timeout: Duration,
    idle: Duration,
    timer: Option<(WorkerStatus, Instant, Pin<Box<tokio::time::Sleep>>)>,
    busy_expired: Arc<AtomicBool>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let stale = !matches!(&self.timer, Some((s, t, _)) if *s == status && *t == start);
        if stale {
            let wait = match status {
                WorkerStatus::Idle => self.idle,
                WorkerStatus::Requests | WorkerStatus::PostReturn => self.timeout + GRACE / 2,
            };
            let sleep = Box::pin(tokio::time::sleep_until((start + wait).into()));
            self.timer = Some((status, start, sleep));
        }
        let Some((_, _, sleep)) = self.timer.as_mut() else {
            return Poll::Pending;
        };
        std::task::ready!(sleep.as_mut().poll(cx));
        if status != WorkerStatus::Idle {
            self.busy_expired.store(true, Ordering::Release);
        }
        Poll::Ready(())
    }
}

/// A p3 response body as the server reads it: cut at its request's
/// deadline, and failed, not ended, when its instance went before it
/// ended (wasmtime ends such a body as if it were whole). Its end is
/// reported once read.
struct Watched {
    body: WasiBody,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    fate: oneshot::Receiver<Failure>,
    report: Option<oneshot::Sender<Result<(), Failure>>>,
    tag: Arc<str>,
}

impl Watched {
    fn end(&mut self, result: Result<(), Failure>) -> Poll<Option<Result<Frame<Bytes>, String>>> {
        let frame = match &result {
            Ok(()) => None,
            Err(failure) => {
                crate::log::line(format!(
                    "{} {} (its response cut short)",
                    self.tag, failure.reason
                ));
                Some(Err(failure.reason.clone()))
            }
        };
        if let Some(report) = self.report.take() {
            let _ = report.send(result);
        }
        Poll::Ready(frame)
    }
}

impl Body for Watched {
    type Data = Bytes;
    type Error = String;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, String>>> {
        let this = &mut *self;
        // Polled to be woken at the deadline; compared, as a timer may fire
        // a little late.
        let past = this.deadline.as_mut().poll(cx).is_ready()
            || tokio::time::Instant::now() >= this.deadline.deadline();
        if past {
            let failure = past_deadline(this.timeout);
            return this.end(Err(failure));
        }
        match std::task::ready!(Pin::new(&mut this.body).poll_frame(cx)) {
            Some(Ok(frame)) => Poll::Ready(Some(Ok(frame))),
            Some(Err(error)) => {
                let failure = this.fate.try_recv().unwrap_or_else(|_| Failure {
                    status: StatusCode::BAD_GATEWAY,
                    reason: format!("aborted its response body: {error}"),
                });
                this.end(Err(failure))
            }
            None => match this.fate.try_recv() {
                // Ended because its instance went: cut short.
                Ok(failure) => this.end(Err(failure)),
                Err(_) => this.end(Ok(())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    fn body(text: &'static str) -> WasiBody {
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync()
    }

    fn watched(
        text: &'static str,
        deadline: Instant,
    ) -> (
        Watched,
        oneshot::Sender<Failure>,
        oneshot::Receiver<Result<(), Failure>>,
    ) {
        let (fate_sender, fate) = oneshot::channel();
        let (report, outcome) = oneshot::channel();
        let watched = Watched {
            body: body(text),
            deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
            timeout: Duration::from_secs(2),
            fate,
            report: Some(report),
            tag: Arc::from("[plugin test]"),
        };
        (watched, fate_sender, outcome)
    }

    #[tokio::test]
    async fn a_body_that_ends_while_its_instance_goes_is_a_failure_not_a_whole_body() {
        let (mut whole, _fate, outcome) =
            watched("all of it", Instant::now() + Duration::from_secs(60));
        let collected = (&mut whole).collect().await.expect("whole");
        assert_eq!(collected.to_bytes(), "all of it");
        assert_eq!(outcome.await.expect("reported"), Ok(()));

        let (mut cut, fate, outcome) = watched("part", Instant::now() + Duration::from_secs(60));
        let trapped = Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            reason: "trapped: unreachable".into(),
        };
        fate.send(trapped.clone()).expect("fate");
        let first = cut.frame().await.expect("a frame").expect("data");
        assert_eq!(first.into_data().expect("data"), "part");
        let end = cut.frame().await.expect("not an end");
        assert_eq!(end.expect_err("a failure"), "trapped: unreachable");
        assert_eq!(outcome.await.expect("reported"), Err(trapped));
    }

    #[tokio::test]
    async fn a_body_past_its_deadline_fails_with_504() {
        let (mut late, _fate, outcome) = watched("too late", Instant::now());
        let end = late.frame().await.expect("not an end");
        assert!(end.expect_err("a failure").contains("time limit of 2s"));
        let failure = outcome.await.expect("reported").expect_err("failed");
        assert_eq!(failure.status, StatusCode::GATEWAY_TIMEOUT);
    }

    fn expiry() -> (Expiry, Arc<AtomicBool>) {
        let busy_expired = Arc::new(AtomicBool::new(false));
        let expiry = Expiry {
            timeout: Duration::from_millis(100),
            idle: Duration::from_millis(50),
            timer: None,
            busy_expired: Arc::clone(&busy_expired),
        };
        (expiry, busy_expired)
    }

    async fn expires(expiry: &mut Expiry, status: WorkerStatus, start: Instant) -> Duration {
        let began = Instant::now();
        std::future::poll_fn(|cx| Pin::new(&mut *expiry).poll(cx, status, start)).await;
        began.elapsed()
    }

    #[tokio::test]
    async fn an_idle_instance_goes_after_its_idle_time_and_a_busy_one_after_the_time_limit() {
        let (mut idle, busy_expired) = expiry();
        let waited = expires(&mut idle, WorkerStatus::Idle, Instant::now()).await;
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(!busy_expired.load(Ordering::Acquire), "idle is not busy");

        let (mut busy, busy_expired) = expiry();
        let waited = expires(&mut busy, WorkerStatus::Requests, Instant::now()).await;
        assert!(
            waited >= Duration::from_millis(100) + GRACE / 2,
            "{waited:?}"
        );
        assert!(busy_expired.load(Ordering::Acquire));
    }
}
