//! Starting CGI processes through a spawner process, as Apache's `mod_cgid`
//! does, rather than from the server itself.
//!
//! Why: a process started from the server is a copy of the server until it
//! executes the script, and the server's address space is large (the
//! WebAssembly pool alone is hundreds of mappings): copying it costs more
//! than running a small CGI program. `posix_spawn` avoids the copy, but it
//! cannot change user, and a server running as root must run scripts as
//! `nobody`. So at startup the server starts a spawner ([`daemon`]), as the
//! user scripts run as, that starts each script with `posix_spawn`. The
//! server hands it the program, the environment and the three standard
//! streams (as file descriptors over a socket pair, [`wire`]) and hears
//! back the pid and, later, the exit status.
//!
//! The server never signals a process itself: it asks the spawner, which
//! can only signal processes of its own user. A script can kill the
//! spawner (they are the same user); the requests it was serving then fail
//! cleanly, and the next request starts a new one.

pub mod daemon;
pub mod wire;

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags,
    SocketType,
};
use tokio::io::Interest;
use tokio::net::UnixDatagram;
use tokio::sync::{mpsc, oneshot};

use self::wire::{Report, Request, Spawn};
use super::identity::unprivileged_ids;

/// The server's side of the spawner, restarted when it has gone.
#[derive(Debug)]
pub struct Spawner {
    connection: Mutex<Arc<Connection>>,
}

/// A program the spawner started.
#[derive(Debug)]
pub struct Running {
    /// Its pid, which is also its process group's id.
    pub pid: i32,
    /// Its wait status, when it has exited (an error if the spawner went
    /// away first).
    pub exited: oneshot::Receiver<i32>,
    connection: Arc<Connection>,
}

impl Running {
    /// Asks the spawner to kill the program's process group.
    pub fn kill_group(&self) {
        self.connection
            .send(Request::Kill(self.pid).encode(), Vec::new(), None);
    }
}

/// One spawner process and the requests waiting on it.
#[derive(Debug)]
struct Connection {
    outbox: mpsc::UnboundedSender<Outgoing>,
    waiting: Mutex<Waiting>,
    closed: AtomicBool,
    next_id: AtomicU64,
    /// Stops the spawner process (it is the server's own child).
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

#[derive(Debug, Default)]
struct Waiting {
    starts: HashMap<u64, (oneshot::Sender<io::Result<i32>>, oneshot::Sender<i32>)>,
    exits: HashMap<i32, oneshot::Sender<i32>>,
    /// Process groups still running when the spawner went away: the next
    /// spawner kills them.
    orphans: Vec<i32>,
}

/// The longest the spawner may take to start a program before it is
/// deemed wedged (stopped by a script, say), killed and replaced.
const START_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Outgoing {
    message: Vec<u8>,
    fds: Vec<OwnedFd>,
    /// The spawn request this is, to fail it if it cannot be sent.
    id: Option<u64>,
}

impl Spawner {
    /// Starts the spawner process (within a tokio runtime).
    pub fn start() -> io::Result<Spawner> {
        Ok(Spawner {
            connection: Mutex::new(launch()?),
        })
    }

    /// Starts `program` with `stdio` (stdin, stdout, stderr) as its
    /// standard streams; `spawn.id` is assigned here. A spawner that has
    /// not answered within `patience` (at most [`START_TIMEOUT`]) is
    /// replaced.
    pub async fn spawn(
        &self,
        mut spawn: Spawn,
        stdio: [OwnedFd; 3],
        patience: Duration,
    ) -> io::Result<Running> {
        let connection = self.connection()?;
        spawn.id = connection.next_id.fetch_add(1, Ordering::Relaxed);
        let (started, start) = oneshot::channel();
        let (exit_tx, exited) = oneshot::channel();
        connection
            .lock()
            .starts
            .insert(spawn.id, (started, exit_tx));
        let id = spawn.id;
        connection.send(Request::Spawn(spawn).encode(), stdio.into(), Some(id));
        let pid = match tokio::time::timeout(patience.min(START_TIMEOUT), start).await {
            Ok(started) => started.map_err(|_| io::Error::other("the CGI spawner stopped"))??,
            Err(_) => {
                connection.abandon();
                return Err(io::Error::other(
                    "the CGI spawner did not answer; replaced it",
                ));
            }
        };
        Ok(Running {
            pid,
            exited,
            connection,
        })
    }

    /// The live connection, restarting the spawner if it has gone.
    fn connection(&self) -> io::Result<Arc<Connection>> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if connection.closed.load(Ordering::Acquire) {
            let orphans = std::mem::take(&mut connection.lock().orphans);
            *connection = launch()?;
            crate::log::line("wasmhttpd: the CGI spawner had stopped; started a new one");
            // Whatever the old one left running does not outlive it.
            for group in orphans {
                connection.send(Request::Kill(group).encode(), Vec::new(), None);
            }
        }
        Ok(Arc::clone(&connection))
    }
}

