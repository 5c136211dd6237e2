//! The [`Handler`] every protocol calls: route → plugin | CGI | static →
//! respond. It never fails.
//!
//! Every backend returns `Result<_, HttpError>`; an error becomes Python's
//! error page here, so whatever happens, the client gets a real response.
//! The protocol front end then frames and writes it (adding the headers every
//! response carries: `Server`, `Date`, `Content-Length`) and records it in
//! the access log.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode, header};

use crate::access_log::AccessLog;
use crate::cgi::output::Output;
use crate::cgi::scripts::CgiScripts;
use crate::error::HttpError;
use crate::fs_root::Root;
use crate::handler::Handler;
use crate::plugin::registry::Plugins;
use crate::request::Request;
use crate::request_body::RequestBody;
use crate::response::Response;
use crate::route::{Route, route};
use crate::safe_path::UrlPath;
use crate::static_files;

/// How many local redirects (RFC 3875 §6.2.2) one request may follow.
const MAX_LOCAL_REDIRECTS: u8 = 5;

/// Everything needed to answer requests.
#[derive(Debug)]
pub struct Service {
    root: Root,
    plugins: Option<Arc<Plugins>>,
    cgi: Option<CgiScripts>,
    access_log: AccessLog,
}

impl Service {
    /// A service serving `root`, with `plugins` and classic CGI if they
    /// are on.
    pub fn new(
        root: Root,
        plugins: Option<Arc<Plugins>>,
        cgi: Option<CgiScripts>,
        access_log: AccessLog,
    ) -> Service {
        // The plugins directory is never served as files.
        let root = root.hiding(plugins.as_ref().map(|p| p.dir()));
        Service {
            root,
            plugins,
            cgi,
            access_log,
        }
    }

    async fn dispatch(
        &self,
        request: &Request,
        body: &mut RequestBody<'_>,
        redirects: u8,
    ) -> Result<Response, HttpError> {
        let url = UrlPath::parse(request.path())?;
        let path = url.display();
        let table = self.plugins.as_ref().map(|plugins| plugins.table());
        let cgi_dirs = self.cgi.as_ref().map(CgiScripts::dirs);
        let (output, plugin) = match route(&request.method, &path, table.as_deref(), cgi_dirs) {
            Route::Plugin(matched) => {
                let runtime = self
                    .plugins
                    .as_ref()
                    .map(|p| p.runtime())
                    .ok_or(HttpError::Upstream(StatusCode::INTERNAL_SERVER_ERROR))?;
                let output = matched
                    .plugin
                    .serve(runtime, request, body, &matched)
                    .await?;
                (output, Some(matched.plugin))
            }
            Route::Cgi(dir) => {
                let cgi = self
                    .cgi
                    .as_ref()
                    .ok_or(HttpError::Upstream(StatusCode::INTERNAL_SERVER_ERROR))?;
                (cgi.serve(&self.root, request, body, &url, dir).await?, None)
            }
            Route::Static => return static_files::serve(&self.root, request, &url),
            Route::Unsupported => {
                return Err(HttpError::UnsupportedMethod(
                    request.method.as_str().to_owned(),
                ));
            }
        };
        match output {
            Output::Response(response) => Ok(response),
            Output::LocalRedirect(target) => {
                if redirects >= MAX_LOCAL_REDIRECTS {
                    let why = format!("more than {MAX_LOCAL_REDIRECTS} local redirects");
                    match plugin {
                        Some(plugin) => plugin.log(&why),
                        None => crate::log::line(format!("[cgi {path}] {why}")),
                    }
                    return Err(HttpError::Upstream(StatusCode::INTERNAL_SERVER_ERROR));
                }
                let redirected = local_redirect(request, target);
                Box::pin(self.dispatch(&redirected, &mut RequestBody::empty(), redirects + 1)).await
            }
        }
    }
}

impl Handler for Service {
    async fn handle(&self, request: &Request, body: &mut RequestBody<'_>) -> Response {
        self.dispatch(request, body, 0)
            .await
            .unwrap_or_else(|error| error.to_response())
    }

    fn log(&self, peer: SocketAddr, request_line: &[u8], status: StatusCode, size: Option<u64>) {
        self.access_log
            .record(peer.ip(), request_line, status, size);
    }
}

/// The GET that a script's `Location: /path` asks the server to answer
/// instead (RFC 3875 §6.2.2): same client and headers, no body.
fn local_redirect(request: &Request, target: String) -> Request {
    let mut headers = request.headers.clone();
    for name in [
        header::CONTENT_LENGTH,
        header::CONTENT_TYPE,
        header::TRANSFER_ENCODING,
        header::EXPECT,
    ] {
        headers.remove(name);
    }
    Request {
        method: Method::GET,
        target: Bytes::from(target),
        version: request.version,
        headers,
        head: Bytes::new(),
        peer: request.peer,
        local: request.local,
        secure: request.secure,
    }
}
