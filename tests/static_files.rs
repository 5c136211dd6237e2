//! End to end: serving a directory as SimpleHTTPRequestHandler does, and
//! the ways in which wasmhttpd does better (validators, ranges, symlinks,
//! bounded memory).

mod support;

use std::os::unix::fs::symlink;

use support::{Server, site, write};

#[test]
fn file_has_content_type_length_and_last_modified() {
    let dir = site();
    write(dir.path(), "hello.txt", "hello\n");
    write(dir.path(), "page.html", "<p>x</p>");
    write(dir.path(), "data.unknownext", "x");
    write(dir.path(), "archive.tar.gz", "x");
    let server = Server::start(dir.path(), &[]);

    let r = server.get("/hello.txt");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello\n");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some("6"));
    let modified = r.header("last-modified").expect("last-modified");
    assert!(httpdate::parse_http_date(modified).is_ok(), "{modified}");
    assert!(r.header("date").is_some());
    assert!(
        r.header("server")
            .is_some_and(|s| s.starts_with("wasmhttpd/"))
    );

    assert_eq!(
        server.get("/page.html").header("content-type"),
        Some("text/html")
    );
    assert_eq!(
        server.get("/data.unknownext").header("content-type"),
        Some("application/octet-stream")
    );
    // Python's extensions_map: .gz is a media type, never a content coding.
    let gz = server.get("/archive.tar.gz");
    assert_eq!(gz.header("content-type"), Some("application/gzip"));
    assert_eq!(gz.header("content-encoding"), None);
}

#[test]
fn head_has_the_headers_of_get_and_no_body() {
    let dir = site();
    write(dir.path(), "f.txt", "0123456789");
    let server = Server::start(dir.path(), &[]);
    let raw = server.raw(b"HEAD /f.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8(raw).expect("utf-8");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Length: 10\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\n"),
        "HEAD must have no body: {text:?}"
    );
}

#[test]
fn query_and_fragment_are_ignored() {
    let dir = site();
    write(dir.path(), "f.txt", "x");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.get("/f.txt?a=b").body, b"x");
    assert_eq!(server.get("/f.txt?a=b#frag").body, b"x");
}

#[test]
fn percent_decoding_spaces_and_utf8_names() {
    let dir = site();
    write(dir.path(), "a file.txt", "space");
    write(dir.path(), "café.txt", "utf8");
    write(dir.path(), "50%.txt", "percent");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.get("/a%20file.txt").body, b"space");
    assert_eq!(server.get("/caf%C3%A9.txt").body, b"utf8");
    assert_eq!(server.get("/50%25.txt").body, b"percent");
}

#[test]
fn traversal_attempts_never_escape_the_root() {
    let outer = site();
    write(outer.path(), "secret.txt", "SECRET");
    write(outer.path(), "root/inside.txt", "inside");
    let server = Server::start(&outer.path().join("root"), &[]);
    for target in [
        "/../secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2E%2E/secret.txt",
        "/..\\secret.txt",
        "/..%5csecret.txt",
        "/inside.txt%00.png",
        "/./../../../../../../etc/passwd",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "//etc/passwd",
    ] {
        let r = server.get(target);
        assert!(r.status == 404 || r.status == 400, "{target}: {}", r.status);
        assert!(
            !r.text().contains("SECRET") && !r.text().contains("root:"),
            "{target} leaked"
        );
    }
    // Dot segments are resolved within the root, as Python's normpath does.
    assert_eq!(server.get("/../inside.txt").body, b"inside");
    assert_eq!(server.get("/a/b/../../inside.txt").body, b"inside");
}

#[test]
fn directory_without_slash_redirects_keeping_the_query() {
    let dir = site();
    std::fs::create_dir_all(dir.path().join("docs/sub")).expect("mkdir");
    let server = Server::start(dir.path(), &[]);
    let r = server.get("/docs?a=b&c");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/docs/?a=b&c"));
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(
        server.get("/docs/sub").header("location"),
        Some("/docs/sub/")
    );
}

#[test]
fn directory_redirect_is_never_an_open_redirect_cve_2021_28861() {
    let dir = site();
    std::fs::create_dir_all(dir.path().join("example.com")).expect("mkdir");
    let server = Server::start(dir.path(), &[]);
    for target in ["//example.com", "///example.com", "//example.com?x"] {
        let r = server.get(target);
        assert_eq!(r.status, 301, "{target}");
        let location = r.header("location").expect("location");
        assert!(
            location.starts_with("/example.com/"),
            "{target} → {location}"
        );
        assert!(!location.starts_with("//"), "{target} → {location}");
    }
}

