//! The spawner process: the server's own binary, run as `wasmhttpd
//! __cgi-spawner` with its end of the socket pair as stdin, as the user
//! scripts run as. It is small and single-purpose, so it starts each
//! program with `posix_spawn` (no copy of an address space), in a new
//! process group, with the standard streams the server sent; it reaps its
//! children, kills what each one left in its group, and reports every
//! start and every exit. It kills a group when the server asks, and when
//! the server goes away it kills the groups still running and exits.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rustix::io::Errno;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendFlags};
use rustix::process::{Pid, Signal, WaitOptions};

use super::wire::{Report, Request, Spawn};

/// The first argument that makes the binary a spawner.
pub const ARG: &str = "__cgi-spawner";

/// The largest request accepted (a spawn request carries the whole CGI
/// environment: at most 64 KiB of request head, and then some).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// The process groups running, and a signal for the reaper when one starts.
#[derive(Default)]
struct Live {
    groups: Mutex<HashSet<i32>>,
    started: Condvar,
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, HashSet<i32>> {
        self.groups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Serves the server on stdin until it goes away.
pub fn run() -> std::process::ExitCode {
    // Scripts run as the same user: they must not be able to trace this
    // process or take its descriptors (the socket to the server).
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let live = Arc::new(Live::default());
    // Reports go out one at a time, and a start's before its exit's.
    let sending = Arc::new(Mutex::new(()));
    {
        let live = Arc::clone(&live);
        let sending = Arc::clone(&sending);
        std::thread::spawn(move || reap(&live, &sending));
    }
    let stdin = std::io::stdin();
    let socket = stdin.as_fd();
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = rustix::net::recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        );
        let len = match received {
            Ok(message) if message.bytes > 0 => message.bytes,
            Err(Errno::INTR) => continue,
            _ => break,
        };
        let fds: Vec<OwnedFd> = control
            .drain()
            .filter_map(|message| match message {
                RecvAncillaryMessage::ScmRights(fds) => Some(fds),
                _ => None,
            })
            .flatten()
            .collect();
        match Request::decode(&buf[..len.min(buf.len())]) {
            Some(Request::Kill(group)) => kill_group(group),
            Some(Request::Spawn(spawn)) => {
                let Ok([stdin, stdout, stderr]) = <[OwnedFd; 3]>::try_from(fds) else {
                    send(
                        &sending,
                        Report::Failed {
                            id: spawn.id,
                            errno: Errno::INVAL.raw_os_error(),
                        },
                    );
                    continue;
                };
                let _turn = lock(&sending);
                let report = match start(&spawn, stdin, stdout, stderr) {
                    Ok(pid) => {
                        live.lock().insert(pid);
                        live.started.notify_one();
                        Report::Spawned { id: spawn.id, pid }
                    }
                    Err(error) => Report::Failed {
                        id: spawn.id,
                        errno: error.raw_os_error().unwrap_or(Errno::INVAL.raw_os_error()),
                    },
                };
                write(report);
            }
            None => {}
        }
    }
    // The server is gone: so are its scripts.
    for group in live.lock().iter() {
        kill_group(*group);
    }
    std::process::ExitCode::SUCCESS
}

fn start(spawn: &Spawn, stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd) -> std::io::Result<i32> {
    let mut command = Command::new(OsStr::from_bytes(&spawn.program));
    command
        .args(spawn.args.iter().map(|arg| OsStr::from_bytes(arg)))
        .env_clear()
        .current_dir(OsStr::from_bytes(&spawn.dir))
        .process_group(0)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    for entry in &spawn.env {
        if let Some(eq) = entry.iter().position(|&b| b == b'=') {
            command.env(
                OsStr::from_bytes(&entry[..eq]),
                OsStr::from_bytes(&entry[eq + 1..]),
            );
        }
    }
    // The child is reaped by `reap`, not through this handle.
    let child = command.spawn()?;
    Ok(child.id() as i32)
}

/// Waits for children; kills what each left in its group; reports the exit.
fn reap(live: &Live, sending: &Mutex<()>) {
    loop {
        {
            let mut groups = live.lock();
            while groups.is_empty() {
                groups = live
                    .started
                    .wait(groups)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) => {
                let pid = pid.as_raw_nonzero().get();
                // After the start's report, which holds this lock from the
                // spawn on: so the group is known before it is forgotten.
                let _turn = lock(sending);
                kill_group(pid);
                live.lock().remove(&pid);
                write(Report::Exited {
                    pid,
                    status: status.as_raw(),
                });
            }
            Ok(None) | Err(Errno::INTR) => {}
            Err(_) => live.lock().clear(),
        }
    }
}

fn kill_group(group: i32) {
    // Never 0, 1 or a negative id, whatever a message says.
    if group <= 1 {
        return;
    }
    if let Some(pid) = Pid::from_raw(group) {
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    }
}

fn lock(sending: &Mutex<()>) -> MutexGuard<'_, ()> {
    sending
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn send(sending: &Mutex<()>, report: Report) {
    let _turn = lock(sending);
    write(report);
}

fn write(report: Report) {
    let stdin = std::io::stdin();
    let _ = rustix::net::send(stdin.as_fd(), &report.encode(), SendFlags::NOSIGNAL);
}
