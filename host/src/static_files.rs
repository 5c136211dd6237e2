//! GET and HEAD from the served directory: files, index pages, listings.
//!
//! The way through, as Python's SimpleHTTPRequestHandler goes:
//! decode the path (`safe_path`), open it beneath the root (`fs_root`); a
//! directory without a trailing slash is redirected (301) to the same path
//! with one, keeping the query; a directory with one serves `index.html`,
//! then `index.htm`, then a listing; a regular file is served with its
//! validators, subject to conditional and range headers; anything else
//! (missing, unreadable, a FIFO, a device, a symlink out of the root) is 404.
//!
//! File I/O is synchronous, on the worker thread, as nginx does it without
//! `aio threads`: a small file costs one `openat2`, one `fstat` and one
//! `pread` from the page cache, cheaper than a hop to a blocking pool. This
//! module only opens and inspects the file; the writer reads a small one
//! straight into the response buffer after the head, and sends a large one
//! with `sendfile(2)`, in bounded memory.

use std::fs::File;

use http::{HeaderValue, StatusCode, header};
use rustix::fs::{FileType, Stat};

use crate::error::{HttpError, error_page};
use crate::fs_root::Root;
use crate::listing;
use crate::mime;
use crate::range::{self, RangeRequest};
use crate::request::Request;
use crate::response::{Body, Response};
use crate::safe_path::UrlPath;
use crate::validators::Validators;

const NOT_FOUND: HttpError = HttpError::NotFound("File not found");

/// Answers a GET or HEAD from the directory for `url`, the request's
/// decoded path.
pub fn serve(root: &Root, request: &Request, url: &UrlPath) -> Result<Response, HttpError> {
    let relative = url.relative();
    let file = root.open(relative).map_err(|_| NOT_FOUND)?;
    let stat = rustix::fs::fstat(&file).map_err(|_| NOT_FOUND)?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => {
            if !url.trailing_slash {
                return Ok(redirect_to_directory(request));
            }
            for index in ["index.html", "index.htm"] {
                if let Ok(page) = root.open(&relative.join(index))
                    && let Ok(stat) = rustix::fs::fstat(&page)
                    && FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
                {
                    return file_response(request, page, &stat, index.as_bytes());
                }
            }
            listing::render(&file, url)
        }
        FileType::RegularFile if !url.trailing_slash => {
            file_response(request, file, &stat, url.file_name().unwrap_or_default())
        }
        _ => Err(NOT_FOUND),
    }
}

/// 301 to the directory's path with a trailing slash. The `Location` is the
/// path as the client sent it (so its encoding survives) with leading
/// slashes collapsed to one, so that it can never read as `//host/…`, a
/// link to another site (CVE-2021-28861); the query is kept.
fn redirect_to_directory(request: &Request) -> Response {
    let path = request.path();
    let trimmed = &path[path.iter().take_while(|&&b| b == b'/').count()..];
    let mut location = Vec::with_capacity(path.len() + 2);
    location.push(b'/');
    location.extend_from_slice(trimmed);
    location.push(b'/');
    if let Some(query) = request.query() {
        location.push(b'?');
        location.extend_from_slice(query);
    }
    let mut response = Response::new(StatusCode::MOVED_PERMANENTLY, Body::Empty);
    if let Ok(value) = HeaderValue::from_bytes(&location) {
        response.headers.insert(header::LOCATION, value);
    }
    response
}

/// A regular file, with validators, conditionals and ranges applied.
fn file_response(
    request: &Request,
    file: File,
    stat: &Stat,
    name: &[u8],
) -> Result<Response, HttpError> {
    let size = stat.st_size.max(0).unsigned_abs();
    let mtime_nanos = u32::try_from(stat.st_mtime_nsec).unwrap_or(0);
    let validators = Validators::new(stat.st_ino, size, stat.st_mtime, mtime_nanos);

    if validators.not_modified(&request.headers) {
        let mut response = Response::new(StatusCode::NOT_MODIFIED, Body::Empty);
        response
            .headers
            .insert(header::ETAG, validators.etag_value());
        response
            .headers
            .insert(header::LAST_MODIFIED, validators.last_modified());
        return Ok(response);
    }

    let range = match request.headers.get(header::RANGE) {
        Some(value)
            if request
                .headers
                .get(header::IF_RANGE)
                .is_none_or(|v| validators.if_range_holds(v)) =>
        {
            range::parse(value.as_bytes(), size)
        }
        _ => RangeRequest::Full,
    };
    let (status, start, len) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, size),
        RangeRequest::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut response = error_page(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "Requested Range Not Satisfiable",
            );
            if let Ok(value) = HeaderValue::try_from(format!("bytes */{size}")) {
                response.headers.insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };

    let body = Body::File {
        file,
        offset: start,
        len,
    };
    let mut response = Response::new(status, body);
    let headers = &mut response.headers;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(mime::for_name(name)),
    );
    headers.insert(header::LAST_MODIFIED, validators.last_modified());
    headers.insert(header::ETAG, validators.etag_value());
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) =
            HeaderValue::try_from(format!("bytes {start}-{}/{size}", start + len - 1))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}