#[test]
fn index_html_then_index_htm_then_listing() {
    let dir = site();
    write(dir.path(), "both/index.html", "html");
    write(dir.path(), "both/index.htm", "htm");
    write(dir.path(), "htm/index.htm", "htm only");
    std::fs::create_dir_all(dir.path().join("none/index.html"))
        .expect("a directory named index.html");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.get("/both/").body, b"html");
    assert_eq!(
        server.get("/both/").header("content-type"),
        Some("text/html")
    );
    assert_eq!(server.get("/htm/").body, b"htm only");
    assert!(
        server
            .get("/none/")
            .text()
            .contains("Directory listing for /none/")
    );
}

#[test]
fn listing_keeps_pythons_elements_sorted_escaped_and_encoded() {
    let dir = site();
    write(dir.path(), "b.txt", "12345");
    write(dir.path(), "A.txt", "");
    write(dir.path(), "<script>&.txt", "");
    write(dir.path(), "with space.txt", "");
    write(dir.path(), ".hidden", "");
    std::fs::create_dir(dir.path().join("Cdir")).expect("mkdir");
    symlink("b.txt", dir.path().join("link")).expect("symlink");
    symlink("Cdir", dir.path().join("linkdir")).expect("symlink");
    let server = Server::start(dir.path(), &[]);
    let r = server.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = r.text();
    assert!(html.starts_with("<!DOCTYPE HTML>"), "{html}");
    assert!(html.contains("<title>Directory listing for /</title>"));
    assert!(html.contains("<h1>Directory listing for /</h1>"));
    let items: Vec<&str> = html
        .lines()
        .filter(|l| l.starts_with("<li><a href="))
        .collect();
    let expected = [
        "<li><a href=\".hidden\">.hidden</a>",
        "<li><a href=\"%3Cscript%3E%26.txt\">&lt;script&gt;&amp;.txt</a>",
        "<li><a href=\"A.txt\">A.txt</a>",
        "<li><a href=\"b.txt\">b.txt</a>",
        "<li><a href=\"Cdir/\">Cdir/</a>",
        "<li><a href=\"link\">link@</a>",
        // As Python shows it: `@`, not `/@`, with a link to the directory.
        "<li><a href=\"linkdir/\">linkdir@</a>",
        "<li><a href=\"with%20space.txt\">with space.txt</a>",
    ];
    assert_eq!(items.len(), expected.len(), "{html}");
    for (item, prefix) in items.iter().zip(expected) {
        assert!(
            item.starts_with(prefix),
            "{item} should start with {prefix}"
        );
    }
    assert!(
        html.contains("title=\"5 bytes\">5 B</span>"),
        "size shown: {html}"
    );
    assert!(html.contains("<time datetime=\""), "time shown: {html}");
    assert!(html.contains("<ul>") && html.contains("</ul>"));
}

#[test]
fn listing_title_is_the_decoded_escaped_path() {
    let dir = site();
    std::fs::create_dir_all(dir.path().join("a b/<x>")).expect("mkdir");
    let server = Server::start(dir.path(), &[]);
    let html = server.get("/a%20b/%3Cx%3E/").text();
    assert!(
        html.contains("<title>Directory listing for /a b/&lt;x&gt;/</title>"),
        "{html}"
    );
}

#[test]
fn missing_files_and_file_with_trailing_slash_are_404_with_pythons_page() {
    let dir = site();
    write(dir.path(), "f.txt", "x");
    let server = Server::start(dir.path(), &[]);
    for target in ["/nope", "/f.txt/", "/dir/nope/"] {
        let r = server.get(target);
        assert_eq!(r.status, 404, "{target}");
        assert_eq!(r.header("content-type"), Some("text/html;charset=utf-8"));
        let html = r.text();
        assert!(html.contains("<p>Error code: 404</p>"), "{html}");
        assert!(html.contains("<p>Message: File not found.</p>"), "{html}");
        assert!(
            html.contains("<p>Error code explanation: 404 - Nothing matches the given URI.</p>")
        );
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
    }
}

