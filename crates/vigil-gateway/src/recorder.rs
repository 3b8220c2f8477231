//! Writes vitals to the store off the response path.
//!
//! Calls hand their [`Vital`] to a bounded queue and move on; one task drains it in
//! batches into a single transaction each, through the [`VitalsAgents`] port (the binary
//! gives it the SQLite store on a lane of its own, a thread at a lower priority than the
//! threads serving calls: [`vigil_store::Store::on_lane`]). When storage falls behind and the queue is full,
//! new vitals are dropped and counted (`vigil_vitals_dropped_total`), so a slow disk never
//! slows a model call. At shutdown the queue is drained before the store closes.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_core::vitals::Vital;
use vigil_services::batch::{self, Batches, Feeder};
use vigil_store::ports::VitalsAgents;

/// Most vitals written in one transaction.
pub const VITALS_BATCH_MAX: usize = 512;
/// How long the writer lets a batch fill after its first vital arrives (the rhythm is
/// [`vigil_services::batch`]'s). Fewer, larger transactions cost far less than one per
/// call; a vital is still on disk within this much of the call (plus the write itself).
pub const VITALS_BATCH_WINDOW: Duration = Duration::from_millis(25);

/// Something else that wants to see every vital as it is recorded (the immune system).
/// Called on the response path, so it must not block.
pub type VitalTap = Arc<dyn Fn(&Vital) + Send + Sync>;

/// The sending side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Recorder {
    queue: Feeder<Vital>,
    dropped: Counter,
    stop: watch::Sender<bool>,
    tap: Option<VitalTap>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("tapped", &self.tap.is_some()).finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts the writer task, which writes on `writer`. `dropped` counts vitals lost to a
    /// full queue or a failed write.
    pub fn start(vitals: Arc<dyn VitalsAgents>, capacity: usize, dropped: Counter) -> (Recorder, JoinHandle<()>) {
        Recorder::start_with_window(vitals, capacity, dropped, VITALS_BATCH_WINDOW)
    }

    /// [`Recorder::start`] with another batch window, so tests can tell a cut-short wait
    /// from a full one.
    fn start_with_window(
        vitals: Arc<dyn VitalsAgents>,
        capacity: usize,
        dropped: Counter,
        window: Duration,
    ) -> (Recorder, JoinHandle<()>) {
        let (queue, batches) = batch::queue(capacity, VITALS_BATCH_MAX);
        let (stop, stop_rx) = watch::channel(false);
        #[allow(clippy::disallowed_methods, reason = "the handle is returned; the server joins it at shutdown")]
        let task = tokio::spawn(write_batches(vitals, batches, stop_rx, dropped.clone(), window));
        (Recorder { queue, dropped, stop, tap: None }, task)
    }

    /// Shows every recorded vital to `tap` too.
    pub fn with_tap(mut self, tap: VitalTap) -> Self {
        self.tap = Some(tap);
        self
    }

    pub fn record(&self, vital: Vital) {
        if let Some(tap) = &self.tap {
            tap(&vital);
        }
        if self.queue.push(vital).is_err() {
            self.dropped.inc();
        }
    }

    /// Asks the writer to drain what is queued and stop.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

