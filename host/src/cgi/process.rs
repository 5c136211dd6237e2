//! Runs a CGI program as a process (RFC 3875 §4.4, §7.2).
//!
//! The program starts (through the [`Spawner`]) in its own directory, in a
//! process group of its own, with the meta-variables and only a few
//! harmless variables of the server's environment ([`INHERITED`]); when the
//! server runs as root it runs as `nobody` (and `nobody`'s group, with no
//! supplementary groups).
//! Its stdin is the spooled request body, its stdout is read as the
//! response (through a pipe: a slow client blocks the program, never the
//! server's memory), its stderr goes to the log tagged with the script.
//!
//! Its process group lives as long as its response: it is killed when the
//! program exits (leftover children cannot hold the response open), when
//! the time limit passes (→ 504, or an aborted response once committed),
//! and when the response is dropped (the client went away, or a HEAD
//! request needed no body). Work that must outlive the request has to
//! leave the group (`setsid`).

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use rustix::fs::{Mode, OFlags};
use rustix::pipe::PipeFlags;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::unix::pipe;
use tokio::sync::oneshot;

use super::output::Produced;
use super::spawner::wire::Spawn;
use super::spawner::{Running, Spawner};
use super::spool::Stdin;
use super::stderr::StderrLog;
use crate::budget::Share;
use crate::response::Failure;

/// The server's environment variables a program may see (besides the
/// meta-variables); `PATH` gets a default when the server has none.
pub const INHERITED: [&str; 5] = ["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ"];

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A program to run for one request.
#[derive(Debug)]
pub struct Program<'a> {
    /// Its absolute path.
    pub path: &'a Path,
    /// Its command-line arguments (RFC 3875 §4.4: an "indexed" query's words).
    pub args: Vec<String>,
    /// The meta-variables.
    pub env: &'a [(String, String)],
    /// The request body.
    pub stdin: Stdin,
    /// What the body holds of the server's spool budget: held until the
    /// program ends (it may read its stdin to the last moment).
    pub hold: Share,
    /// What its log lines start with: `[cgi /cgi-bin/x]`.
    pub tag: &'a str,
    /// How long it may run.
    pub timeout: Duration,
}

/// The longest a killed program's exit may take to be reported.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Starts `program` through `spawner`; its output and outcome come back as
/// a [`Produced`].
pub async fn start(spawner: &Spawner, program: Program<'_>) -> io::Result<Produced> {
    let (stdout, stdout_end) = os_pipe()?;
    let (stderr, stderr_end) = os_pipe()?;
    let (stdin_end, feed_body) = match program.stdin {
        Stdin::Empty => (
            rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?,
            None,
        ),
        Stdin::File(file) => (OwnedFd::from(file), None),
        Stdin::Memory(bytes) => {
            let (read_end, write_end) = os_pipe()?;
            (read_end, Some((write_end, bytes)))
        }
    };
    let mut env: Vec<Vec<u8>> = Vec::with_capacity(INHERITED.len() + program.env.len());
    for (name, value) in inherited().iter().chain(program.env) {
        let mut entry = Vec::with_capacity(name.len() + 1 + value.len());
        entry.extend_from_slice(name.as_bytes());
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        env.push(entry);
    }
    let spawn = Spawn {
        id: 0,
        program: program.path.as_os_str().as_bytes().to_vec(),
        dir: program
            .path
            .parent()
            .map(|dir| dir.as_os_str().as_bytes().to_vec())
            .unwrap_or_else(|| b"/".to_vec()),
        args: program.args.into_iter().map(String::into_bytes).collect(),
        env,
    };
    let (stdout_done, stdout_ends) = oneshot::channel();
    let (stderr_done, stderr_ends) = oneshot::channel();
    let stdout = UntilExit::new(pipe::Receiver::from_owned_fd(stdout)?, stdout_ends);
    let mut stderr = UntilExit::new(pipe::Receiver::from_owned_fd(stderr)?, stderr_ends);
    let feed_body = match feed_body {
        Some((write_end, bytes)) => Some((pipe::Sender::from_owned_fd(write_end)?, bytes)),
        None => None,
    };
    let running = spawner
        .spawn(spawn, [stdin_end, stdout_end, stderr_end], program.timeout)
        .await?;

    if let Some((stdin, bytes)) = feed_body {
        tokio::spawn(feed(stdin, bytes));
    }
    let mut log = StderrLog::new(program.tag);
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut stderr, &mut log).await;
    });

    let timeout = program.timeout;
    let tag = program.tag.to_string();
    let (report, outcome) = oneshot::channel();
    let hold = program.hold;
    let task = tokio::spawn(async move {
        let _hold = hold;
        let mut group = KillOnDrop {
            running,
            armed: true,
        };
        let waited = tokio::time::timeout(timeout, &mut group.running.exited).await;
        if waited.is_err() {
            group.running.kill_group();
            let grace = KILL_GRACE.min(timeout);
            let _ = tokio::time::timeout(grace, &mut group.running.exited).await;
        }
        // Exited: the spawner has killed what it left in its group; what
        // escaped the group gets a moment, then the output ends anyway.
        group.armed = false;
        let _ = stdout_done.send(());
        let _ = stderr_done.send(());
        let waited = waited.map(|status| {
            status
                .map(ExitStatus::from_raw)
                .map_err(|_| io::Error::other("the CGI spawner stopped"))
        });
        let verdict = judge(waited, timeout);
        if let Err(failure) = &verdict {
            crate::log::line(format!("{tag} {}", failure.reason));
        }
        let _ = report.send(verdict);
    });
    Ok(Produced {
        output: Box::pin(stdout),
        outcome,
        producer: task.abort_handle(),
    })
}

