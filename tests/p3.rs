//! End to end: wasi:http p3 components (`wasi:http/service@0.3.0`) as
//! plugins, with the test handler of `tests/p3`: the request it sees,
//! bodies both ways, several requests at once on one instance, reuse, and
//! hostile guests (a task that spins, a future never resolved, a body
//! without end, tasks spawned without end, a trap), each against the real
//! binary while the server's memory, descriptors and threads are sampled.

mod support;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use support::{Response, Sampler, Server, Setup, curl, p3_component, usage};

/// The p3 test handler installed as `p3`, with `sidecar`.
fn p3(sidecar: &str) -> (Setup, Server) {
    let setup = Setup::new()
        .with(&p3_component(), "p3")
        .sidecar("p3", sidecar);
    let server = setup.start(&[]);
    (setup, server)
}

fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(prefix))
}

/// `GET path` on its own connection, in a thread, started now.
fn get_in_thread(server: &Server, path: &str) -> thread::JoinHandle<(Response, Duration)> {
    let addr = server.addr;
    let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    thread::spawn(move || {
        let started = Instant::now();
        let bytes = support::exchange(addr, raw.as_bytes());
        let response = Response::parse(&bytes, false).expect("a response");
        (response, started.elapsed())
    })
}

#[test]
fn a_p3_component_is_recognised_and_gets_the_request_as_a_0_2_guest_does() {
    let (_setup, server) = p3("");
    server.wait_for_plugin_line(
        "Plugin p3: /p3 /p3/* (all methods; wasi:http p3 component; \
         16 requests at once, reused for 128, 1 s idle)",
    );
    let hello = server.get("/p3/hello");
    assert_eq!(hello.status, 200);
    assert_eq!(hello.header("content-type"), Some("text/plain"));
    assert_eq!(hello.text(), "Hello from a wasi:http p3 component\n");

    let raw =
        b"PUT /p3/a%20b/info?x=1 HTTP/1.1\r\nHost: example.test:8080\r\nConnection: close\r\n\
                X-Multi: a\r\nX-Multi: b\r\nContent-Length: 0\r\n\r\n";
    let r = Response::parse(&server.raw(raw), false).expect("response");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_eq!(line(&text, "method="), Some("PUT"), "{text}");
    assert_eq!(line(&text, "path="), Some("/p3/a%20b/info?x=1"), "{text}");
    assert_eq!(line(&text, "scheme="), Some("http"));
    assert_eq!(line(&text, "authority="), Some("example.test:8080"));
    assert!(
        text.contains("x-multi: a\n") && text.contains("x-multi: b\n"),
        "{text}"
    );
    assert_eq!(line(&text, "wasmhttpd-script-name: "), Some("%2Fp3"));
    assert_eq!(
        line(&text, "wasmhttpd-path-info: "),
        Some("%2Fa%20b%2Finfo")
    );
    assert_eq!(
        line(&text, "connection: "),
        None,
        "hop-by-hop fields are dropped"
    );
    server.wait_for_log(|l| l.contains("\"PUT /p3/a%20b/info?x=1 HTTP/1.1\" 200"));

    // HTTP/2 (prior knowledge) reaches it as well.
    let url = format!("http://{}/p3/hello", server.addr);
    let got = curl(&["--http2-prior-knowledge"], &url);
    assert_eq!((got.status, got.version.as_str()), (200, "2"), "{got:?}");
    assert_eq!(got.body, b"Hello from a wasi:http p3 component\n");
}

#[test]
fn two_slow_requests_to_one_instance_finish_in_the_time_of_one() {
    let (_setup, server) = p3("");
    // Warm: one instance exists, idle.
    assert_eq!(server.get("/p3/hello").status, 200);
    let started = Instant::now();
    let first = get_in_thread(&server, "/p3/sleep?1500");
    let second = get_in_thread(&server, "/p3/sleep?1500");
    let (a, _) = first.join().expect("first");
    let (b, _) = second.join().expect("second");
    let took = started.elapsed();
    assert_eq!((a.status, b.status), (200, 200));
    let instance = |r: &Response| line(&r.text(), "instance=").map(str::to_string);
    assert!(instance(&a).is_some());
    assert_eq!(instance(&a), instance(&b), "both ran on one instance");
    // One after the other would take 3 s.
    assert!(
        took < Duration::from_millis(2800),
        "took {took:?}: not concurrent"
    );
}

