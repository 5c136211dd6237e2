//! The classic CGI backend (`--cgi`): scripts in CGI directories, run per
//! request, as Python's CGIHTTPRequestHandler runs them but per RFC 3875.
//!
//! A request routed here is looked up ([`super::locate`]), its body spooled
//! ([`super::spool`]), and the script started: a `.wasm` file as a
//! CGI-over-WASI module in the plugin sandbox ([`super::wasm`]), anything
//! else as a process ([`super::process`], through [`super::spawner`]). Its output then goes through the
//! same reader as a plugin's ([`super::output`]): held until it is known to
//! be good, then streamed; or passed through whole for an `nph-` script.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use super::dirs::CgiDirs;
use super::env::{OnDisk, Script, command_line, meta_variables};
use super::locate::{Located, locate};
use super::output::{Output, Produced, collect, pass_through};
use super::process::{self, Program};
use super::spawner::Spawner;
use super::spool::spool;
use super::wasm::WasmScripts;
use crate::budget::Budget;
use crate::error::HttpError;
use crate::fs_root::Root;
use crate::plugin::limits::Grants;
use crate::plugin::wagi::{Invocation, read_body};
use crate::request::Request;
use crate::request_body::RequestBody;
use crate::safe_path::UrlPath;

/// How classic CGI is configured.
#[derive(Debug, Clone)]
pub struct CgiSettings {
    /// The CGI directories.
    pub dirs: CgiDirs,
    /// How long a script process may run (`--cgi-timeout`).
    pub timeout: Duration,
    /// The largest request body a script is given (`--cgi-max-body`).
    pub max_body: u64,
}

/// The classic CGI backend.
#[derive(Debug)]
pub struct CgiScripts {
    settings: CgiSettings,
    wasm: WasmScripts,
    spawner: Spawner,
    /// The server's budget for spooled bodies.
    spool: Arc<Budget>,
}

impl CgiScripts {
    /// Scripts in `settings.dirs`; `.wasm` ones run with `wasm`, the
    /// others are started by `spawner`.
    pub fn new(
        settings: CgiSettings,
        wasm: WasmScripts,
        spawner: Spawner,
        spool: Arc<Budget>,
    ) -> CgiScripts {
        CgiScripts {
            settings,
            wasm,
            spawner,
            spool,
        }
    }

    /// The CGI directories.
    pub fn dirs(&self) -> &CgiDirs {
        &self.settings.dirs
    }

    /// One line for the banner.
    pub fn describe(&self) -> String {
        let dirs: Vec<String> = self.dirs().iter().map(|d| format!("{d}/")).collect();
        format!(
            "CGI: {} (scripts time out after {}s)",
            dirs.join(" "),
            self.settings.timeout.as_secs()
        )
    }

    /// Runs the script that `url` (in CGI directory `dir`) names.
    pub async fn serve(
        &self,
        root: &Root,
        request: &Request,
        body: &mut RequestBody<'_>,
        url: &UrlPath,
        dir: &str,
    ) -> Result<Output, HttpError> {
        let located = locate(root, url, dir)?;
        let tag = format!("[cgi {}]", located.script_name);
        let (produced, limit) = if located.is_wasm() {
            let produced = self
                .start_module(root, request, body, &located, &tag)
                .await?;
            (produced, self.wasm.limits().response)
        } else {
            let produced = self
                .start_process(root, request, body, &located, &tag)
                .await?;
            (produced, u64::MAX)
        };
        let output = if located.is_nph() {
            pass_through(produced, limit).await
        } else {
            collect(produced, limit).await
        };
        output.map_err(|rejected| rejected.logged(&tag))
    }

    async fn start_process(
        &self,
        root: &Root,
        request: &Request,
        body: &mut RequestBody<'_>,
        located: &Located,
        tag: &str,
    ) -> Result<Produced, HttpError> {
        let spooled = spool(body, self.settings.max_body, &self.spool).await?;
        let path = root.path().join(&located.relative);
        let script = Script {
            script_name: &located.script_name,
            path_info: &located.path_info,
            content_length: (spooled.len > 0).then_some(spooled.len),
            on_disk: Some(OnDisk {
                document_root: root.path(),
                script_filename: &path,
            }),
        };
        let env = meta_variables(request, &script);
        let program = Program {
            path: &path,
            args: command_line(request),
            env: &env,
            stdin: spooled.stdin,
            hold: spooled.held,
            tag,
            timeout: self.settings.timeout,
        };
        process::start(&self.spawner, program)
            .await
            .map_err(|error| {
                use std::io::ErrorKind;
                crate::log::line(format!("{tag} cannot run {}: {error}", path.display()));
                match error.kind() {
                    ErrorKind::PermissionDenied => HttpError::ScriptForbidden {
                        script: located.script_name.clone(),
                        why: "not executable",
                    },
                    _ => HttpError::Upstream(StatusCode::INTERNAL_SERVER_ERROR),
                }
            })
    }

    /// Starts a `.wasm` script in the sandbox.
    async fn start_module(
        &self,
        root: &Root,
        request: &Request,
        body: &mut RequestBody<'_>,
        located: &Located,
        tag: &str,
    ) -> Result<Produced, HttpError> {
        let stdin = read_body(body, self.wasm.limits(), self.wasm.runtime()).await?;
        let module = self
            .wasm
            .module(root, &located.relative, &located.metadata, tag)
            .await
            .map_err(|why| {
                crate::log::line(format!("{tag} {why}"));
                HttpError::Upstream(StatusCode::INTERNAL_SERVER_ERROR)
            })?;
        let name = located
            .relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let run = Invocation {
            name: &name,
            tag,
            grants: &Grants::default(),
            limits: self.wasm.limits(),
            script_name: &located.script_name,
            path_info: &located.path_info,
        };
        module.serve(self.wasm.runtime(), request, stdin, run)
    }
}