#[test]
fn unreadable_file_and_directory_are_404() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: std::path::PathBuf, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    let dir = site();
    mode(dir.path().to_path_buf(), 0o755);
    write(dir.path(), "open.txt", "x");
    write(dir.path(), "locked.txt", "x");
    write(dir.path(), "private/inside.txt", "x");
    mode(dir.path().join("open.txt"), 0o644);
    mode(dir.path().join("locked.txt"), 0o000);
    mode(dir.path().join("private"), 0o000);
    // As root (CI), the server runs as nobody, for whom permissions apply.
    let server = Server::start_unprivileged(dir.path(), &[]);
    assert_eq!(server.get("/open.txt").status, 200);
    assert_eq!(server.get("/locked.txt").status, 404);
    assert_eq!(server.get("/private/").status, 404);
    assert_eq!(server.get("/private/inside.txt").status, 404);
    mode(dir.path().join("private"), 0o755);
}

#[test]
fn fifo_is_404_and_does_not_hang_the_server() {
    let dir = site();
    write(dir.path(), "ok.txt", "ok");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.path().join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.get("/pipe").status, 404);
    assert_eq!(server.get("/ok.txt").body, b"ok");
}

/// The size and time of a symlink's target outside the root are facts
/// about a file the server does not serve: the listing shows the link's.
#[test]
fn a_listing_shows_a_symlink_itself_not_its_target_outside_the_root() {
    let outside = site();
    write(outside.path(), "secret.bin", vec![b's'; 987_654]);
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(978_307_200); // 2001-01-01
    std::fs::File::options()
        .write(true)
        .open(outside.path().join("secret.bin"))
        .expect("open")
        .set_modified(old)
        .expect("set mtime");
    let dir = site();
    symlink(outside.path().join("secret.bin"), dir.path().join("escape")).expect("symlink");
    let server = Server::start(dir.path(), &[]);
    let html = server.get("/").text();
    let item = html
        .lines()
        .find(|l| l.starts_with("<li><a href=\"escape\">escape@</a>"))
        .unwrap_or_else(|| panic!("no item for the link: {html}"));
    assert!(!item.contains("987654"), "the target's size shown: {item}");
    assert!(
        !item.contains("2001-01-01"),
        "the target's time shown: {item}"
    );
    let link_len = outside.path().join("secret.bin").as_os_str().len();
    assert!(
        item.contains(&format!("title=\"{link_len} bytes\"")),
        "{item}"
    );
}

#[test]
fn symlink_out_of_the_root_is_404_unless_follow_symlinks() {
    let outside = site();
    write(outside.path(), "secret.txt", "SECRET");
    let dir = site();
    write(dir.path(), "real.txt", "real");
    symlink(
        outside.path().join("secret.txt"),
        dir.path().join("escape.txt"),
    )
    .expect("symlink");
    symlink(outside.path(), dir.path().join("escape-dir")).expect("symlink");
    symlink("real.txt", dir.path().join("inside.txt")).expect("symlink");

    let confined = Server::start(dir.path(), &[]);
    assert_eq!(confined.get("/escape.txt").status, 404);
    assert_eq!(confined.get("/escape-dir/secret.txt").status, 404);
    assert_eq!(confined.get("/escape-dir/").status, 404);
    assert_eq!(confined.get("/inside.txt").body, b"real");

    let following = Server::start(dir.path(), &["--follow-symlinks"]);
    assert_eq!(following.get("/escape.txt").body, b"SECRET");
    assert_eq!(following.get("/escape-dir/secret.txt").body, b"SECRET");
}

