//! The response every backend produces, before the HTTP/1 writer frames it.
//!
//! Backends say *what* to send: a status, headers, and a body that is empty,
//! a buffer, or a region of an open file. The writer (`http1::write`) decides
//! *how*: `Content-Length`, `Connection`, no body for HEAD, 1xx, 204 and 304,
//! and `sendfile(2)` for file regions.

use std::fs::File;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// A response on its way to the client.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// Header fields; the writer adds `Content-Length` and `Connection`.
    pub headers: HeaderMap,
    /// The content.
    pub body: Body,
}

impl Response {
    /// A response with no header fields yet (room for a file response's).
    pub fn new(status: StatusCode, body: Body) -> Response {
        Response {
            status,
            headers: HeaderMap::with_capacity(6),
            body,
        }
    }
}

/// A response's content.
#[derive(Debug)]
pub enum Body {
    /// No content (`Content-Length: 0` where a length is allowed).
    Empty,
    /// Content held in memory.
    Bytes(Bytes),
    /// `len` bytes of an open file from `offset`, sent without copying
    /// through user space.
    File {
        /// The open file.
        file: File,
        /// Where the content starts.
        offset: u64,
        /// How many bytes to send.
        len: u64,
    },
}

impl Body {
    /// The content's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    /// Whether the content is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
