//! The directory listing page.
//!
//! It keeps every element of Python's listing, so scripts that scrape it
//! keep working: the title and `<h1>` `Directory listing for /path/`, and a
//! `<ul>` whose items start `<li><a href="…">name</a>`, sorted by name
//! case-insensitively, `/` after directories and `@` after symlinks, names
//! HTML-escaped and hrefs percent-encoded. Each item then carries the size
//! and modification time (UTC), and a small stylesheet lays the page out as
//! columns that read well in a light or dark browser.

use std::fs::File;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use rustix::fs::{AtFlags, Dir, FileType, Stat};

use crate::error::{HttpError, html_escape};
use crate::response::{Body, Response};
use crate::safe_path::UrlPath;

const STYLE: &str = "<style>\n\
:root { color-scheme: light dark; font-family: system-ui, sans-serif; }\n\
body { max-width: 60rem; margin: 1rem auto; padding: 0 1rem; }\n\
ul { list-style: none; padding: 0; font-family: ui-monospace, monospace; }\n\
li { display: flex; gap: 1rem; padding: .15rem .25rem; border-radius: 4px; }\n\
li:hover { background: color-mix(in srgb, currentColor 8%, transparent); }\n\
li a { flex: 1; overflow-wrap: anywhere; }\n\
.size { min-width: 6rem; text-align: right; opacity: .7; }\n\
time { opacity: .7; white-space: nowrap; }\n\
</style>";

struct Entry {
    name: Vec<u8>,
    sort_key: String,
    is_dir: bool,
    is_symlink: bool,
    size: Option<u64>,
    mtime: Option<i64>,
}

/// Renders the listing of the open directory `dir`, reached by `url`.
pub fn render(dir: &File, url: &UrlPath) -> Result<Response, HttpError> {
    let entries =
        read_entries(dir).map_err(|_| HttpError::NotFound("No permission to list directory"))?;
    let title = format!("Directory listing for {}", html_escape(&url.display()));
    let mut html = String::with_capacity(1024 + entries.len() * 160);
    html.push_str("<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    html.push_str(STYLE);
    html.push_str(&format!(
        "\n<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n<hr>\n<ul>\n"
    ));
    for entry in &entries {
        push_item(&mut html, entry);
    }
    html.push_str("</ul>\n<hr>\n</body>\n</html>\n");

    let mut response = Response::new(StatusCode::OK, Body::Bytes(Bytes::from(html)));
    response.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(response)
}

fn push_item(html: &mut String, entry: &Entry) {
    let display = String::from_utf8_lossy(&entry.name);
    let mut href = percent_encode(&entry.name);
    let mut text = html_escape(&display).into_owned();
    // As Python: a symlink shows `@` (a link to a directory too, whose
    // href still ends in `/`), a directory `/`.
    if entry.is_dir {
        href.push('/');
    }
    if entry.is_symlink {
        text.push('@');
    } else if entry.is_dir {
        text.push('/');
    }
    html.push_str(&format!("<li><a href=\"{href}\">{text}</a>"));
    match (entry.is_dir, entry.size) {
        (false, Some(size)) => html.push_str(&format!(
            "<span class=\"size\" title=\"{size} bytes\">{}</span>",
            human_size(size)
        )),
        _ => html.push_str("<span class=\"size\">-</span>"),
    }
    if let Some(time) = entry
        .mtime
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
    {
        html.push_str(&format!(
            "<time datetime=\"{}\">{}</time>",
            time.format("%Y-%m-%dT%H:%M:%SZ"),
            time.format("%Y-%m-%d %H:%M")
        ));
    }
    html.push_str("</li>\n");
}

fn read_entries(dir: &File) -> rustix::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for item in Dir::read_from(dir)? {
        let item = item?;
        let name = item.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let own = rustix::fs::statat(dir, item.file_name(), AtFlags::SYMLINK_NOFOLLOW).ok();
        let is_symlink = own.as_ref().is_some_and(|s| kind(s) == FileType::Symlink);
        let target = if is_symlink {
            rustix::fs::statat(dir, item.file_name(), AtFlags::empty()).ok()
        } else {
            own
        };
        let is_dir = target
            .as_ref()
            .is_some_and(|s| kind(s) == FileType::Directory);
        // A symlink's size and time are its own: its target may lie outside
        // the root, and nothing of what is there is shown.
        let lossy = String::from_utf8_lossy(name);
        entries.push(Entry {
            name: name.to_vec(),
            sort_key: lossy.to_lowercase(),
            is_dir,
            is_symlink,
            size: own.as_ref().map(|s| s.st_size.max(0).unsigned_abs()),
            mtime: own.as_ref().map(|s| s.st_mtime),
        });
    }
    entries.sort_by(|a, b| {
        a.sort_key
            .cmp(&b.sort_key)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(entries)
}

fn kind(stat: &Stat) -> FileType {
    FileType::from_raw_mode(stat.st_mode)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, as
/// Python's `urllib.parse.quote` does.
pub fn percent_encode(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for &b in name {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn human_size(size: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if size < 1024 {
        return format!("{size} B");
    }
    let mut value = size as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_python_quote() {
        assert_eq!(percent_encode(b"a b&c.txt"), "a%20b%26c.txt");
        assert_eq!(percent_encode("é".as_bytes()), "%C3%A9");
        assert_eq!(percent_encode(b"<x>\"'"), "%3Cx%3E%22%27");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(10 << 20), "10.0 MiB");
    }
}
