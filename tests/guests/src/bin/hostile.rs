//! Misbehaves as its query string says, or answers normally with `?ok`:
//! `spin`, `sleep`, `hog`, `recurse`, `panic`, `flood`, `late-fail`,
//! `exit`. The same plugin must serve `?ok` after any of them.
use std::io::Write;

#[expect(unconditional_recursion, reason = "the point of this mode")]
fn deeper(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 32]);
    deeper(frame[0] + 1) + frame[1]
}

fn main() {
    let mode = std::env::var("QUERY_STRING").unwrap_or_default();
    match mode.as_str() {
        "spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
        "hog" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
        }
        "recurse" => {
            let depth = deeper(0);
            test_guests::respond(&format!("{depth}"));
        }
        "panic" => {
            eprintln!("about to panic");
            panic!("boom");
        }
        "flood" => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"Content-Type: application/octet-stream\n\n");
            let chunk = vec![b'x'; 64 * 1024];
            while out.write_all(&chunk).is_ok() {}
        }
        "late-fail" => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"Content-Type: text/plain\n\n");
            let _ = out.write_all(&vec![b'a'; 256 * 1024]);
            let _ = out.flush();
            panic!("failed after the response started");
        }
        "exit" => {
            test_guests::respond("looks fine");
            std::process::exit(3);
        }
        _ => test_guests::respond("ok\n"),
    }
}
