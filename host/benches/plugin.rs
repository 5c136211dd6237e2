//! Per-request overhead of a plugin, in process: instantiate a fresh
//! instance, run it (CGI environment in, CGI response out), parse its
//! output into a response. No sockets. Uses, built by `plugins/build`:
//! `plugins/hello.wasm` (the SDK's hello, CGI-over-WASI), `hello-c.wasm`
//! (the same in C), `hello-http.wasm` (the bare wasi:http hello component)
//! and `wasip2/hello.wasm` (the SDK's hello as a wasi:http component).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method, Version};
use wasmhttpd::cgi::output::Output;
use wasmhttpd::plugin::engine::Runtime;
use wasmhttpd::plugin::{Limits, Matched, Plugin};
use wasmhttpd::request::Request;
use wasmhttpd::request_body::RequestBody;

fn request() -> Request {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("bench"));
    headers.insert("user-agent", HeaderValue::from_static("criterion"));
    let addr = "127.0.0.1:8000".parse().expect("addr");
    Request {
        method: Method::GET,
        target: Bytes::from_static(b"/hello"),
        version: Version::HTTP_11,
        headers,
        head: Bytes::new(),
        peer: addr,
        local: addr,
        secure: false,
    }
}

fn bench(c: &mut Criterion) {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let runtime = Arc::new(rt.block_on(async { Runtime::new(None) }).expect("engine"));
    let limits = Limits::defaults(Duration::from_secs(30), 128);
    let mut group = c.benchmark_group("plugin request, in process");
    let wasip2 = plugins.join("wasip2");
    for (label, dir, name) in [
        ("hello", &plugins, "hello"),
        ("hello-c", &plugins, "hello-c"),
        ("hello-http (wasi:http)", &plugins, "hello-http"),
        ("hello, SDK on wasip2 (wasi:http)", &wasip2, "hello"),
    ] {
        let loaded = Plugin::load(&runtime, dir, name, limits);
        let Ok(plugin) = loaded.and_then(|p| rt.block_on(p.compiled()).map(|()| p)) else {
            eprintln!("skipping {label}: run plugins/build first");
            continue;
        };
        let plugin = Arc::new(plugin);
        let matched = Matched {
            plugin: Arc::clone(&plugin),
            script_name: format!("/{name}"),
            path_info: String::new(),
        };
        let request = request();
        group.bench_function(label, |b| {
            b.to_async(&rt).iter(|| async {
                let output = plugin
                    .serve(&runtime, &request, &mut RequestBody::empty(), &matched)
                    .await
                    .expect("served");
                match output {
                    Output::Response(response) => {
                        assert_eq!(response.status, 200);
                        response
                    }
                    Output::LocalRedirect(_) => panic!("unexpected redirect"),
                }
            });
        });
    }
    group.finish();
    eprintln!("pooling allocator: {}", runtime.pooling());
}

criterion_group!(benches, bench);
criterion_main!(benches);
