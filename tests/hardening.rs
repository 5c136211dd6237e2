//! End to end: what bounds a hostile client. A body trickled a byte at a
//! time, or a response read a byte at a time, cannot hold a connection,
//! a CGI script or a plugin beyond the minimum transfer rate; every
//! backend kind is tried.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::{Response, Sampler, Server, Setup, Usage, component, usage, write};

fn server(args: &[&str]) -> (Setup, Server) {
    support::every_backend(args)
}

const BODY_READERS: [&str; 3] = ["/cgi-bin/echo.sh", "/echo", "/web/echo"];

/// A body of 100 bytes, one byte every 300 ms: each read is well within
/// the I/O timeout (60 s), but the body moves at 3 bytes a second, far
/// below the floor. It is cut off with 408 after one window (2 s here),
/// not after the 30 s the whole trickle would take.
#[test]
fn a_trickled_body_is_cut_off_at_the_minimum_rate_with_408() {
    let (_setup, server) = server(&["--min-rate", "500", "--min-rate-window", "2"]);
    for target in BODY_READERS {
        let mut stream = server.connect();
        let head = format!("POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("send");
        let mut writer = stream.try_clone().expect("clone");
        let trickle = std::thread::spawn(move || {
            for _ in 0..100 {
                if writer.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let started = Instant::now();
        let bytes = support::read_to_close(&mut stream);
        let elapsed = started.elapsed();
        let r = Response::parse(&bytes, false).expect("response");
        assert_eq!(r.status, 408, "{target}");
        assert_eq!(r.header("connection"), Some("close"), "{target}");
        assert!(
            elapsed < Duration::from_secs(15),
            "{target}: cut off after {elapsed:?}, not at the floor"
        );
        drop(stream);
        trickle.join().expect("trickle");
        // The backend carries on.
        let r = server.request("POST", target, &[("Content-Length", "0")]);
        assert_eq!(r.status, 200, "{target} after the trickle");
    }
}

/// The same body sent at once is not affected by the floor.
#[test]
fn a_prompt_body_is_not_affected_by_the_floor() {
    let (_setup, server) = server(&["--min-rate", "1000000", "--min-rate-window", "1"]);
    let body = vec![b'b'; 1 << 20];
    for target in BODY_READERS {
        let mut stream = server.connect();
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("send");
        stream.write_all(&body).expect("send body");
        let r = Response::parse(&support::read_to_close(&mut stream), false).expect("response");
        assert_eq!(r.status, 200, "{target}");
    }
}

/// A client that reads a large response at 20 KiB a second (a floor of
/// 100 kB/s here): once the socket buffers are full, the writes wait, and
/// after one window of waiting the server gives the response up (its log
/// line says no size was completed), long before the file would have been
/// read.
#[test]
fn a_slow_reader_is_cut_off_at_the_minimum_rate() {
    let dir = support::site();
    let size = 48usize << 20;
    write(dir.path(), "big.bin", vec![b'z'; size]);
    let server = Server::start(
        dir.path(),
        &["--min-rate", "100000", "--min-rate-window", "2"],
    );
    let mut stream = server.connect();
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let mut reader = stream.try_clone().expect("clone");
    let slow = std::thread::spawn(move || {
        let mut received = 0usize;
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return received,
                Ok(n) => received += n,
            }
            // Past what the socket buffers take at once, read slowly.
            if received > 8 << 20 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    let started = Instant::now();
    let line = server.wait_for_log_within(Duration::from_secs(30), |l| {
        l.contains("\"GET /big.bin HTTP/1.1\" 200")
    });
    assert!(line.ends_with(" 200 -"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let received = slow.join().expect("reader");
    assert!(
        received < size,
        "the whole file was read: the floor did nothing"
    );
    // Others are served as before.
    assert_eq!(server.get("/big.bin").body.len(), size);
}

/// Runs `attack` against `server` (repeatedly, for about two seconds, in
/// a thread of its own) while the other routes are asked for, one request
/// after another; every one of those must be answered as usual. Returns
/// the attack's last response and the server's peaks beyond its usage
/// before the attack.
fn under_attack(server: &Server, attack: &str) -> (Response, Usage) {
    // Warm up: the routes' first answers (compiles, caches) are not the
    // attack's doing.
    assert_eq!(server.get("/file.txt").status, 200);
    assert_eq!(server.get("/web/status?200").status, 200);
    let before = usage(server.pid());
    let sampler = Sampler::start(server.pid());
    let addr = server.addr;
    let target = attack.to_string();
    let attacker = std::thread::spawn(move || {
        let started = Instant::now();
        let mut last = None;
        while last.is_none() || started.elapsed() < Duration::from_secs(2) {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            let bytes = support::exchange(addr, raw.as_bytes());
            last = Some(Response::parse(&bytes, false).expect("attack's response"));
        }
        last.expect("one attack")
    });
    while !attacker.is_finished() {
        assert_eq!(
            server.get("/file.txt").text(),
            "static file\n",
            "during {attack}"
        );
        assert_eq!(server.get("/web/status?201").status, 201, "during {attack}");
        assert_eq!(server.get("/echo").status, 200, "during {attack}");
    }
    let last = attacker.join().expect("attacker");
    let peak = sampler.stop();
    let grew = Usage {
        rss_kib: peak.rss_kib.saturating_sub(before.rss_kib),
        fds: peak.fds.saturating_sub(before.fds),
        threads: peak.threads.saturating_sub(before.threads),
    };
    (last, grew)
}

/// What a guest makes the host hold (header objects, bodies, handles)
/// lives outside its linear memory: before it was capped, 10,000 header
/// objects of 120 KiB under a 128 MiB memory cap took the server past
/// 1.3 GB. Now an object past 64 KiB is refused inside the guest, and
/// past 1024 handles the instance traps (500): the server stays within
/// the sum of the caps, and the other routes answer throughout.
#[test]
fn a_guest_flooding_the_host_with_objects_stays_within_its_caps() {
    let (_setup, server) = server(&[]);
    let bound_kib = (128 + 64 + 64) << 10; // memory + host-side cap + slack
    let attacks = [
        // One object past its 64 KiB: refused by trapping the instance.
        (
            "/web/fields-flood?122880",
            "total size of fields exceeds limit",
        ),
        // Objects within it, without end: the table fills at 1024.
        ("/web/fields-flood?61440", "resource table has no free keys"),
        ("/web/handle-flood", "resource table has no free keys"),
        ("/web/body-flood", "resource table has no free keys"),
    ];
    for (attack, why) in attacks {
        let (r, grew) = under_attack(&server, attack);
        eprintln!("{attack}: {grew:?} beyond the server's usage before");
        assert_eq!(r.status, 500, "{attack}");
        assert!(
            grew.rss_kib < bound_kib,
            "{attack}: RSS grew {} KiB",
            grew.rss_kib
        );
        assert!(grew.fds < 64, "{attack}: {} more descriptors", grew.fds);
        assert!(grew.threads < 16, "{attack}: {} more threads", grew.threads);
        server.wait_for_log(|l| {
            l.starts_with("[plugin web] trapped: host-side limit reached: ") && l.contains(why)
        });
    }
}

/// Each outbound request holds a connection: an instance may have 8 in
/// flight (the default), and the rest fail inside the guest with
/// connection-limit-reached. The upstream here accepts and never answers.
#[test]
fn a_guest_cannot_open_outbound_requests_without_end() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = upstream.local_addr().expect("addr").port();
    let held = std::thread::spawn(move || {
        let mut held = Vec::new();
        upstream.set_nonblocking(true).expect("nonblocking");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            match upstream.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            if held.len() > 64 {
                break;
            }
        }
        held.len()
    });
    let setup = Setup::new()
        .plugin("echo", "echo")
        .with(&component("http"), "web")
        .sidecar("web", "allowed_outbound_hosts = [\"http://127.0.0.1:*\"]\n");
    let server = setup.start(&[]);
    server.wait_for_plugin_line("Plugin web: /web /web/* (all methods; wasi:http component)");
    let before = usage(server.pid());
    let sampler = Sampler::start(server.pid());
    let r = server.get(&format!("/web/outbound-flood?http://127.0.0.1:{port}/"));
    let grew = sampler.stop();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "refused 56 of 64 (64 pending)\n");
    assert!(
        grew.fds.saturating_sub(before.fds) < 32,
        "{} more descriptors",
        grew.fds.saturating_sub(before.fds)
    );
    server.wait_for_log(|l| l.contains("refused: 8 already in flight"));
    assert_eq!(server.get("/file.txt").status, 200);
    drop(server);
    assert!(held.join().expect("upstream") <= 8);
}

/// 16 requests at once to a plugin whose instances reserve 64 MiB each,
/// under a guest-memory budget of 256 MiB: 4 run, the others are answered
/// at once with 503 and Retry-After instead of queueing memory the machine
/// may not have; once they end, the budget is whole again.
#[test]
fn concurrent_instances_past_the_guest_memory_budget_get_503() {
    let (_setup, server) = server(&["--plugin-memory", "64", "--guest-memory-budget", "256"]);
    let addr = server.addr;
    let clients: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                let raw = b"GET /web/sleep?1500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
                Response::parse(&support::exchange(addr, raw), false).expect("response")
            })
        })
        .collect();
    let answers: Vec<Response> = clients
        .into_iter()
        .map(|c| c.join().expect("client"))
        .collect();
    let ok = answers.iter().filter(|r| r.status == 200).count();
    let busy: Vec<&Response> = answers.iter().filter(|r| r.status == 503).collect();
    assert_eq!(
        ok + busy.len(),
        16,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!((1..=4).contains(&ok), "{ok} ran at once within 4 x 64 MiB");
    assert!(busy.len() >= 12);
    for r in busy {
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(r.text().contains("guest memory budget"), "{}", r.text());
    }
    // Static files never wait on the budget; the plugin answers again.
    assert_eq!(server.get("/file.txt").status, 200);
    assert_eq!(server.get("/web/sleep?10").status, 200);
    assert_eq!(server.get("/echo").status, 200);
}

/// Sends the head and `sent` bytes of a `len`-byte body to `target`, and
/// leaves the rest to the caller.
fn start_upload(server: &Server, target: &str, len: usize, sent: usize) -> std::net::TcpStream {
    let mut stream = server.connect();
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(&vec![b'u'; sent]).expect("send body");
    stream
}

/// Bodies held in memory for guests (a CGI-over-WASI plugin's stdin) and
/// bodies spooled to disk for CGI scripts each share a server-wide
/// budget: while one upload holds most of it, the next is answered 503
/// (and its connection closed, its body unread); the first completes,
/// and then there is room again.
#[test]
fn uploads_past_the_body_and_spool_budgets_get_503() {
    let (_setup, server) = server(&["--body-budget", "1", "--spool-budget", "1"]);
    for (target, what) in [
        ("/echo", "buffered bodies"),
        ("/cgi-bin/echo.sh", "spooled bodies"),
    ] {
        let len = 700 << 10;
        // The first holds 700 KiB of the 1 MiB (declared, or written).
        let mut first = start_upload(&server, target, len, len - 1);
        std::thread::sleep(Duration::from_millis(500));
        let mut second = start_upload(&server, target, len, 0);
        let _ = second.write_all(&vec![b'v'; len]);
        let r = Response::parse(&support::read_to_close(&mut second), false).expect("second");
        assert_eq!(r.status, 503, "{target}");
        assert_eq!(r.header("retry-after"), Some("1"), "{target}");
        assert_eq!(r.header("connection"), Some("close"), "{target}");
        assert!(
            r.text().contains(&format!("{what} budget")),
            "{target}: {}",
            r.text()
        );
        first.write_all(b"u").expect("the last byte");
        let r = Response::parse(&support::read_to_close(&mut first), false).expect("first");
        assert_eq!(r.status, 200, "{target}");
        let body = match r.header("transfer-encoding") {
            Some("chunked") => support::dechunk(&r.body).expect("whole chunked body"),
            _ => r.body.clone(),
        };
        assert!(body.ends_with(&vec![b'u'; 1000]), "{target}");
        // Given back: the same upload fits again.
        let mut third = start_upload(&server, target, len, len);
        let r = Response::parse(&support::read_to_close(&mut third), false).expect("third");
        assert_eq!(r.status, 200, "{target} after the others ended");
    }
    // A declared body larger than the whole budget is refused at once.
    let mut big = start_upload(&server, "/echo", 2 << 20, 0);
    let r = Response::parse(&support::read_to_close(&mut big), false).expect("big");
    assert_eq!(r.status, 503);
}

/// A log reader that stops reading (a full pipe) must not stop the server:
/// workers only queue their lines, the queue drops what does not fit and
/// counts it, and the writer says so once the log moves again. Before, the
/// first worker to write a line into the full pipe blocked, and with it
/// every connection on its thread.
#[test]
fn a_stalled_log_never_blocks_a_request() {
    use std::process::{Command, Stdio};
    let dir = support::site();
    write(dir.path(), "f.txt", "f");
    let mut child = Command::new(support::binary())
        .args(["0", "--bind", "127.0.0.1", "--directory"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wasmhttpd");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut banner = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut banner).expect("banner");
    let port = support::banner_port(&banner).expect("port");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // Nobody reads stderr: its pipe (64 KiB) fills after a few hundred
    // access log lines, each request target making its line ~1 KiB.
    let target = format!("/f.txt?{}", "q".repeat(1000));
    let started = Instant::now();
    for _ in 0..2000 {
        let mut stream = support::connect(addr);
        let raw = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        stream.write_all(raw.as_bytes()).expect("send");
        let r = Response::parse(&support::read_to_close(&mut stream), false).expect("response");
        assert_eq!(r.status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    // Now read the log: the lines that fit, and the count of those that
    // did not, once the writer could write again.
    let mut stderr = child.stderr.take().expect("stderr");
    let (found, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            log.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&log).contains("log line(s) dropped") {
                break;
            }
        }
        let _ = found.send(String::from_utf8_lossy(&log).into_owned());
    });
    let log = seen
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        log.contains("log line(s) dropped: the log was not being read fast enough"),
        "{}",
        &log[log.len().saturating_sub(500)..]
    );
}
