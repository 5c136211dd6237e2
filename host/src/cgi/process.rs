//! Runs a CGI program as a process (RFC 3875 §4.4, §7.2).
//!
//! The program starts in its own directory, in a process group of its own,
//! with the meta-variables and only a few harmless variables of the
//! server's environment ([`INHERITED`]); when the server runs as root it
//! runs as `nobody` (and `nobody`'s group, with no supplementary groups).
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
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use rustix::process::{Pid, Signal};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::oneshot;

use super::output::Produced;
use super::spool::Stdin;
use super::stderr::StderrLog;
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
    /// What its log lines start with: `[cgi /cgi-bin/x]`.
    pub tag: &'a str,
    /// How long it may run.
    pub timeout: Duration,
}

/// Starts `program`; its output and outcome come back as a [`Produced`].
pub fn start(program: Program<'_>) -> io::Result<Produced> {
    let mut command = Command::new(program.path);
    command
        .args(&program.args)
        .env_clear()
        .envs(inherited().iter().map(|(k, v)| (k, v)))
        .envs(program.env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = program.path.parent() {
        command.current_dir(dir);
    }
    if let Some((uid, gid)) = unprivileged_ids() {
        command.uid(uid).gid(gid);
    }
    let memory = match program.stdin {
        Stdin::Empty => {
            command.stdin(Stdio::null());
            None
        }
        Stdin::File(file) => {
            command.stdin(Stdio::from(file));
            None
        }
        Stdin::Memory(bytes) => {
            command.stdin(Stdio::piped());
            Some(bytes)
        }
    };
    let mut child = command.spawn()?;
    let group = child.id().and_then(|pid| Pid::from_raw(pid as i32));
    let group = ProcessGroup(group);

    if let (Some(bytes), Some(stdin)) = (memory, child.stdin.take()) {
        tokio::spawn(feed(stdin, bytes));
    }
    if let Some(mut stderr) = child.stderr.take() {
        let mut log = StderrLog::new(program.tag);
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stderr, &mut log).await;
        });
    }
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout pipe"))?;

    let timeout = program.timeout;
    let tag = program.tag.to_string();
    let (report, outcome) = oneshot::channel();
    let task = tokio::spawn(async move {
        let waited = tokio::time::timeout(timeout, child.wait()).await;
        if waited.is_err() {
            group.kill();
            let _ = child.wait().await;
        }
        // Whatever it left behind goes with it.
        drop(group);
        let verdict = judge(waited, timeout);
        if let Err(failure) = &verdict {
            eprintln!("{tag} {}", failure.reason);
        }
        let _ = report.send(verdict);
    });
    Ok(Produced {
        output: Box::pin(stdout),
        outcome,
        producer: task.abort_handle(),
    })
}

/// Writes a small body to the program's stdin; a program that exits
/// without reading it ends the write (EPIPE), nothing waits for it.
async fn feed(mut stdin: tokio::process::ChildStdin, bytes: Bytes) {
    let _ = stdin.write_all(&bytes).await;
}

/// A program's process group, killed when this is dropped.
struct ProcessGroup(Option<Pid>);

impl ProcessGroup {
    fn kill(&self) {
        if let Some(group) = self.0 {
            let _ = rustix::process::kill_process_group(group, Signal::KILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
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
            use std::os::unix::process::ExitStatusExt;
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

/// The user and group programs run as: `nobody`'s when the server runs as
/// root (as Python's CGIHTTPRequestHandler does), none otherwise.
pub fn unprivileged_ids() -> Option<(u32, u32)> {
    static IDS: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *IDS.get_or_init(|| {
        rustix::process::geteuid().is_root().then(|| {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            nobody(&passwd).unwrap_or((65534, 65534))
        })
    })
}

/// `nobody`'s user and group ids in an `/etc/passwd` text.
fn nobody(passwd: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != "nobody" {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nobody_is_read_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      nobody:x:65534:65533:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(nobody(passwd), Some((65534, 65533)));
        assert_eq!(nobody("root:x:0:0::/:/bin/sh\n"), None);
        assert_eq!(nobody("nobody:x:bad:1::/:\n"), None);
    }

    #[test]
    fn only_harmless_variables_are_inherited() {
        let names: Vec<&str> = inherited().iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"PATH"));
        assert!(names.iter().all(|n| INHERITED.contains(n)));
    }

    #[test]
    fn exit_statuses_are_judged() {
        use std::os::unix::process::ExitStatusExt;
        let t = Duration::from_secs(3);
        assert_eq!(judge(Ok(Ok(ExitStatus::from_raw(0))), t), Ok(()));
        let failed = judge(Ok(Ok(ExitStatus::from_raw(2 << 8))), t).expect_err("exit 2");
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(failed.reason, "exited with status 2");
        let killed = judge(Ok(Ok(ExitStatus::from_raw(9))), t).expect_err("signal");
        assert_eq!(killed.reason, "killed by signal 9");
    }
}
