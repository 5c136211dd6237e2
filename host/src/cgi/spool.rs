//! A request body → a CGI program's standard input, with its exact length.
//!
//! RFC 3875 §4.1.2 wants `CONTENT_LENGTH` to be the body's exact length,
//! and a chunked body has none until it ends, so the body is read whole
//! before the program starts: up to [`IN_MEMORY`] bytes in memory, beyond
//! that into an unnamed temporary file that becomes the program's stdin
//! itself. That also means a slow client never holds a process, and a
//! program that exits without reading its input cannot block anything.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rustix::fs::{Mode, OFlags};
use tokio::io::AsyncWriteExt;

use crate::budget::{Budget, Share};
use crate::error::HttpError;
use crate::request_body::RequestBody;

/// Bodies up to this size are kept in memory.
pub const IN_MEMORY: usize = 64 * 1024;

/// A request body, ready to be a program's standard input.
#[derive(Debug)]
pub enum Stdin {
    /// The request had no body.
    Empty,
    /// A small body.
    Memory(Bytes),
    /// A large body, in an unnamed temporary file positioned at its start.
    File(File),
}

/// A spooled body and its length.
#[derive(Debug)]
pub struct Spooled {
    /// The body.
    pub stdin: Stdin,
    /// Its length in bytes (0 for no body).
    pub len: u64,
    /// What its file holds of the server's spool budget, to be held as
    /// long as the file is open (by the script, until it ends).
    pub held: Share,
}

/// Reads the whole of `body`, refusing (413) more than `limit` bytes, and
/// (503) more than the spool `budget` has free.
pub async fn spool(
    body: &mut RequestBody<'_>,
    limit: u64,
    budget: &Arc<Budget>,
) -> Result<Spooled, HttpError> {
    spool_into(body, limit, budget, &std::env::temp_dir()).await
}

async fn spool_into(
    body: &mut RequestBody<'_>,
    limit: u64,
    budget: &Arc<Budget>,
    temp_dir: &Path,
) -> Result<Spooled, HttpError> {
    let mut held = budget.empty_share();
    body.check_declared(limit).map_err(|e| e.to_http_error())?;
    let mut memory = BytesMut::new();
    let mut file: Option<tokio::fs::File> = None;
    let mut len: u64 = 0;
    while let Some(chunk) = body.chunk().await.map_err(|e| e.to_http_error())? {
        len += chunk.len() as u64;
        if len > limit {
            return Err(body.too_large(limit).to_http_error());
        }
        if file.is_none() && memory.len() + chunk.len() <= IN_MEMORY {
            memory.extend_from_slice(&chunk);
            continue;
        }
        let on_disk = if file.is_none() {
            memory.len() + chunk.len()
        } else {
            chunk.len()
        };
        if !held.grow(on_disk as u64) {
            return Err(body.over_budget(&held).to_http_error());
        }
        let spool = match &mut file {
            Some(spool) => spool,
            None => {
                let created = temporary_file(temp_dir).map_err(|e| spool_failed(temp_dir, &e))?;
                let spool = file.insert(tokio::fs::File::from_std(created));
                spool
                    .write_all(&memory)
                    .await
                    .map_err(|e| spool_failed(temp_dir, &e))?;
                memory = BytesMut::new();
                spool
            }
        };
        spool
            .write_all(&chunk)
            .await
            .map_err(|e| spool_failed(temp_dir, &e))?;
    }
    let stdin = match file {
        Some(mut spool) => {
            spool
                .flush()
                .await
                .map_err(|e| spool_failed(temp_dir, &e))?;
            let mut std_file = spool.into_std().await;
            std_file
                .seek(SeekFrom::Start(0))
                .map_err(|e| spool_failed(temp_dir, &e))?;
            Stdin::File(std_file)
        }
        None if len == 0 => Stdin::Empty,
        None => Stdin::Memory(memory.freeze()),
    };
    Ok(Spooled { stdin, len, held })
}

