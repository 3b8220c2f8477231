//! The long-lived tasks of a running Vigil: each named, tracked, and ended at shutdown.
//!
//! A task that outlives the code that started it is started here and nowhere else:
//! `clippy.toml` forbids `tokio::spawn` in the workspace, and the few places that spawn work
//! they await themselves (a request's own task, a run's plugins, a sandbox's pipes) or whose
//! handle they keep and join (the vitals writer, the immune worker) allow it with the reason.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Named tasks and the signal that shutdown has begun.
#[derive(Clone, Debug)]
pub struct Tasks {
    running: Arc<Mutex<Vec<Named>>>,
    stop: Arc<watch::Sender<bool>>,
}

#[derive(Debug)]
struct Named {
    name: String,
    handle: JoinHandle<()>,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks::new()
    }
}

impl Tasks {
    pub fn new() -> Self {
        Tasks { running: Arc::default(), stop: Arc::new(watch::channel(false).0) }
    }

    /// Starts work that ends by itself (a run, a healing action). Shutdown waits for it,
    /// up to its grace period. The caller instruments `task` with its own span.
    pub fn spawn(&self, name: impl Into<String>, task: impl Future<Output = ()> + Send + 'static) {
        #[allow(clippy::disallowed_methods, reason = "the one place long-lived tasks start: tracked here")]
        let handle = tokio::spawn(task);
        let mut running = self.lock();
        // Finished tasks leave the list as new ones come, so it holds only the living.
        running.retain(|t| !t.handle.is_finished());
        running.push(Named { name: name.into(), handle });
    }

    /// Starts a service loop that runs until shutdown begins (periodic upkeep): it is
    /// dropped at that moment, wherever it is waiting.
    pub fn spawn_until_shutdown(&self, name: impl Into<String>, task: impl Future<Output = ()> + Send + 'static) {
        let mut stop = self.stop.subscribe();
        self.spawn(name, async move {
            tokio::select! {
                () = task => {}
                _ = stop.wait_for(|stopping| *stopping) => {}
            }
        });
    }

    /// Resolves once shutdown has begun: for a task that must finish its work (drain a
    /// queue) rather than be dropped mid-way.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.subscribe();
        async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        }
    }

    /// The names of the tasks still running.
    pub fn running(&self) -> Vec<String> {
        self.lock().iter().filter(|t| !t.handle.is_finished()).map(|t| t.name.clone()).collect()
    }

    /// Ends service loops at once and waits up to `grace` for the rest, then aborts what is
    /// left, naming each task that panicked or had to be aborted.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            // Tasks may start tasks while shutting down (an action's result): take turns.
            let tasks = std::mem::take(&mut *self.lock());
            if tasks.is_empty() {
                return;
            }
            for Named { name, mut handle } in tasks {
                match tokio::time::timeout_at(deadline, &mut handle).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) if e.is_panic() => tracing::error!(task = %name, "task panicked"),
                    Ok(Err(_)) => {}
                    Err(_) => {
                        handle.abort();
                        tracing::warn!(task = %name, grace_ms = grace.as_millis() as u64, "task still running after the grace period; aborted");
                    }
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Named>> {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_ends_loops_waits_for_work_and_aborts_what_overstays() {
        let tasks = Tasks::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tasks.spawn_until_shutdown("upkeep", std::future::pending());
        tasks.spawn("short work", async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = done_tx.send(());
        });
        tasks.spawn("stuck", std::future::pending());
        let mut running = tasks.running();
        running.sort();
        assert_eq!(running, ["short work", "stuck", "upkeep"]);

        let started = tokio::time::Instant::now();
        tasks.shutdown(Duration::from_millis(300)).await;
        assert!(done_rx.await.is_ok(), "work that ends by itself was waited for");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
        assert!(tasks.running().is_empty());
    }

    #[tokio::test]
    async fn finished_tasks_leave_the_list() {
        let tasks = Tasks::new();
        for _ in 0..100 {
            tasks.spawn("quick", async {});
            tokio::task::yield_now().await;
        }
        assert!(tasks.lock().len() < 100, "finished tasks are dropped as new ones come");
    }
}
