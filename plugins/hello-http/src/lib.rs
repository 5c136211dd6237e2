//! Hello world as a bare wasi:http component: it exports
//! `wasi:http/incoming-handler` and nothing else, so any wasi:http host
//! (wasmhttpd, `wasmtime serve`, Spin, wasmCloud) serves the same file.

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

wasip2::http::proxy::export!(Hello);

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let fields = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
            .expect("a valid field");
        let response = OutgoingResponse::new(fields);
        let body = response.body().expect("the body, once");
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().expect("the stream, once");
        stream
            .blocking_write_and_flush(b"Hello, world!\n")
            .expect("the client is there");
        drop(stream);
        OutgoingBody::finish(body, None).expect("a finished body");
    }
}
