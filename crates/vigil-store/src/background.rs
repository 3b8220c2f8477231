//! A thread for writes no caller waits on: vitals, the immune system's input log and
//! snapshots. It runs jobs one at a time, in order, at a lower CPU priority than the
//! threads that serve requests, so on a busy machine a batch commit yields the CPU to model
//! calls instead of delaying them (a batch of vitals takes milliseconds of CPU; a call's
//! whole overhead is tens of microseconds). Its jobs still run whenever a core is free.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use tokio::sync::oneshot;

/// How much lower than the process's the thread's priority is (a nice value; at 10 the
/// scheduler gives it about a tenth of the share of a normal thread when both want a core).
pub const NICENESS: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// The sending side of one background thread; cheap to clone. The thread ends when every
/// clone is dropped, after the jobs already sent.
#[derive(Clone, Debug)]
pub struct Background {
    jobs: mpsc::Sender<Job>,
    name: std::sync::Arc<str>,
}

/// The background thread is gone (it could not start, or a job brought it down).
#[derive(Debug, thiserror::Error)]
#[error("the background writer thread {0:?} is not running")]
pub struct Gone(pub String);

impl Background {
    /// Starts a thread named `name` (as `ps -L` shows it) at [`NICENESS`].
    pub fn start(name: &str) -> std::io::Result<Background> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            lower_priority();
            for job in queue {
                // A job that panics loses its result (its caller sees `Gone`), not the thread.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            }
        })?;
        Ok(Background { jobs, name: name.into() })
    }

    /// Runs `f` on the thread after the jobs sent before it, and returns its result.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Gone> {
        let (done, result) = oneshot::channel();
        let gone = || Gone(self.name.to_string());
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(f());
            }))
            .map_err(|_| gone())?;
        result.await.map_err(|_| gone())
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
        let background = Background::start("vigil-test-bg").expect("start");
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
            assert!(panicked.is_err(), "a job that panics has no result");
            assert_eq!(background.run(|| 7).await.expect("still running"), 7);
        });
    }
}
