//! Per-request overhead of a plugin, in process: instantiate a fresh
//! instance, run it (CGI environment in, CGI response out), parse its
//! output into a response. No sockets. Uses `plugins/hello.wasm` (the SDK's
//! hello example) and `plugins/hello-c.wasm`, built by `plugins/build`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method, Version};
use wasmhttpd::cgi::output::Output;
use wasmhttpd::http1::body::RequestBody;
use wasmhttpd::plugin::engine::Runtime;
use wasmhttpd::plugin::{Limits, Matched, Plugin};
use wasmhttpd::request::Request;
use wasmhttpd::response::Body;

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
        peer: addr,
        local: addr,
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
    for name in ["hello", "hello-c"] {
        let Ok(plugin) = Plugin::load(&runtime, &plugins, name, limits) else {
            eprintln!("skipping {name}: run plugins/build first");
            continue;
        };
        let plugin = Arc::new(plugin);
        let matched = Matched {
            plugin: Arc::clone(&plugin),
            script_name: format!("/{name}"),
            path_info: String::new(),
        };
        let request = request();
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let output = plugin
                    .serve(&runtime, &request, &mut RequestBody::empty(), &matched)
                    .await
                    .expect("served");
                match output {
                    Output::Response(response) => {
                        assert!(matches!(response.body, Body::Bytes(_)));
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
