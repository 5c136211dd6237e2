//! The streams of one HTTP/2 connection, run by the connection's own task.
//!
//! hyper hands each stream to an executor. Spawning each as a tokio task
//! costs a task, its scheduling and a wake of the connection per request;
//! here the connection's task polls its streams itself, the ready ones
//! before the connection, so the connection writes what they answered.
//!
//! Nothing slow runs inline: the backends that compute (plugins) or wait
//! on a process (CGI) already run in tasks of their own, and a static file
//! is read a piece at a time, as the client's window allows.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use futures_util::stream::{FuturesUnordered, StreamExt};

type Stream = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where hyper puts the streams it accepts (a [`hyper::rt::Executor`]).
#[derive(Clone, Default)]
pub struct Inline(Arc<Mutex<Inbox>>);

#[derive(Default)]
struct Inbox {
    new: Vec<Stream>,
    waker: Option<Waker>,
}

impl<F> hyper::rt::Executor<F> for Inline
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        let mut inbox = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        inbox.new.push(Box::pin(stream));
        if let Some(waker) = inbox.waker.take() {
            waker.wake();
        }
    }
}

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.0.lock().map_or(0, |inbox| inbox.new.len());
        f.debug_struct("Inline").field("waiting", &waiting).finish()
    }
}

/// The streams being answered, polled by [`Streams::run`].
#[derive(Default)]
pub struct Streams {
    inbox: Inline,
    running: FuturesUnordered<Stream>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("inbox", &self.inbox)
            .field("running", &self.running.len())
            .finish()
    }
}

impl Streams {
    /// The executor to give hyper.
    pub fn executor(&self) -> Inline {
        self.inbox.clone()
    }

    /// Polls every stream that can go on, and new ones as they come;
    /// never finishes (a stream's end is its own business).
    pub fn run(&mut self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| self.poll(cx))
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut inbox = self.inbox.0.lock().unwrap_or_else(PoisonError::into_inner);
            self.running.extend(inbox.new.drain(..));
            inbox.waker = Some(cx.waker().clone());
        }
        self.drain(cx);
        Poll::Pending
    }

    /// Polls the running streams until none is ready (FuturesUnordered
    /// yields after a batch, waking the task again).
    fn drain(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some(())) = self.running.poll_next_unpin(cx) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_run_in_the_task_that_polls_them() {
        let mut streams = Streams::default();
        let executor = streams.executor();
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let done = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = Arc::clone(&done);
        executor.execute(async move {
            let n = rx.await.unwrap_or(0);
            seen.store(n, std::sync::atomic::Ordering::SeqCst);
        });
        // Not spawned: nothing runs until the streams are polled, however
        // long this task leaves the runtime to others.
        tx.send(7).expect("send");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 0);
        let polled =
            tokio::time::timeout(std::time::Duration::from_millis(50), streams.run()).await;
        assert!(polled.is_err(), "run never finishes");
        assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 7);
        assert!(streams.running.is_empty());
    }
}
