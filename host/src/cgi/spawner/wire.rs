//! The messages between the server and its CGI spawner, one per datagram of
//! a `SOCK_SEQPACKET` socket pair.
//!
//! Server → spawner:
//! - `S` spawn: id (u64), then length-prefixed (u32) byte strings: the
//!   program, its working directory, the argument count and arguments, the
//!   environment count and `NAME=value` entries; the three standard streams
//!   travel beside it as `SCM_RIGHTS`.
//! - `K` kill: a process group (i32).
//!
//! Spawner → server:
//! - `P` spawned: id, pid;  `F` failed: id, errno;  `X` exited: pid, wait status.
//!
//! Integers are little-endian. Decoding never panics: a message that does
//! not parse is `None`, whoever sent it.

/// A program for the spawner to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawn {
    /// Matches the report to the request.
    pub id: u64,
    /// The program's absolute path.
    pub program: Vec<u8>,
    /// Its working directory.
    pub dir: Vec<u8>,
    /// Its arguments (after `argv[0]`).
    pub args: Vec<Vec<u8>>,
    /// Its whole environment, `NAME=value`.
    pub env: Vec<Vec<u8>>,
}

/// What the server asks of the spawner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Start a program.
    Spawn(Spawn),
    /// Kill a process group.
    Kill(i32),
}

/// What the spawner tells the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Request `id` started process `pid` (in a new process group `pid`).
    Spawned {
        /// The request.
        id: u64,
        /// The process.
        pid: i32,
    },
    /// Request `id` could not start: `errno`.
    Failed {
        /// The request.
        id: u64,
        /// Why, as an OS error number.
        errno: i32,
    },
    /// Process `pid` ended with wait status `status`; its group is killed.
    Exited {
        /// The process.
        pid: i32,
        /// Its raw wait status.
        status: i32,
    },
}

impl Request {
    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Kill(pid) => {
                let mut out = vec![b'K'];
                out.extend_from_slice(&pid.to_le_bytes());
                out
            }
            Request::Spawn(spawn) => {
                let size = 32
                    + spawn.program.len()
                    + spawn.dir.len()
                    + spawn
                        .args
                        .iter()
                        .chain(&spawn.env)
                        .map(|s| s.len() + 4)
                        .sum::<usize>();
                let mut out = Vec::with_capacity(size);
                out.push(b'S');
                out.extend_from_slice(&spawn.id.to_le_bytes());
                put(&mut out, &spawn.program);
                put(&mut out, &spawn.dir);
                for list in [&spawn.args, &spawn.env] {
                    out.extend_from_slice(&(list.len() as u32).to_le_bytes());
                    for item in list {
                        put(&mut out, item);
                    }
                }
                out
            }
        }
    }

    /// Parses a message.
    pub fn decode(bytes: &[u8]) -> Option<Request> {
        let mut reader = Reader(bytes);
        match reader.byte()? {
            b'K' => {
                let pid = reader.i32()?;
                reader.end(Request::Kill(pid))
            }
            b'S' => {
                let id = reader.u64()?;
                let program = reader.bytes()?.to_vec();
                let dir = reader.bytes()?.to_vec();
                let args = reader.list()?;
                let env = reader.list()?;
                reader.end(Request::Spawn(Spawn {
                    id,
                    program,
                    dir,
                    args,
                    env,
                }))
            }
            _ => None,
        }
    }
}

impl Report {
    /// The message's bytes.
    pub fn encode(&self) -> [u8; 13] {
        let mut out = [0u8; 13];
        let (tag, first, second): (u8, [u8; 8], i32) = match *self {
            Report::Spawned { id, pid } => (b'P', id.to_le_bytes(), pid),
            Report::Failed { id, errno } => (b'F', id.to_le_bytes(), errno),
            Report::Exited { pid, status } => (b'X', i64::from(pid).to_le_bytes(), status),
        };
        out[0] = tag;
        out[1..9].copy_from_slice(&first);
        out[9..13].copy_from_slice(&second.to_le_bytes());
        out
    }

    /// Parses a message.
    pub fn decode(bytes: &[u8]) -> Option<Report> {
        let mut reader = Reader(bytes);
        let tag = reader.byte()?;
        let first = reader.u64()?;
        let second = reader.i32()?;
        let report = match tag {
            b'P' => Report::Spawned {
                id: first,
                pid: second,
            },
            b'F' => Report::Failed {
                id: first,
                errno: second,
            },
            b'X' => Report::Exited {
                pid: i32::try_from(first as i64).ok()?,
                status: second,
            },
            _ => return None,
        };
        reader.end(report)
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn list(&mut self) -> Option<Vec<Vec<u8>>> {
        let count = self.u32()? as usize;
        // Each item takes at least its 4-byte length: a count that the
        // message cannot hold is refused before allocating for it.
        if count > self.0.len() / 4 {
            return None;
        }
        (0..count)
            .map(|_| self.bytes().map(<[u8]>::to_vec))
            .collect()
    }

    fn end<T>(&self, value: T) -> Option<T> {
        self.0.is_empty().then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::random_inputs;

    fn spawn() -> Request {
        Request::Spawn(Spawn {
            id: 7,
            program: b"/srv/cgi-bin/x".to_vec(),
            dir: b"/srv/cgi-bin".to_vec(),
            args: vec![b"cat".to_vec(), b"dog".to_vec()],
            env: vec![b"A=1".to_vec(), b"EMPTY=".to_vec()],
        })
    }

    #[test]
    fn requests_round_trip() {
        for request in [spawn(), Request::Kill(12345)] {
            assert_eq!(Request::decode(&request.encode()), Some(request));
        }
    }

    #[test]
    fn reports_round_trip() {
        for report in [
            Report::Spawned { id: 1, pid: 99 },
            Report::Failed {
                id: u64::MAX,
                errno: 13,
            },
            Report::Exited {
                pid: 4,
                status: 256,
            },
        ] {
            assert_eq!(Report::decode(&report.encode()), Some(report));
        }
    }

    #[test]
    fn truncated_or_extended_messages_are_refused() {
        let bytes = spawn().encode();
        for end in 0..bytes.len() {
            assert_eq!(Request::decode(&bytes[..end]), None, "{end}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Request::decode(&longer), None);
        let report = Report::Exited { pid: 1, status: 0 }.encode();
        assert_eq!(Report::decode(&report[..12]), None);
    }

    #[test]
    fn random_bytes_never_panic() {
        for input in random_inputs(b"SKPFX\0\x01\x02\xff", 2000, 64) {
            let _ = Request::decode(&input);
            let _ = Report::decode(&input);
        }
        // A huge declared count is refused without allocating for it.
        let mut bytes = vec![b'S'];
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Request::decode(&bytes), None);
    }
}