/// How long output may stay open after the program has ended: a child
/// that left the process group (`setsid`) and kept stdout cannot hold the
/// response open longer than this.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// A program's output pipe, which ends [`OUTPUT_GRACE`] after the program
/// has ended (or its run was abandoned) once nothing more is waiting in it.
struct UntilExit {
    pipe: pipe::Receiver,
    ended: Option<oneshot::Receiver<()>>,
    grace: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl UntilExit {
    fn new(pipe: pipe::Receiver, ended: oneshot::Receiver<()>) -> UntilExit {
        UntilExit {
            pipe,
            ended: Some(ended),
            grace: None,
        }
    }
}

impl AsyncRead for UntilExit {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Poll::Ready(read) = Pin::new(&mut this.pipe).poll_read(cx, buf) {
            return Poll::Ready(read);
        }
        // Sent when the program ended; dropped when its run was abandoned.
        if let Some(ended) = &mut this.ended
            && Pin::new(ended).poll(cx).is_ready()
        {
            this.ended = None;
            this.grace = Some(Box::pin(tokio::time::sleep(OUTPUT_GRACE)));
        }
        if let Some(grace) = &mut this.grace
            && grace.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

/// A pipe: (read end, write end), both close-on-exec.
fn os_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?)
}

/// Writes a small body to the program's stdin; a program that exits
/// without reading it ends the write (EPIPE), nothing waits for it.
async fn feed(mut stdin: pipe::Sender, bytes: Bytes) {
    let _ = stdin.write_all(&bytes).await;
}

/// A running program whose process group is killed if this is dropped
/// while armed (the response was abandoned: the client left, or HEAD).
struct KillOnDrop {
    running: Running,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.running.kill_group();
        }
    }
}

/// How the program's run ended, as the client will be told.
fn judge(
    waited: Result<io::Result<ExitStatus>, tokio::time::error::Elapsed>,
    timeout: Duration,
) -> Result<(), Failure> {
    let failed = |status, reason: String| Err(Failure { status, reason });
    match waited {
        Err(_) => failed(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "killed after its time limit of {}s (with its process group)",
                timeout.as_secs()
            ),
        ),
        Ok(Err(error)) => failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot wait for it: {error}"),
        ),
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => {
            let reason = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited with status {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => format!("ended: {status}"),
            };
            failed(StatusCode::INTERNAL_SERVER_ERROR, reason)
        }
    }
}

/// The server's variables a program inherits.
fn inherited() -> &'static [(String, String)] {
    static INHERITED_VARS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    INHERITED_VARS.get_or_init(|| {
        INHERITED
            .iter()
            .filter_map(|&name| {
                let value = std::env::var(name)
                    .ok()
                    .or_else(|| (name == "PATH").then(|| DEFAULT_PATH.to_string()))?;
                Some((name.to_string(), value))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_harmless_variables_are_inherited() {
        let names: Vec<&str> = inherited().iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"PATH"));
        assert!(names.iter().all(|n| INHERITED.contains(n)));
    }

    #[test]
    fn exit_statuses_are_judged() {
        let t = Duration::from_secs(3);
        assert_eq!(judge(Ok(Ok(ExitStatus::from_raw(0))), t), Ok(()));
        let failed = judge(Ok(Ok(ExitStatus::from_raw(2 << 8))), t).expect_err("exit 2");
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(failed.reason, "exited with status 2");
        let killed = judge(Ok(Ok(ExitStatus::from_raw(9))), t).expect_err("signal");
        assert_eq!(killed.reason, "killed by signal 9");
    }
}
