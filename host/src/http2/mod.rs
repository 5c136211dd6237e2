//! HTTP/2 through hyper: its connection handling, our service.
//!
//! hyper's HTTP/2 server is the one Rust servers trust, with the
//! mitigations of the last years' attacks built in: rapid reset
//! (CVE-2023-44487) is bounded by the pending-accept reset limit and the
//! local error reset limit, CONTINUATION floods by the header-list size,
//! SETTINGS and PING floods by the h2 crate's bounded queue of frames it
//! owes the peer. We set the limits (see [`Settings`]) and call the same
//! [`Handler`] as HTTP/1, through the same [`RequestBody`] and
//! [`crate::response::Response`], so every backend works unchanged:
//!
//! - [`request`]: hyper's request parts → [`crate::request::Request`],
//!   DATA frames → a [`crate::request_body::BodySource`];
//! - [`response`]: the service's response → hyper's, with the file, memory
//!   and stream bodies, and the access log line;
//! - [`streams`]: the connection's streams, run by the connection's own
//!   task rather than spawned.
//!
//! A response whose client stops reading is cancelled under the minimum
//! rate (see [`response::Watchlist`]); a connection all of whose streams
//! are so cancelled is closed. A client that sends nothing is asked with a
//! PING after the keep-alive timeout, and closed if it does not answer
//! within the I/O timeout.
//!
//! On shutdown a connection sends GOAWAY, lets the streams it has accepted
//! finish, and closes.

pub mod request;
pub mod response;
pub mod streams;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, watch};

use crate::handler::Handler;
use crate::pace::{MinRate, Pace};
use crate::request::Ends;
use crate::request_body::RequestBody;

/// How often a connection looks for responses its client has stopped
/// reading.
const SWEEP: Duration = Duration::from_secs(1);

/// The most response bytes hyper holds for one stream, beyond what the
/// client's window lets out: two pieces of a file.
const SEND_BUFFER: usize = 128 * 1024;

/// The first bytes of every HTTP/2 connection (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Per-connection HTTP/2 settings, fixed at startup.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// Largest header list a client may send, decoded
    /// (SETTINGS_MAX_HEADER_LIST_SIZE); also what bounds CONTINUATION.
    pub max_header_list_size: u32,
    /// Flow-control window of each stream's request body.
    pub stream_window: u32,
    /// Flow-control window of the whole connection.
    pub connection_window: u32,
    /// Time any single read of a body may stall, and the time a client
    /// has to answer a keep-alive PING.
    pub io_timeout: Duration,
    /// The slowest a request body may move.
    pub min_rate: MinRate,
    /// Time a connection with no open stream is kept.
    pub idle_timeout: Duration,
}

impl Settings {
    fn pace(&self) -> Pace {
        Pace::new(self.min_rate, self.io_timeout)
    }
}

/// Serves HTTP/2 on `io` (after the TLS handshake, or on plain TCP with
/// the preface still unread) until the client or the server closes it.
pub async fn serve<S, H>(
    io: S,
    ends: Ends,
    handler: Arc<H>,
    settings: Arc<Settings>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let mut running = streams::Streams::default();
    let mut builder = hyper::server::conn::http2::Builder::new(running.executor());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.max_concurrent_streams)
        .max_header_list_size(settings.max_header_list_size)
        .initial_stream_window_size(settings.stream_window)
        .initial_connection_window_size(settings.connection_window)
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(Some(256))
        .max_send_buf_size(SEND_BUFFER)
        .keep_alive_interval(settings.idle_timeout)
        .keep_alive_timeout(settings.io_timeout);
    let stream_settings = Arc::clone(&settings);
    let activity = Arc::new(Activity::default());
    let streams = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let handler = Arc::clone(&handler);
        let settings = Arc::clone(&stream_settings);
        let open = Open::new(&streams);
        async move {
            Ok::<_, std::convert::Infallible>(answer(request, ends, handler, &settings, open).await)
        }
    });
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let changed = activity.changed.notified();
        let open = activity.open.load(Ordering::Acquire);
        tokio::select! {
            // The ready streams answer first, so that the connection then
            // writes their responses together.
            biased;
            () = running.run() => {}
            _ = connection.as_mut() => return,
            _ = shutdown.wait_for(|stop| *stop) => break,
            () = changed => {}
            () = tokio::time::sleep(settings.idle_timeout), if open == 0 => break,
            _ = sweep.tick(), if open > 0 => {
                // Every stream given up on: nobody reads this connection.
                if activity.watchlist.sweep() >= open {
                    return;
                }
            }
        }
    }
    connection.as_mut().graceful_shutdown();
    loop {
        tokio::select! {
            biased;
            () = running.run() => {}
            _ = connection.as_mut() => return,
            _ = sweep.tick() => {
                let open = activity.open.load(Ordering::Acquire);
                if open > 0 && activity.watchlist.sweep() >= open {
                    return;
                }
            }
        }
    }
}

/// How many streams of a connection are being answered, so that an idle
/// connection can be closed.
#[derive(Debug, Default)]
struct Activity {
    open: AtomicUsize,
    changed: Notify,
    watchlist: response::Watchlist,
}

/// One stream being answered, until its response body is done with.
struct Open(Arc<Activity>);

impl Open {
    fn new(activity: &Arc<Activity>) -> Open {
        // The connection only cares whether any stream is open.
        if activity.open.fetch_add(1, Ordering::AcqRel) == 0 {
            activity.changed.notify_waiters();
        }
        Open(Arc::clone(activity))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

/// One stream: the request to the service, its response to hyper.
async fn answer<H: Handler>(
    request: hyper::Request<Incoming>,
    ends: Ends,
    handler: Arc<H>,
    settings: &Settings,
    open: Open,
) -> http::Response<response::Outgoing> {
    let (parts, incoming) = request.into_parts();
    let request = request::head(parts, ends);
    // A stream ended with its HEADERS has no body, as an HTTP/1 request
    // without Content-Length.
    let declared = if http_body::Body::is_end_stream(&incoming) {
        Some(0)
    } else {
        request::declared_length(&request)
    };
    let line = request::request_line(&request);
    let mut source = request::StreamBody::new(incoming, settings.pace());
    let answer = {
        let mut body = RequestBody::new(&mut source, declared);
        handler.handle(&request, &mut body).await
    };
    let activity = Arc::clone(&open.0);
    let logger: response::Logger = Box::new(move |status, size| {
        handler.log(ends.peer, &line, status, size);
        drop(open);
    });
    response::convert(
        answer,
        request.is_head(),
        logger,
        settings.pace(),
        &activity.watchlist,
    )
}
