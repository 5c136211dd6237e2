//! A plugin's compilation, on a thread of its own, so that the server keeps
//! answering while a large plugin compiles (an interpreter's component
//! takes seconds, CPython more than a minute).
//!
//! - [`Compile::start`] reads nothing and blocks on nothing: it hands the
//!   bytes to a new thread, which tells the binary's kind and prepares its
//!   executor (with the compiled-code cache, a warm start is a load).
//! - Requests to a plugin still compiling wait for it ([`Compile::within`]);
//!   the terminal shows how long it has been going
//!   ([`Compile::reporting`]), since wasmtime gives no finer progress.
//! - Each compile has its own worker threads, so that a small plugin is
//!   not queued behind a large one's functions on a shared pool.
//! - A panic while compiling is a load error like any other.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::engine::Runtime;
use super::executor::{Executor, prepare, reuse_refusal};

/// How often the terminal hears about a compile still going on.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Compiles run on threads with this much stack (the default 2 MiB is
/// tight for a large module's parse).
const STACK: usize = 8 << 20;

/// A plugin's executor, being prepared or prepared.
#[derive(Debug)]
pub struct Compile {
    result: Arc<OnceLock<Result<Executor, String>>>,
    done: watch::Receiver<bool>,
    started: Instant,
    /// The binary's size, bytes.
    pub size: usize,
}

impl Compile {
    /// Starts preparing `bytes` (read from `file`) on a new thread; with
    /// `reuse`, only a kind whose instances can serve again is accepted.
    pub fn start(runtime: Arc<Runtime>, file: PathBuf, bytes: Vec<u8>, reuse: bool) -> Compile {
        let result = Arc::new(OnceLock::new());
        let (tx, done) = watch::channel(false);
        let size = bytes.len();
        let cell = Arc::clone(&result);
        let work = move || {
            let prepared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // Its own workers: on the shared pool, a small plugin's
                // functions would queue behind a large one's.
                let workers = rayon::ThreadPoolBuilder::new()
                    .num_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
                    .thread_name(|i| format!("wasm-compile-{i}"))
                    .stack_size(STACK)
                    .build();
                match workers {
                    Ok(workers) => workers.install(|| prepare(&runtime, &bytes)),
                    Err(_) => prepare(&runtime, &bytes),
                }
            }));
            // A refused plugin's line says where to learn more.
            let hint = format!("(wasmhttpd check {} says more)", file.display());
            let outcome = match prepared {
                Ok(Ok(executor)) => match reuse_refusal(&executor, reuse) {
                    Some(problem) => Err(format!("{}: {problem} {hint}", file.display())),
                    None => Ok(executor),
                },
                Ok(Err(error)) => Err(format!("{}: {error:#} {hint}", file.display())),
                Err(_) => Err(format!("{}: the compiler panicked {hint}", file.display())),
            };
            let _ = cell.set(outcome);
            tx.send_replace(true);
        };
        let spawned = std::thread::Builder::new()
            .name("wasm-compile".into())
            .stack_size(STACK)
            .spawn(work);
        if let Err(error) = spawned {
            let _ = result.set(Err(format!("cannot start a compile thread: {error}")));
        }
        Compile {
            result,
            done,
            started: Instant::now(),
            size,
        }
    }

    /// The executor, if it is ready.
    pub fn executor(&self) -> Option<&Executor> {
        self.result.get().and_then(|r| r.as_ref().ok())
    }

    /// Whether the compile is over (ready or failed).
    pub fn is_finished(&self) -> bool {
        self.result.get().is_some()
    }

    /// Waits for the compile to end: the executor, or why there is none.
    pub async fn finished(&self) -> Result<&Executor, String> {
        if self.result.get().is_none() {
            // Either it is sent, or the thread ended (and set the cell).
            let _ = self.done.clone().wait_for(|done| *done).await;
        }
        match self.result.get() {
            Some(Ok(executor)) => Ok(executor),
            Some(Err(problem)) => Err(problem.clone()),
            None => Err("the compile thread ended without a result".into()),
        }
    }

    /// Waits up to `limit`; `None` if it is still compiling then.
    pub async fn within(&self, limit: Duration) -> Option<Result<&Executor, String>> {
        tokio::time::timeout(limit, self.finished()).await.ok()
    }

    /// Waits for the compile to end, printing `Plugin NAME: compiling, N s
    /// so far` at every multiple of [`PROGRESS_EVERY`] while it goes on.
    pub async fn reporting(&self, name: &str) -> Result<&Executor, String> {
        let mut ticks = 1;
        loop {
            let next = self.started + PROGRESS_EVERY * ticks;
            let wait = next.saturating_duration_since(Instant::now());
            if let Ok(result) = tokio::time::timeout(wait, self.finished()).await {
                return result;
            }
            println!(
                "Plugin {name}: compiling, {} s so far",
                (PROGRESS_EVERY * ticks).as_secs()
            );
            ticks += 1;
        }
    }

    /// Time since the compile started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// `38.2 MB`: a binary's size for the terminal.
pub fn megabytes(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_megabytes() {
        assert_eq!(megabytes(38_200_000), "38.2 MB");
        assert_eq!(megabytes(1_000), "0.0 MB");
    }

    #[tokio::test]
    async fn a_broken_binary_fails_in_the_background_with_its_file() {
        let runtime = Arc::new(Runtime::new(None).expect("engine"));
        let compile = Compile::start(
            runtime,
            PathBuf::from("x.wasm"),
            b"not wasm".to_vec(),
            false,
        );
        let problem = compile.finished().await.expect_err("fails");
        assert_eq!(
            problem,
            "x.wasm: not a WebAssembly binary (wasmhttpd check x.wasm says more)"
        );
        assert!(compile.is_finished());
        assert!(compile.executor().is_none());
        // Asking again gives the same answer at once.
        let again = compile.within(Duration::ZERO).await.expect("finished");
        assert_eq!(again.expect_err("fails"), problem);
    }
}
