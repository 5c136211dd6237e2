//! Hello world as a wasi:http p3 component (`wasi:http/service@0.3.0`):
//! `handle` is an `async fn`, so while one request waits, the instance
//! serves others. `/hello-p3` says hello; `/hello-p3/wait?MS` answers after
//! waiting MS milliseconds (at most 10 s) without holding up its instance;
//! both say how many requests this instance has served.

use std::cell::Cell;

use wasip3::clocks::monotonic_clock;
use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

wasip3::http::service::export!(Hello);

struct Hello;

thread_local! {
    /// Requests this instance has taken: instances are reused.
    static SERVED: Cell<u64> = const { Cell::new(0) };
}

impl wasip3::exports::http::handler::Guest for Hello {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let served = SERVED.with(|n| {
            n.set(n.get() + 1);
            n.get()
        });
        let path = request.get_path_with_query().unwrap_or_default();
        let text = match path.split_once("/wait?") {
            Some((_, ms)) => {
                let ms = ms.parse::<u64>().unwrap_or(100).min(10_000);
                monotonic_clock::wait_for(ms * 1_000_000).await;
                format!("Waited {ms} ms (request {served} of this instance)\n")
            }
            None => format!("Hello, world! (request {served} of this instance)\n"),
        };
        Ok(respond(text.into_bytes()))
    }
}

/// A 200 text/plain response whose body is written after `handle` has
/// returned it, as p3 streams are.
fn respond(body: Vec<u8>) -> Response {
    let fields = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
        .expect("a valid field");
    let (mut writer, reader) = wit_stream::new();
    let (trailers_writer, trailers) = wit_future::new(|| Ok(None));
    drop(trailers_writer);
    let (response, _sent) = Response::new(fields, Some(reader), trailers);
    wit_bindgen::spawn(async move {
        writer.write_all(body).await;
    });
    response
}