impl Connection {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(&self, message: Vec<u8>, fds: Vec<OwnedFd>, id: Option<u64>) {
        let outgoing = Outgoing { message, fds, id };
        if self.outbox.send(outgoing).is_err()
            && let Some(id) = id
        {
            self.fail(id);
        }
    }

    fn fail(&self, id: u64) {
        if let Some((started, _)) = self.lock().starts.remove(&id) {
            let _ = started.send(Err(io::Error::other("cannot reach the CGI spawner")));
        }
    }

    fn report(&self, report: Report) {
        let mut waiting = self.lock();
        match report {
            Report::Spawned { id, pid } => {
                if let Some((started, exit)) = waiting.starts.remove(&id) {
                    if started.send(Ok(pid)).is_ok() {
                        waiting.exits.insert(pid, exit);
                    } else {
                        // Nobody waits for it any more (the request was
                        // dropped while it started): it must not run on.
                        drop(waiting);
                        self.send(Request::Kill(pid).encode(), Vec::new(), None);
                    }
                }
            }
            Report::Failed { id, errno } => {
                if let Some((started, _)) = waiting.starts.remove(&id) {
                    let _ = started.send(Err(io::Error::from_raw_os_error(errno)));
                }
            }
            Report::Exited { pid, status } => {
                if let Some(exit) = waiting.exits.remove(&pid) {
                    let _ = exit.send(status);
                }
            }
        }
    }

    /// The spawner is gone: everything waiting on it fails, and what it
    /// was running is remembered for the next one to kill.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut waiting = self.lock();
        waiting.starts.clear();
        let running: Vec<i32> = waiting.exits.drain().map(|(pid, _)| pid).collect();
        waiting.orphans.extend(running);
    }

    /// The spawner stopped answering: kill it; the next request starts a
    /// new one.
    fn abandon(&self) {
        crate::log::line("wasmhttpd: the CGI spawner stopped answering; killing it");
        self.close();
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
    }
}

/// Starts a spawner process and the tasks that talk to it.
fn launch() -> io::Result<Arc<Connection>> {
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let mut command = tokio::process::Command::new("/proc/self/exe");
    command
        .arg(daemon::ARG)
        .env_clear()
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some((uid, gid)) = unprivileged_ids() {
        command.as_std_mut().uid(uid).gid(gid);
    }
    let mut child = command.spawn()?;
    rustix::io::ioctl_fionbio(&ours, true)?;
    // tokio has no sequenced-packet socket; its datagram socket does what
    // is needed here (readiness, message-sized reads), and a read of 0
    // bytes is still the peer's end.
    let socket = Arc::new(UnixDatagram::from_std(
        std::os::unix::net::UnixDatagram::from(ours),
    )?);
    let (outbox, mut queue) = mpsc::unbounded_channel::<Outgoing>();
    let (stop, stopped) = oneshot::channel();
    let connection = Arc::new(Connection {
        outbox,
        waiting: Mutex::new(Waiting::default()),
        closed: AtomicBool::new(false),
        next_id: AtomicU64::new(0),
        stop: Mutex::new(Some(stop)),
    });

    // Writer: requests, in order, with their descriptors.
    let writer = Arc::downgrade(&connection);
    let out = Arc::clone(&socket);
    tokio::spawn(async move {
        while let Some(outgoing) = queue.recv().await {
            let fds: Vec<BorrowedFd<'_>> = outgoing.fds.iter().map(AsFd::as_fd).collect();
            let sent = out
                .async_io(Interest::WRITABLE, || {
                    send_with_fds(out.as_fd(), &outgoing.message, &fds)
                })
                .await;
            if sent.is_err()
                && let (Some(id), Some(connection)) = (outgoing.id, writer.upgrade())
            {
                connection.fail(id);
            }
        }
    });

    // Reader: reports, until the spawner goes away.
    let reader = Arc::downgrade(&connection);
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        loop {
            let received = socket
                .async_io(Interest::READABLE, || {
                    rustix::net::recv(socket.as_fd(), &mut buf[..], RecvFlags::empty())
                        .map(|(n, _)| n)
                        .map_err(io::Error::from)
                })
                .await;
            let Some(connection) = reader.upgrade() else {
                return;
            };
            match received {
                Ok(n) if n > 0 => {
                    if let Some(report) = Report::decode(&buf[..n]) {
                        connection.report(report);
                    }
                }
                _ => {
                    connection.close();
                    return;
                }
            }
        }
    });

    // Reap the spawner if it dies, so it leaves no zombie; kill it if it
    // is abandoned. When the server exits, the spawner reads the end of the
    // socket, kills the scripts still running and exits too.
    tokio::spawn(async move {
        tokio::select! {
            _ = child.wait() => {}
            Ok(()) = stopped => {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    });
    Ok(connection)
}

fn send_with_fds(
    socket: BorrowedFd<'_>,
    message: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many descriptors"));
    }
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(message)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(io::Error::from)
}
