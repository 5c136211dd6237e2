//! The wasi:http executor: a component exporting
//! `wasi:http/incoming-handler@0.2.x` (the `wasi:http/proxy` world), one
//! fresh instance per request, or, when the sidecar asks for reuse, an
//! instance kept from an earlier request ([`Pool`]): one whose request
//! ended cleanly (no trap, no limit reached, within its time, its response
//! body finished and read to its end), up to `requests` requests each.
//!
//! The request reaches the guest as a wasi:http `incoming-request` (see
//! [`incoming_request`]); bodies stream both ways through an [`Exchange`].
//! The guest's stdout and stderr go to the log; its environment is what
//! the sidecar grants; outbound requests pass [`Outbound`]. Time, memory
//! and trap handling are the CGI-over-WASI executor's (see [`judge`]).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use anyhow::anyhow;
use http::StatusCode;
use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime::component::Component;
use wasmtime_wasi::cli::AsyncStdoutStream;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::{Proxy as Instance, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::engine::Runtime;
use super::exchange::{self, Exchange, GuestBody, Park, Refusal};
use super::incoming::incoming_request;
use super::manifest::Reuse;
use super::outbound::Outbound;
use super::reuse::Pool;
use super::store::{ComponentState, new_store, set_deadline};
use super::wagi::{Invocation, judge, sandbox};
use crate::budget::Share;
use crate::cgi::output::{AbortOnDrop, Output};
use crate::cgi::stderr::StderrLog;
use crate::error::HttpError;
use crate::request::Request;
use crate::request_body::RequestBody;
use crate::response::{Failure, Outcome};

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
        let (upload, guest_body) = exchange::upload(body, limits.request_body);
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
        let parking = limits.reuse.map(|reuse| {
            Box::new(Parking {
                handed,
                pool: Arc::clone(&self.pool),
                reuse,
                idle_slots: Arc::clone(runtime.idle_slots()),
            }) as Box<dyn Park>
        });
        let mut exchange = Exchange::new(upload, head, held, parking);
        let result = exchange.run(limits.response).await;
        exchange::finish(exchange, result, outcome, guard, run.tag, limits.response).await
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

impl Park for Parking {
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
}

impl Refusal for ErrorCode {
    fn failure(self) -> Failure {
        Failure {
            status: StatusCode::BAD_GATEWAY,
            reason: format!("responded with an error: {self:?}"),
        }
    }
}

/// The instance a request runs on.
enum Ready {
    /// A parked one.
    Warm(Warm),
    /// A new one, with its memory cap's share of the budget.
    Fresh(Share),
}