#[test]
fn an_instance_serves_its_requests_then_a_new_one_takes_over() {
    let (_setup, server) = p3("[reuse]\nrequests = 3\nidle_secs = 30\n");
    let count = |r: Response| {
        let text = r.text();
        (
            line(&text, "served=").expect("served").to_string(),
            line(&text, "instance=").expect("instance").to_string(),
        )
    };
    let runs: Vec<_> = (0..4).map(|_| count(server.get("/p3/count"))).collect();
    assert_eq!(runs[0].0, "1");
    assert_eq!(runs[1], ("2".into(), runs[0].1.clone()), "kept: {runs:?}");
    assert_eq!(runs[2], ("3".into(), runs[0].1.clone()), "kept: {runs:?}");
    assert_eq!(runs[3].0, "1", "a fresh instance after 3: {runs:?}");
    assert_ne!(runs[3].1, runs[0].1);

    // Told to, it serves one request per instance.
    let (_setup, server) = p3("[reuse]\nrequests = 1\n");
    let a = count(server.get("/p3/count"));
    let b = count(server.get("/p3/count"));
    assert_eq!((a.0.as_str(), b.0.as_str()), ("1", "1"));
    assert_ne!(a.1, b.1);
}

#[test]
fn bodies_stream_both_ways_and_the_guest_may_answer_before_the_body_has_arrived() {
    let (_setup, server) = p3("");
    // Larger than the commit threshold, both ways, with a length and chunked.
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut raw = format!(
        "POST /p3/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let bytes = server.raw(&raw);
    let r = Response::parse(&bytes, false).expect("response");
    assert_eq!(r.status, 200);
    let got = match r.header("transfer-encoding") {
        Some("chunked") => support::dechunk(&r.body).expect("a whole chunked body"),
        _ => r.body.clone(),
    };
    assert_eq!(got.len(), body.len());
    assert!(got == body, "echoed as sent");

    let mut stream = server.connect();
    stream
        .write_all(b"POST /p3/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("head");
    for piece in body.chunks(70_000) {
        stream
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .expect("size");
        stream.write_all(piece).expect("piece");
        stream.write_all(b"\r\n").expect("end");
        thread::sleep(Duration::from_millis(20));
    }
    stream.write_all(b"0\r\n\r\n").expect("last");
    let bytes = support::read_to_close(&mut stream);
    let r = Response::parse(&bytes, false).expect("response");
    assert_eq!(r.status, 200);
    let got = support::dechunk(&r.body).unwrap_or(r.body.clone());
    assert!(got == body, "echoed as sent, chunked");

    // Over HTTP/2 too.
    let dir = tempfile::tempdir().expect("dir");
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, &body).expect("write");
    let url = format!("http://{}/p3/echo", server.addr);
    let got = curl(
        &[
            "--http2-prior-knowledge",
            "--data-binary",
            &format!("@{}", upload.display()),
        ],
        &url,
    );
    assert_eq!((got.status, got.version.as_str()), (200, "2"), "{got:?}");
    assert!(got.body == body, "echoed as sent over HTTP/2");
}

#[test]
fn a_request_past_its_deadline_gets_504_while_the_others_on_its_instance_finish() {
    let (_setup, server) = p3("[limits]\ntimeout_secs = 2\n");
    assert_eq!(server.get("/p3/hello").status, 200);
    let never = get_in_thread(&server, "/p3/never");
    thread::sleep(Duration::from_millis(200));
    let slow = get_in_thread(&server, "/p3/sleep?1000");
    let (never, waited) = never.join().expect("never");
    let (slow, _) = slow.join().expect("slow");
    assert_eq!(never.status, 504);
    assert!(
        waited < Duration::from_secs(4),
        "answered at its deadline: {waited:?}"
    );
    assert_eq!(
        slow.status, 200,
        "the other request on the instance was unharmed"
    );
    server.wait_for_log(|l| l.contains("[plugin p3] stopped after its time limit of 2s"));
    // The instance that holds the stuck task is dropped once its time is
    // up; new requests are served.
    assert_eq!(server.get("/p3/hello").status, 200);
}

#[test]
fn a_trap_drops_the_instance_and_every_request_on_it_is_answered_500() {
    let (_setup, server) = p3("");
    assert_eq!(server.get("/p3/hello").status, 200);
    let slow = get_in_thread(&server, "/p3/sleep?3000");
    thread::sleep(Duration::from_millis(300));
    let trap = server.get("/p3/trap");
    assert_eq!(trap.status, 500);
    let (slow, took) = slow.join().expect("slow");
    assert_eq!(slow.status, 500, "its neighbour went with the instance");
    assert!(
        took < Duration::from_secs(3),
        "answered when the trap came: {took:?}"
    );
    server.wait_for_log(|l| {
        l.contains("[plugin p3] instance dropped with") && l.contains("trapped: unreachable")
    });
    assert_eq!(server.get("/p3/hello").status, 200, "a new instance serves");
}

#[test]
fn a_guest_that_spins_is_stopped_with_its_instance_and_the_server_stays_bounded() {
    let (_setup, server) = p3("[limits]\ntimeout_secs = 2\n");
    assert_eq!(server.get("/p3/hello").status, 200);
    let before = usage(server.pid());
    let sampler = Sampler::start(server.pid());
    let slow = get_in_thread(&server, "/p3/sleep?1000");
    thread::sleep(Duration::from_millis(200));
    let spin = get_in_thread(&server, "/p3/spin");
    // Other plugins' requests, and static files, are not held up.
    let started = Instant::now();
    assert_eq!(server.get("/").status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    let (spin, took) = spin.join().expect("spin");
    let (slow, _) = slow.join().expect("slow");
    assert_eq!(spin.status, 504);
    assert!(
        took < Duration::from_secs(5),
        "stopped in bounded time: {took:?}"
    );
    // The neighbour could not run while the instance spun: past its own
    // deadline by then, it is 504 too.
    assert!(matches!(slow.status, 502 | 504), "{}", slow.status);
    assert_eq!(server.get("/p3/hello").status, 200, "a new instance serves");
    let peak = sampler.stop();
    assert!(peak.threads <= before.threads + 4, "{peak:?} vs {before:?}");
    assert!(peak.fds <= before.fds + 16, "{peak:?} vs {before:?}");
}

#[test]
fn a_body_without_end_is_cut_at_the_response_limit_and_at_the_deadline() {
    let (_setup, server) = p3("[limits]\nresponse_kib = 1024\ntimeout_secs = 2\n");
    let bytes = server.raw(b"GET /p3/endless HTTP/1.1\r\nHost: t\r\n\r\n");
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head");
    let head = String::from_utf8_lossy(&bytes[..end]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    assert!(
        support::dechunk(&bytes[end + 4..]).is_none(),
        "cut without the last chunk, so that no client takes it for whole"
    );
    assert!(bytes.len() < (1 << 20) + 64 * 1024, "{} bytes", bytes.len());

    // A client that reads slowly is cut at the deadline.
    let (_setup, server) = p3("[limits]\ntimeout_secs = 2\n");
    let mut stream = server.connect();
    stream
        .write_all(b"GET /p3/endless HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("request");
    let started = Instant::now();
    let mut got = 0usize;
    // About 6 MB/s: slower than the guest writes, and fast enough to drain
    // what the sockets' buffers hold once the server stops.
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never cut");
        thread::sleep(Duration::from_millis(10));
    }
    assert!(got < 64 << 20, "{got}");
    server.wait_for_log(|l| {
        l.contains("[plugin p3] stopped after its time limit of 2s (its response cut short)")
    });
    assert_eq!(server.get("/p3/hello").status, 200);
}

#[test]
fn a_guest_that_spawns_tasks_without_end_reaches_its_memory_cap() {
    let (_setup, server) = p3("[limits]\nmemory_mib = 64\n");
    assert_eq!(server.get("/p3/hello").status, 200);
    let before = usage(server.pid());
    let sampler = Sampler::start(server.pid());
    let r = server.get("/p3/spawn");
    let peak = sampler.stop();
    assert_eq!(r.status, 500);
    server.wait_for_log(|l| l.contains("memory limit of 64 MiB reached"));
    // What the tasks make the host hold is bounded with the guest's memory.
    assert!(
        peak.rss_kib < before.rss_kib + 256 * 1024,
        "grew by {} KiB",
        peak.rss_kib - before.rss_kib
    );
    assert_eq!(server.get("/p3/hello").status, 200);
}

#[test]
fn outbound_requests_pass_the_sidecars_allow_list() {
    let (setup, server) = p3("allowed_outbound_hosts = [\"http://127.0.0.1:*\"]\n");
    support::write(&setup.site(), "target.txt", "the target\n");
    let allowed = server.get(&format!("/p3/fetch?http://{}/target.txt", server.addr));
    assert_eq!(allowed.text(), "status=200\n");
    let denied = server.get("/p3/fetch?http://localhost:9/x");
    assert!(
        denied.text().contains("HttpRequestDenied"),
        "{}",
        denied.text()
    );
    server.wait_for_log(|l| l.contains("[plugin p3]") && l.contains("localhost:9"));

    // Without a grant, nowhere.
    let (_setup, server) = p3("");
    let denied = server.get(&format!("/p3/fetch?http://{}/", server.addr));
    assert!(
        denied.text().contains("HttpRequestDenied"),
        "{}",
        denied.text()
    );
}
