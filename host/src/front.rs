//! What a new connection speaks: TLS or plain, then HTTP/1 or HTTP/2.
//!
//! - On a TLS port, the first byte must open a TLS handshake record. A
//!   client that speaks plain HTTP instead is answered 400, saying that
//!   the port speaks HTTPS, and the connection closes (as nginx does). The
//!   handshake must complete within the header timeout.
//! - After the handshake, ALPN decides: `h2` is HTTP/2, anything else
//!   HTTP/1.1.
//! - On a plain port (and over TLS without `h2` agreed), a client that
//!   opens with HTTP/2's connection preface gets HTTP/2 (prior knowledge,
//!   RFC 9113 §3.3); any other first bytes are HTTP/1. The bytes read to
//!   tell are handed on, never lost.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use crate::error::HttpError;
use crate::handler::Handler;
use crate::http1::transport::Transport;
use crate::http1::{conn, write};
use crate::http2;
use crate::pace::Pace;
use crate::request::Ends;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Everything a connection is served with.
#[derive(Debug)]
pub struct Front<H> {
    /// What answers requests.
    pub handler: Arc<H>,
    /// HTTP/1's settings.
    pub http1: Arc<conn::Settings>,
    /// HTTP/2's settings.
    pub http2: Arc<http2::Settings>,
    /// The TLS configuration, on a TLS port.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl<H: Handler> Front<H> {
    /// Serves `stream` until it closes.
    pub async fn serve(&self, stream: TcpStream, ends: Ends, shutdown: watch::Receiver<bool>) {
        let _ = stream.set_nodelay(true);
        let Some(config) = &self.tls else {
            return self.detect(stream, ends, shutdown).await;
        };
        let header_timeout = self.http1.header_timeout;
        let mut first = [0u8; 1];
        match timeout(header_timeout, stream.peek(&mut first)).await {
            Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {}
            Ok(Ok(1)) => return self.refuse_plain(stream, ends).await,
            _ => return,
        }
        let Ok(Ok(tls)) = timeout(
            header_timeout,
            TlsAcceptor::from(Arc::clone(config)).accept(stream),
        )
        .await
        else {
            return;
        };
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            let handler = Arc::clone(&self.handler);
            http2::serve(tls, ends, handler, Arc::clone(&self.http2), shutdown).await;
        } else {
            self.detect(tls, ends, shutdown).await;
        }
    }

    /// HTTP/2 if `stream` opens with its preface, else HTTP/1.
    async fn detect<S: Transport + 'static>(
        &self,
        mut stream: S,
        ends: Ends,
        shutdown: watch::Receiver<bool>,
    ) {
        let mut buf = BytesMut::with_capacity(4096);
        let prefix = timeout(
            self.http1.header_timeout,
            read_prefix(&mut stream, &mut buf),
        )
        .await;
        match prefix {
            Ok(Ok(true)) => {
                let io = Rewind {
                    prefix: buf,
                    inner: stream,
                };
                let handler = Arc::clone(&self.handler);
                http2::serve(io, ends, handler, Arc::clone(&self.http2), shutdown).await;
            }
            Ok(Ok(false)) => {
                conn::serve(stream, buf, ends, &*self.handler, &self.http1, shutdown).await;
            }
            // Nothing in time (HTTP/1 would have closed too), or gone.
            Ok(Err(_)) | Err(_) => {}
        }
    }

    /// Answers plain HTTP on a TLS port, then closes.
    async fn refuse_plain(&self, mut stream: TcpStream, ends: Ends) {
        let error = HttpError::BadRequest("This port speaks HTTPS: use an https:// URL".to_owned());
        let framing = write::Framing {
            version: http::Version::HTTP_11,
            request_version: http::Version::HTTP_11,
            head_only: false,
            keep_alive: false,
        };
        let mut pace = Pace::new(self.http1.min_rate, self.http1.io_timeout);
        let response = error.to_response();
        let status = response.status;
        let written = write::write_response(&mut stream, response, framing, &mut pace).await;
        self.handler.log(
            ends.peer,
            b"(plain HTTP to the HTTPS port)",
            status,
            written.ok().map(|w| w.body_bytes),
        );
        conn::linger_close(&mut stream).await;
    }
}

/// Reads until `buf` either holds HTTP/2's whole preface (`true`) or
/// differs from it (`false`); an error if the client leaves first.
async fn read_prefix<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut) -> io::Result<bool> {
    loop {
        let n = buf.len().min(http2::PREFACE.len());
        if buf[..n] != http2::PREFACE[..n] {
            return Ok(false);
        }
        if n == http2::PREFACE.len() {
            return Ok(true);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// A stream with bytes already read from it put back in front.
struct Rewind<S> {
    prefix: BytesMut,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(out.remaining());
            out.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