/// A file in `dir` with no name: it disappears when closed. Where the file
/// system cannot make one (`O_TMPFILE`), a named file removed at once.
fn temporary_file(dir: &Path) -> io::Result<File> {
    let mode = Mode::RUSR | Mode::WUSR;
    match rustix::fs::open(dir, OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC, mode) {
        Ok(fd) => Ok(File::from(fd)),
        Err(_) => {
            use std::sync::atomic::{AtomicU64, Ordering};
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let name = dir.join(format!(
                ".wasmhttpd-body-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC;
            let fd = rustix::fs::open(&name, flags, mode)?;
            std::fs::remove_file(&name)?;
            Ok(File::from(fd))
        }
    }
}

fn spool_failed(dir: &Path, error: &io::Error) -> HttpError {
    crate::log::line(format!(
        "wasmhttpd: cannot keep a request body in {}: {error}",
        dir.display()
    ));
    HttpError::Upstream(http::StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    use crate::request_body::Pieces;
    use bytes::Bytes;

    /// Spools a body of `pieces`, declared `declared` long.
    async fn spooled(
        declared: Option<u64>,
        pieces: Vec<Vec<u8>>,
        limit: u64,
    ) -> Result<(Vec<u8>, u64, &'static str), String> {
        spooled_within(declared, pieces, limit, &Budget::unlimited("spool")).await
    }

    async fn spooled_within(
        declared: Option<u64>,
        pieces: Vec<Vec<u8>>,
        limit: u64,
        budget: &Arc<Budget>,
    ) -> Result<(Vec<u8>, u64, &'static str), String> {
        let mut source = Pieces::new(pieces.into_iter().map(Bytes::from));
        let mut body = RequestBody::new(&mut source, declared);
        let temp = tempfile::tempdir().expect("tempdir");
        let result = spool_into(&mut body, limit, budget, temp.path()).await;
        let Spooled { stdin, len, held } = result.map_err(|e| e.to_string())?;
        assert_eq!(held.held(), if len as usize > IN_MEMORY { len } else { 0 });
        let (content, kind) = match stdin {
            Stdin::Empty => (Vec::new(), "empty"),
            Stdin::Memory(bytes) => (bytes.to_vec(), "memory"),
            Stdin::File(mut file) => {
                let mut content = Vec::new();
                file.read_to_end(&mut content).expect("read spool");
                (content, "file")
            }
        };
        assert_eq!(
            std::fs::read_dir(temp.path()).expect("ls").count(),
            0,
            "the spool has no name"
        );
        Ok((content, len, kind))
    }

    #[tokio::test]
    async fn small_bodies_stay_in_memory_large_ones_go_to_a_file() {
        let small = b"spam=1&eggs=python".to_vec();
        let (content, len, kind) = spooled(Some(18), vec![small.clone()], 1 << 20)
            .await
            .expect("small");
        assert_eq!((content, len, kind), (small, 18, "memory"));

        let large: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let pieces = large.chunks(65536).map(<[u8]>::to_vec).collect();
        let (content, len, kind) = spooled(Some(large.len() as u64), pieces, 1 << 20)
            .await
            .expect("large");
        assert_eq!((len, kind), (large.len() as u64, "file"));
        assert!(content == large, "the file holds the body");

        let (_, len, kind) = spooled(Some(0), Vec::new(), 10).await.expect("none");
        assert_eq!((len, kind), (0, "empty"));
    }

    #[tokio::test]
    async fn a_body_past_the_spool_budget_is_refused_and_its_share_given_back() {
        let budget = Budget::new("spooled bodies", 200_000);
        let large = vec![vec![b'x'; 300_000]];
        let refused = spooled_within(Some(300_000), large, 1 << 20, &budget).await;
        assert_eq!(
            refused.err().as_deref(),
            Some("Server busy: its spooled bodies budget is in use; retry shortly")
        );
        assert_eq!(budget.used(), 0);
        let fits = vec![vec![b'y'; 150_000]];
        let (_, len, kind) = spooled_within(Some(150_000), fits, 1 << 20, &budget)
            .await
            .expect("within the budget");
        assert_eq!((len, kind), (150_000, "file"));
        assert_eq!(budget.used(), 0, "given back when the file is closed");
    }

    #[tokio::test]
    async fn bodies_of_unknown_length_get_their_exact_length() {
        let pieces = vec![vec![b'x'; 0x1000]; 40];
        let (content, len, kind) = spooled(None, pieces, 1 << 20).await.expect("chunked");
        assert_eq!((content.len(), len, kind), (40 * 4096, 40 * 4096, "file"));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let declared = spooled(Some(100), vec![vec![b'x'; 100]], 99).await;
        assert_eq!(declared.err().as_deref(), Some("Request body too large"));
        let unknown = spooled(None, vec![vec![b'x'; 60], vec![b'x'; 40]], 99).await;
        assert_eq!(unknown.err().as_deref(), Some("Request body too large"));
    }
}