async fn write_batches(
    vitals: Arc<dyn VitalsAgents>,
    mut batches: Batches<Vital>,
    mut stop: watch::Receiver<bool>,
    dropped: Counter,
    window: Duration,
) {
    let mut stopping = false;
    loop {
        let first = if stopping {
            None
        } else {
            tokio::select! {
                // `None`: every sender is gone and the queue is empty; nothing more can come.
                v = batches.recv() => match v {
                    Some(v) => Some(v),
                    None => return,
                },
                // Shutdown asked for, or the recorder itself dropped: drain and stop.
                _ = stop.wait_for(|s| *s) => {
                    stopping = true;
                    None
                }
            }
        };
        let mut batch: Vec<Vital> = first.into_iter().collect();
        let until = tokio::time::Instant::now() + window;
        let stopped = async {
            let _ = stop.wait_for(|s| *s).await;
        };
        stopping |= batches.fill(&mut batch, Some(until), stopped).await;
        if batch.is_empty() {
            if stopping {
                return;
            }
            continue;
        }
        let count = batch.len() as u64;
        if let Err(e) = vitals.insert_vitals(batch).await {
            dropped.inc_by(count);
            tracing::error!(error = %e, count, "could not write vitals");
            // Give a struggling disk a moment instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::vital;
    use vigil_core::page::PageRequest;
    use vigil_store::Store;
    use vigil_store::background::Background;
    use vigil_store::background::Priority;
    use vigil_store::{StoreOptions, VitalsFilter};

    #[tokio::test]
    async fn shutdown_drains_the_queue_and_a_full_queue_counts_drops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("open");
        let dropped = Counter::default();
        let writer = Background::start("vigil-test-vit", Priority::Lower).expect("writer");
        let (recorder, task) = Recorder::start(Arc::new(store.on_lane(writer)), 2, dropped.clone());
        for _ in 0..5 {
            recorder.record(vital("a"));
        }
        recorder.shutdown();
        task.await.expect("writer");
        let (stored, _) =
            store.list_vitals(&VitalsFilter::default(), PageRequest::new(None, None).expect("page")).expect("list");
        // The queue held at most two (plus any the writer had already taken); none is lost
        // silently: stored + dropped = recorded.
        assert_eq!(stored.len() as u64 + dropped.get(), 5);
        assert!(dropped.get() >= 1, "a full queue drops instead of blocking");
    }

    #[tokio::test]
    async fn a_dropped_recorder_stops_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("open");
        let writer = Background::start("vigil-test-vit", Priority::Lower).expect("writer");
        let (recorder, task) = Recorder::start(Arc::new(store.on_lane(writer)), 8, Counter::default());
        recorder.record(vital("a"));
        drop(recorder);
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("writer stops").expect("clean");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_mid_window_writes_what_was_queued_without_waiting_it_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("open");
        let writer = Background::start("vigil-test-vit", Priority::Lower).expect("writer");
        let window = Duration::from_secs(30);
        let (recorder, task) =
            Recorder::start_with_window(Arc::new(store.on_lane(writer)), 64, Counter::default(), window);
        recorder.record(vital("a"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        recorder.record(vital("a"));
        recorder.record(vital("a"));
        let asked = std::time::Instant::now();
        recorder.shutdown();
        tokio::time::timeout(window / 3, task).await.expect("the window was cut short").expect("writer");
        assert!(asked.elapsed() < window / 3);
        let page = PageRequest::new(None, None).expect("page");
        assert_eq!(store.list_vitals(&VitalsFilter::default(), page).expect("list").0.len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queue_more_than_half_full_ends_the_window_early() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("open");
        let writer = Background::start("vigil-test-vit", Priority::Lower).expect("writer");
        let dropped = Counter::default();
        let window = Duration::from_secs(30);
        let (recorder, task) = Recorder::start_with_window(Arc::new(store.on_lane(writer)), 8, dropped.clone(), window);
        let stored = || {
            let page = PageRequest::new(None, None).expect("page");
            store.list_vitals(&VitalsFilter::default(), page).expect("list").0.len()
        };
        // The first vital opens a window; the next few wait in the queue for it to end...
        recorder.record(vital("a"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..3 {
            recorder.record(vital("a"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(stored(), 0, "a queue half full or less waits out the window");
        // ...until the queue is more than half full: then the batch goes at once.
        for _ in 0..2 {
            recorder.record(vital("a"));
        }
        let since = std::time::Instant::now();
        while stored() < 6 {
            assert!(since.elapsed() < window / 3, "the window was not cut short");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(dropped.get(), 0);
        recorder.shutdown();
        task.await.expect("writer");
    }
}