#[test]
fn if_modified_since_gives_304_unless_if_none_match_is_present() {
    let dir = site();
    write(dir.path(), "f.txt", "x");
    let server = Server::start(dir.path(), &[]);
    let first = server.get("/f.txt");
    let modified = first.header("last-modified").expect("lm").to_string();

    let r = server.request("GET", "/f.txt", &[("If-Modified-Since", &modified)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), None);

    let old = "Mon, 01 Jan 2001 00:00:00 GMT";
    assert_eq!(
        server
            .request("GET", "/f.txt", &[("If-Modified-Since", old)])
            .status,
        200
    );
    // A garbage date is ignored.
    assert_eq!(
        server
            .request("GET", "/f.txt", &[("If-Modified-Since", "yesterday")])
            .status,
        200
    );
    // If-None-Match takes precedence (RFC 9110 §13.2.2).
    let r = server.request(
        "GET",
        "/f.txt",
        &[
            ("If-Modified-Since", &modified),
            ("If-None-Match", "\"other\""),
        ],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn strong_etag_and_if_none_match() {
    let dir = site();
    write(dir.path(), "f.txt", "x");
    let server = Server::start(dir.path(), &[]);
    let etag = server
        .get("/f.txt")
        .header("etag")
        .expect("etag")
        .to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");

    let r = server.request("GET", "/f.txt", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = server.request(
        "HEAD",
        "/f.txt",
        &[("If-None-Match", &format!("\"a\", {etag}"))],
    );
    assert_eq!(r.status, 304);
    assert_eq!(
        server
            .request("GET", "/f.txt", &[("If-None-Match", "*")])
            .status,
        304
    );
    assert_eq!(
        server
            .request("GET", "/f.txt", &[("If-None-Match", "\"nope\"")])
            .status,
        200
    );

    // A changed file changes its tag.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(dir.path(), "f.txt", "y");
    let r = server.request("GET", "/f.txt", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"y");
}

#[test]
fn single_byte_ranges() {
    let dir = site();
    write(dir.path(), "digits", "0123456789");
    let server = Server::start(dir.path(), &[]);
    let r = server.request("GET", "/digits", &[("Range", "bytes=2-4")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"234");
    assert_eq!(r.header("content-range"), Some("bytes 2-4/10"));
    assert_eq!(r.header("content-length"), Some("3"));
    assert_eq!(
        server
            .request("GET", "/digits", &[("Range", "bytes=7-")])
            .body,
        b"789"
    );
    assert_eq!(
        server
            .request("GET", "/digits", &[("Range", "bytes=-3")])
            .body,
        b"789"
    );
    assert_eq!(
        server
            .request("GET", "/digits", &[("Range", "bytes=8-100")])
            .body,
        b"89"
    );
    assert_eq!(server.get("/digits").header("accept-ranges"), Some("bytes"));

    let r = server.request("GET", "/digits", &[("Range", "bytes=10-")]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */10"));

    // Several ranges, or a malformed one: the whole file.
    let r = server.request("GET", "/digits", &[("Range", "bytes=0-1,4-5")]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"0123456789"[..]));
    assert_eq!(
        server
            .request("GET", "/digits", &[("Range", "bytes=5-2")])
            .status,
        200
    );
}

#[test]
fn if_range_applies_the_range_only_to_the_same_version() {
    let dir = site();
    write(dir.path(), "digits", "0123456789");
    let server = Server::start(dir.path(), &[]);
    let first = server.get("/digits");
    let etag = first.header("etag").expect("etag").to_string();
    let modified = first.header("last-modified").expect("lm").to_string();
    let range = ("Range", "bytes=0-0");
    assert_eq!(
        server
            .request("GET", "/digits", &[range, ("If-Range", &etag)])
            .status,
        206
    );
    assert_eq!(
        server
            .request("GET", "/digits", &[range, ("If-Range", &modified)])
            .status,
        206
    );
    let stale = server.request("GET", "/digits", &[range, ("If-Range", "\"stale\"")]);
    assert_eq!((stale.status, stale.body.len()), (200, 10));
    let weak = format!("W/{etag}");
    assert_eq!(
        server
            .request("GET", "/digits", &[range, ("If-Range", &weak)])
            .status,
        200
    );
}

#[test]
fn large_file_streams_in_bounded_memory() {
    const SIZE: u64 = 512 << 20;
    let dir = site();
    let file = std::fs::File::create(dir.path().join("big.bin")).expect("create");
    file.set_len(SIZE).expect("sparse file");
    write(dir.path(), "mark.bin", b"\x01\x02\x03");
    let server = Server::start(dir.path(), &["--quiet"]);

    let mut stream = server.connect();
    std::io::Write::write_all(
        &mut stream,
        b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .expect("send");
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut head_seen = false;
    loop {
        let n = std::io::Read::read(&mut stream, &mut buf).expect("read");
        if n == 0 {
            break;
        }
        if !head_seen {
            let end = buf[..n]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("head in first read")
                + 4;
            assert!(
                std::str::from_utf8(&buf[..end])
                    .expect("head")
                    .contains(&format!("Content-Length: {SIZE}"))
            );
            total += (n - end) as u64;
            head_seen = true;
        } else {
            total += n as u64;
        }
    }
    assert_eq!(total, SIZE);
    let peak_mib = server.peak_rss_kib() / 1024;
    assert!(
        peak_mib < 64,
        "serving {} MiB took {peak_mib} MiB of memory",
        SIZE >> 20
    );
    // And a range from the middle of a large file is right.
    let r = server.request("GET", "/big.bin", &[("Range", "bytes=104857600-104857609")]);
    assert_eq!((r.status, r.body.len()), (206, 10));
}
