//! The CGI-over-WASI executor: a `wasm32-wasip1` command module, or a
//! component exporting `wasi:cli/run`, run as a CGI script (the WAGI
//! contract), one fresh instance per request.
//!
//! The request reaches the guest as RFC 3875 meta-variables (plus the
//! variables its sidecar grants) in the environment, and its body on stdin.
//! The guest writes a CGI response on stdout, through a 64 KiB pipe: when
//! the client reads slowly the guest blocks, so output is never held in
//! memory beyond that. Its stderr goes to the log, tagged with its name.
//! The same executor runs `.wasm` files in CGI directories.
//! It sees no directory, no host variable and no network that its sidecar
//! does not grant.
//!
//! Limits, each ending the instance with a clean status while nothing has
//! been sent (and an aborted response after):
//! - time: the epoch callback yields to the executor at every tick (a
//!   looping guest cannot hold a worker thread) and traps at the deadline;
//!   a wall-clock timeout around the whole run also covers time spent
//!   blocked in host calls (a guest that sleeps) → 504;
//! - memory: [`Caps`] caps linear memory; growing past it traps → 500;
//! - stack: wasmtime's stack limit turns runaway recursion into a trap → 500;
//! - a trap, a panic, or a non-zero exit status → 500;
//! - output: the response size cap (see `cgi::output`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use http::StatusCode;
use tokio::sync::oneshot;
use wasmtime::component::{Component, ResourceTableError};
use wasmtime::{InstancePre, Module, Trap};
use wasmtime_wasi::cli::AsyncStdoutStream;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};
use wasmtime_wasi_http::FieldMapError;

use super::engine::Runtime;
use super::limits::{Grants, Limits};
use super::outbound::Outbound;
use super::store::{
    Caps, ComponentState, DeadlineExceeded, GuestState, MemoryLimitReached, new_store,
};
use crate::budget::Share;
use crate::cgi::env::{Script, meta_variables};
use crate::cgi::output::Produced;
use crate::cgi::stderr::StderrLog;
use crate::error::HttpError;
use crate::request::Request;
use crate::request_body::RequestBody;
use crate::response::Failure;

/// Size of the pipe between the guest's stdout and the response.
const STDOUT_PIPE: usize = 64 * 1024;

/// A module or a `wasi:cli/run` component pre-linked against WASI, ready
/// to instantiate.
pub struct Wagi {
    pre: Pre,
}

enum Pre {
    Module(InstancePre<GuestState>),
    Command(CommandPre<ComponentState>),
}

impl std::fmt::Debug for Wagi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wagi").finish_non_exhaustive()
    }
}

/// One run of a module for a request: what it is called, what it is
/// granted, and where the request's path put it.
#[derive(Debug)]
pub struct Invocation<'a> {
    /// Its name, as `argv[0]`.
    pub name: &'a str,
    /// What its log lines start with: `[plugin NAME]`, `[cgi /cgi-bin/x.wasm]`.
    pub tag: &'a str,
    /// Directories and variables beyond the request.
    pub grants: &'a Grants,
    /// Time, memory, request body and output limits.
    pub limits: &'a Limits,
    /// `SCRIPT_NAME`: the path that selected the module.
    pub script_name: &'a str,
    /// `PATH_INFO`: the rest of the path.
    pub path_info: &'a str,
}

/// A request's body read whole for a guest's stdin, and the share of the
/// server's budget for buffered bodies it holds until the guest ends.
#[derive(Debug)]
pub struct Buffered {
    bytes: Bytes,
    held: Share,
}

/// A request's body, for a module's stdin: 413 beyond `limits`, 503 past
/// the server's budget for buffered bodies.
pub async fn read_body(
    body: &mut RequestBody<'_>,
    limits: &Limits,
    runtime: &Runtime,
) -> Result<Buffered, HttpError> {
    let mut held = runtime.budgets().bodies.empty_share();
    let bytes = body
        .read_to_end(limits.request_body, &mut held)
        .await
        .map_err(|e| e.to_http_error())?;
    Ok(Buffered { bytes, held })
}

impl Wagi {
    /// Whether `module` is a WASI command (it exports `_start`).
    pub fn is_command(module: &Module) -> bool {
        module.get_export("_start").is_some()
    }

    /// Checks that `module` is a WASI command and links it once.
    pub fn prepare(runtime: &Runtime, module: &Module) -> anyhow::Result<Wagi> {
        if !Wagi::is_command(module) {
            bail!(
                "the module exports no _start: it is not a WASI command (a reactor or a library?)"
            );
        }
        let pre = runtime
            .linker()
            .instantiate_pre(module)
            .map_err(|e| anyhow!("cannot link: {e:#}"))?;
        Ok(Wagi {
            pre: Pre::Module(pre),
        })
    }

    /// Links a component that exports `wasi:cli/run` once.
    pub fn prepare_command(runtime: &Runtime, component: &Component) -> anyhow::Result<Wagi> {
        let pre = CommandPre::new(runtime.link_component(component)?)
            .map_err(|e| anyhow!("cannot link: {e:#}"))?;
        Ok(Wagi {
            pre: Pre::Command(pre),
        })
    }

    /// Whether this runs a component rather than a core module.
    pub fn is_component(&self) -> bool {
        matches!(self.pre, Pre::Command(_))
    }

