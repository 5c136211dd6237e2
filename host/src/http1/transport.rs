//! What HTTP/1 runs over: a plain TCP socket or a TLS session on one.
//!
//! The connection layer is generic over the byte stream. A plain socket
//! also lends itself to `sendfile(2)`, so file bodies skip user space; a
//! TLS session must encrypt them, so they are read and written instead.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A bidirectional byte stream a connection is served on.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// The socket beneath, when bytes written to it reach the client
    /// unchanged (so `sendfile(2)` may write to it directly).
    fn raw_socket(&self) -> Option<&TcpStream> {
        None
    }
}

impl Transport for TcpStream {
    fn raw_socket(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport for tokio_rustls::server::TlsStream<S> {}
