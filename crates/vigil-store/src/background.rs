//! A thread of its own for a stream of store writes that runs beside the requests: the
//! vitals batches, the immune system's input log and snapshots. It runs jobs one at a
//! time, in order.
//!
//! The vitals writer runs at a lower CPU priority ([`Priority::Lower`]) than the threads
//! that serve requests: no caller waits on it, and on a busy machine its batch commit
//! (milliseconds of CPU; a model call's whole overhead is tens of microseconds) then yields
//! the CPU to calls instead of delaying them. Its jobs still run whenever a core is free.
//! The price, only while the CPU is saturated: a batch commit holds the store's one write
//! connection longer, and other writes wait for it. The immune log keeps
//! [`Priority::Normal`]: operators' commands and the engine's enforcement wait for it.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use tokio::sync::oneshot;

/// How much lower than the process's a [`Priority::Lower`] thread's priority is (a nice
/// value; at 10 the scheduler gives it about a tenth of the share of a normal thread when
/// both want a core).
pub const NICENESS: i32 = 10;

/// The CPU priority of a background thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// The process's own.
    Normal,
    /// [`NICENESS`] below it: for work nobody waits on.
    Lower,
}

type Job = Box<dyn FnOnce() + Send>;

/// The sending side of one background thread; cheap to clone. The thread ends when every
/// clone is dropped, after the jobs already sent.
#[derive(Clone, Debug)]
pub struct Background {
    jobs: mpsc::Sender<Job>,
    name: std::sync::Arc<str>,
}

/// Why a job gave no result.
#[derive(Debug, thiserror::Error)]
pub enum BackgroundError {
    #[error("the background writer thread {0:?} is not running")]
    Gone(String),
    #[error("a job on the background writer thread {0:?} panicked")]
    Panicked(String),
}

impl Background {
    /// Starts a thread named `name` (at most 15 bytes, as `ps -L` shows it) at `priority`.
    pub fn start(name: &str, priority: Priority) -> std::io::Result<Background> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            if priority == Priority::Lower {
                lower_priority();
            }
            for job in queue {
                // A job that panics loses its result, not the thread.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            }
        })?;
        Ok(Background { jobs, name: name.into() })
    }

    /// Runs `f` on the thread after the jobs sent before it, and returns its result.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, BackgroundError> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(f());
            }))
            .map_err(|_| BackgroundError::Gone(self.name.to_string()))?;
        // The job dropped its sender without a result: it panicked.
        result.await.map_err(|_| BackgroundError::Panicked(self.name.to_string()))
    }
}

/// The calling thread's nice value. On Linux it belongs to the thread, not the process.
fn niceness() -> rustix::io::Result<i32> {
    rustix::process::getpriority_process(Some(rustix::thread::gettid()))
}

/// Lowers the calling thread's priority by [`NICENESS`]; the request-serving threads keep
/// theirs. Best effort: a failure only costs the benefit.
fn lower_priority() {
    let lowered = niceness().and_then(|now| {
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), now.saturating_add(NICENESS))
    });
    if let Err(e) = lowered {
        tracing::debug!(error = %e, "could not lower the background writer's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime")
    }

    #[test]
    fn jobs_run_in_order_on_a_lower_priority_thread_that_survives_a_panic() {
        let background = Background::start("vigil-test-bg", Priority::Lower).expect("start");
        runtime().block_on(async {
            let (log, seen) = (std::sync::Arc::new(std::sync::Mutex::new(Vec::new())), background.clone());
            let pushes: Vec<_> = (0..5)
                .map(|i| {
                    let log = log.clone();
                    seen.run(move || log.lock().expect("lock").push(i))
                })
                .collect();
            for push in pushes {
                push.await.expect("ran");
            }
            assert_eq!(*log.lock().expect("lock"), [0, 1, 2, 3, 4]);

            let name = background.run(|| std::thread::current().name().map(str::to_owned)).await.expect("ran");
            assert_eq!(name.as_deref(), Some("vigil-test-bg"));
            let here = niceness().expect("nice");
            let there = background.run(niceness).await.expect("ran").expect("nice");
            assert_eq!(there, (here + NICENESS).min(19), "the writer runs at a lower priority than its caller");

            let panicked = background.run(|| -> u8 { panic!("a bad job") }).await;
            assert!(matches!(panicked, Err(BackgroundError::Panicked(_))), "{panicked:?}");
            assert_eq!(background.run(|| 7).await.expect("still running"), 7);
        });
    }

    #[test]
    fn a_normal_priority_thread_keeps_the_callers_priority() {
        let background = Background::start("vigil-test-bg", Priority::Normal).expect("start");
        let there = runtime().block_on(background.run(niceness)).expect("ran").expect("nice");
        assert_eq!(there, niceness().expect("nice"));
    }
}