    /// Starts an instance for `request`, whose body (read within the
    /// request-body limit, see [`read_body`]) is `stdin`; its
    /// meta-variables are the environment. A failure to start is logged and
    /// answered with a 500.
    pub fn serve(
        &self,
        runtime: &Arc<Runtime>,
        request: &Request,
        stdin: Buffered,
        run: Invocation<'_>,
    ) -> Result<Produced, HttpError> {
        let script = Script {
            script_name: run.script_name,
            path_info: run.path_info,
            content_length: (!stdin.bytes.is_empty()).then_some(stdin.bytes.len() as u64),
            on_disk: None,
        };
        let env = meta_variables(request, &script);
        let memory = runtime.reserve_memory(run.limits.memory)?;
        self.start(runtime, &run, &env, stdin, memory)
            .map_err(|error| {
                crate::log::line(format!("{} {error:#}", run.tag));
                HttpError::Upstream(StatusCode::INTERNAL_SERVER_ERROR)
            })
    }

    fn start(
        &self,
        runtime: &Arc<Runtime>,
        run: &Invocation<'_>,
        env: &[(String, String)],
        stdin: Buffered,
        memory_share: Share,
    ) -> anyhow::Result<Produced> {
        let (stdout, output) = tokio::io::duplex(STDOUT_PIPE);
        let mut wasi = sandbox(run)?;
        let Buffered { bytes, held } = stdin;
        wasi.envs(env)
            .envs(&run.grants.env)
            .stdin(MemoryInputPipe::new(bytes))
            .stdout(AsyncStdoutStream::new(16 * 1024, stdout));
        let limits = run.limits;
        let deadline = Instant::now() + limits.timeout;
        let job = match &self.pre {
            Pre::Module(pre) => {
                let state = GuestState {
                    wasi: wasi.build_p1(),
                    caps: Caps::module(limits.memory),
                };
                Job::Module(pre.clone(), new_store(runtime.engine(), state, deadline))
            }
            Pre::Command(pre) => {
                // A command sends no outbound requests.
                let state =
                    ComponentState::new(wasi.build(), &Outbound::default(), limits.host_caps());
                Job::Command(pre.clone(), new_store(runtime.engine(), state, deadline))
            }
        };
        let slots = Arc::clone(runtime.slots());
        let timeout = limits.timeout;
        let memory = limits.memory;
        let tag = run.tag.to_string();
        let (report, outcome) = oneshot::channel();
        let task = tokio::spawn(async move {
            // The budgets' shares are given back when the instance ends.
            let _held = (held, memory_share);
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            // The store lives in the job's future: it is dropped, closing
            // stdout, before the outcome is reported, so the reader sees
            // the end of the output first.
            let result = tokio::time::timeout(timeout, job.run()).await;
            let verdict = judge(result, timeout, memory);
            if let Err(failure) = &verdict {
                crate::log::line(format!("{tag} {}", failure.reason));
            }
            let _ = report.send(verdict);
        });
        Ok(Produced {
            output: Box::pin(output),
            outcome,
            producer: task.abort_handle(),
        })
    }
}

/// An instance to run, with its store.
enum Job {
    Module(InstancePre<GuestState>, wasmtime::Store<GuestState>),
    Command(CommandPre<ComponentState>, wasmtime::Store<ComponentState>),
}

impl Job {
    async fn run(self) -> wasmtime::Result<()> {
        match self {
            Job::Module(pre, mut store) => {
                let instance = pre.instantiate_async(&mut store).await?;
                let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                start.call_async(&mut store, ()).await
            }
            Job::Command(pre, mut store) => {
                let command = pre.instantiate_async(&mut store).await?;
                match command.wasi_cli_run().call_run(&mut store).await? {
                    Ok(()) => Ok(()),
                    Err(()) => Err(wasmtime::Error::new(I32Exit(1))),
                }
            }
        }
    }
}

/// The sandbox every guest starts from: its name as `argv[0]`, the
/// directories its sidecar grants, no network, stderr to the log.
pub fn sandbox(run: &Invocation<'_>) -> anyhow::Result<WasiCtxBuilder> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.arg(run.name)
        .stderr(AsyncStdoutStream::new(4096, StderrLog::new(run.tag)))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for dir in &run.grants.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        wasi.preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| anyhow!("cannot grant {}: {e:#}", dir.host.display()))?;
    }
    Ok(wasi)
}

/// How an instance's run ended, as the client will be told.
pub fn judge(
    result: Result<wasmtime::Result<()>, tokio::time::error::Elapsed>,
    timeout: Duration,
    memory: u64,
) -> Result<(), Failure> {
    let failed = |status, reason: String| Err(Failure { status, reason });
    let timed_out = || {
        failed(
            StatusCode::GATEWAY_TIMEOUT,
            format!("stopped after its time limit of {}s", timeout.as_secs()),
        )
    };
    let error = match result {
        Err(_) => return timed_out(),
        Ok(Ok(())) => return Ok(()),
        Ok(Err(error)) => error,
    };
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return match exit.0 {
            0 => Ok(()),
            code => failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("exited with status {code}"),
            ),
        };
    }
    fn caused_by<E: std::error::Error + Send + Sync + 'static>(error: &wasmtime::Error) -> bool {
        error.is::<E>() || error.chain().any(|e| e.is::<E>())
    }
    if caused_by::<DeadlineExceeded>(&error) {
        return timed_out();
    }
    if caused_by::<MemoryLimitReached>(&error) {
        return failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("memory limit of {} MiB reached", memory >> 20),
        );
    }
    // What it made the host hold is capped too (see `store::HostCaps`).
    if caused_by::<ResourceTableError>(&error) || caused_by::<FieldMapError>(&error) {
        return failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("trapped: host-side limit reached: {}", error.root_cause()),
        );
    }
    let reason = match error.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "stack overflow (unbounded recursion?)".to_string(),
        Some(Trap::UnreachableCodeReached) => {
            "trapped: unreachable (a panic or an abort)".to_string()
        }
        Some(trap) => format!("trapped: {trap}"),
        None => format!("failed: {}", first_line(&error.root_cause().to_string())),
    };
    failed(StatusCode::INTERNAL_SERVER_ERROR, reason)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
