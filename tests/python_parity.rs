//! End to end, differential: the same tree served by `python3 -m http.server`
//! (the reference implementation) and by wasmhttpd, compared on the wire.
//!
//! Where wasmhttpd is deliberately different, the test says so in its name.
//! Skipped, loudly, when python3 is not installed.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::process::{Child, Command, Stdio};

use support::{Response, Server, exchange, site, write};

struct Python {
    child: Child,
    addr: SocketAddr,
}

impl Python {
    fn start(dir: &std::path::Path) -> Option<Python> {
        let mut child = match Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "-b", "127.0.0.1", "-d"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(_) => {
                eprintln!("SKIPPED: python3 not found; the Python parity tests did not run");
                return None;
            }
        };
        let mut banner = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut banner)
            .expect("banner");
        let port = support::banner_port(&banner)?;
        Some(Python {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    fn get(&self, target: &str) -> Response {
        fetch(self.addr, target)
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fetch(addr: SocketAddr, target: &str) -> Response {
    let raw = format!("GET {target} HTTP/1.0\r\nHost: t\r\n\r\n");
    Response::parse(&exchange(addr, raw.as_bytes()), false).expect("response")
}

fn tree() -> tempfile::TempDir {
    let dir = site();
    write(dir.path(), "hello.txt", "hello\n");
    write(dir.path(), "page.html", "<p>page</p>");
    write(dir.path(), "img.png", b"\x89PNG\r\n\x1a\n");
    write(dir.path(), "a b/c d.txt", "spaces");
    write(dir.path(), "café/menu.txt", "utf-8");
    write(dir.path(), "withindex/index.html", "index");
    write(dir.path(), "withhtm/index.htm", "htm");
    write(dir.path(), "list/B.txt", "b");
    write(dir.path(), "list/a.txt", "a");
    write(dir.path(), "list/<&>.txt", "x");
    write(dir.path(), "list/.dot", "x");
    std::fs::create_dir_all(dir.path().join("list/sub")).expect("mkdir");
    symlink("a.txt", dir.path().join("list/link")).expect("symlink");
    dir
}

fn links(html: &str) -> Vec<String> {
    html.lines()
        .filter_map(|l| l.strip_prefix("<li><a href=\""))
        .map(|l| {
            let end = l.find("</a>").expect("closing tag");
            l[..end].to_string()
        })
        .collect()
}

#[test]
fn same_answers_as_python_for_files_redirects_and_errors() {
    let dir = tree();
    let Some(python) = Python::start(dir.path()) else {
        return;
    };
    let ours = Server::start(dir.path(), &[]);
    for target in [
        "/hello.txt",
        "/hello.txt?query=1",
        "/page.html",
        "/img.png",
        "/a%20b/c%20d.txt",
        "/caf%C3%A9/menu.txt",
        "/withindex/",
        "/withhtm/",
        "/withindex",
        "/list?x=1",
        "/missing",
        "/hello.txt/",
        "/../hello.txt",
        "/a%20b/../hello.txt",
        "//withindex",
    ] {
        let theirs = python.get(target);
        let mine = ours.get(target);
        assert_eq!(mine.status, theirs.status, "status for {target}");
        assert_eq!(mine.body, theirs.body, "body for {target}");
        assert_eq!(
            mine.header("location"),
            theirs.header("location"),
            "Location for {target}"
        );
        if theirs.status == 200 {
            assert_eq!(
                mine.header("content-type"),
                theirs.header("content-type"),
                "type of {target}"
            );
            assert_eq!(
                mine.header("last-modified"),
                theirs.header("last-modified"),
                "{target}"
            );
        }
    }
}

#[test]
fn same_listing_links_and_title_as_python() {
    let dir = tree();
    let Some(python) = Python::start(dir.path()) else {
        return;
    };
    let ours = Server::start(dir.path(), &[]);
    for target in ["/list/", "/", "/a%20b/"] {
        let theirs = python.get(target).text();
        let mine = ours.get(target).text();
        assert_eq!(links(&mine), links(&theirs), "links of {target}");
        let title = |html: &str| {
            html.lines()
                .find(|l| l.starts_with("<title>"))
                .map(str::to_string)
        };
        assert_eq!(title(&mine), title(&theirs), "title of {target}");
    }
}

#[test]
fn same_error_page_as_python_for_unsupported_methods() {
    let dir = tree();
    let Some(python) = Python::start(dir.path()) else {
        return;
    };
    let ours = Server::start(dir.path(), &[]);
    let post = |addr: SocketAddr| {
        let raw = b"POST /hello.txt HTTP/1.0\r\nContent-Length: 0\r\n\r\n";
        Response::parse(&exchange(addr, raw), false).expect("response")
    };
    let (theirs, mine) = (post(python.addr), post(ours.addr));
    assert_eq!(mine.status, 501);
    assert_eq!(mine.body, theirs.body);
}

#[test]
fn encoded_slash_is_refused_where_python_3_11_redirects_to_a_path_that_does_not_exist() {
    let dir = tree();
    let Some(python) = Python::start(dir.path()) else {
        return;
    };
    let ours = Server::start(dir.path(), &[]);
    assert_eq!(python.get("/withindex%2f").status, 301);
    assert_eq!(ours.get("/withindex%2f").status, 400);
}
