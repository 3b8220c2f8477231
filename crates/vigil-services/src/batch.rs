//! The one batching rhythm of Vigil's writers (the vitals recorder, the immune engine task).
//!
//! Senders push into a bounded queue without waking the writer. A batch begins with the
//! first item the writer receives and is given until a deadline the writer chooses to fill;
//! the writer sleeps through it rather than wake for each item (a wake-up per item cost the
//! calls' tail latency). A sender's ring ends the wait early: an urgent push rings at once,
//! and every push rings once the queue is more than half full, so a small queue does not
//! overflow while the writer sleeps. A ring while no wait is open is kept and ends the next
//! one at once: one extra small batch, never an item left waiting. Then the batch takes what
//! is queued, up to its most. A full batch means the queue is behind, and the next batch
//! does not wait.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// A bounded batching queue: its sending side and its writer's side.
pub fn queue<T>(capacity: usize, batch_max: usize) -> (Feeder<T>, Batches<T>) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let ring = Arc::new(Notify::new());
    let feeder = Feeder { tx, ring: ring.clone(), half: capacity.div_ceil(2) };
    (feeder, Batches { rx, ring, max: batch_max.max(1), behind: false })
}

/// The sending side; cheap to clone.
pub struct Feeder<T> {
    tx: mpsc::Sender<T>,
    ring: Arc<Notify>,
    /// Free slots below which the queue counts as more than half full.
    half: usize,
}

impl<T> Clone for Feeder<T> {
    fn clone(&self) -> Self {
        Feeder { tx: self.tx.clone(), ring: self.ring.clone(), half: self.half }
    }
}

impl<T> std::fmt::Debug for Feeder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feeder").field("room", &self.room()).finish_non_exhaustive()
    }
}

impl<T> Feeder<T> {
    /// Free slots in the queue now.
    pub fn room(&self) -> usize {
        self.tx.capacity()
    }

    /// Queues `item` without blocking or waking the writer, unless the queue is full or
    /// the writer is gone (then `item` comes back).
    pub fn push(&self, item: T) -> Result<(), T> {
        let pushed = self.tx.try_send(item).map_err(|e| match e {
            mpsc::error::TrySendError::Full(item) | mpsc::error::TrySendError::Closed(item) => item,
        });
        if self.tx.capacity() < self.half {
            self.ring.notify_one();
        }
        pushed
    }

    /// Queues `item`, waiting for room, and ends the writer's wait: it is applied in the
    /// next batch. `Err` gives it back when the writer is gone.
    pub async fn push_urgent(&self, item: T) -> Result<(), T> {
        self.tx.send(item).await.map_err(|e| e.0)?;
        self.ring.notify_one();
        Ok(())
    }
}

/// The writer's side.
pub struct Batches<T> {
    rx: mpsc::Receiver<T>,
    ring: Arc<Notify>,
    max: usize,
    /// The last batch was full.
    behind: bool,
}

impl<T> std::fmt::Debug for Batches<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches").field("max", &self.max).field("behind", &self.behind).finish_non_exhaustive()
    }
}

impl<T> Batches<T> {
    /// The next item, the first of a batch; `None` once every sender is gone and the queue
    /// is empty. Cancel-safe, so a writer may wait for it beside other work.
    pub async fn recv(&mut self) -> Option<T> {
        self.rx.recv().await
    }

    /// Fills `batch` (what the writer has received so far): unless it is empty or the queue
    /// is behind, waits until `until` (no wait when `None`), a sender's ring or `interrupt`,
    /// whichever comes first; then takes what is queued, up to the most. Returns whether
    /// `interrupt` ended the wait.
    pub async fn fill(
        &mut self,
        batch: &mut Vec<T>,
        until: Option<Instant>,
        interrupt: impl Future<Output = ()>,
    ) -> bool {
        let mut interrupted = false;
        if let (Some(until), false, false) = (until, batch.is_empty(), self.behind) {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = self.ring.notified() => {}
                () = interrupt => interrupted = true,
            }
        }
        while batch.len() < self.max {
            match self.rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        self.behind = batch.len() == self.max;
        interrupted
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    /// A batch waits out its window, then takes everything queued up to the most.
    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_its_window_then_takes_up_to_the_most() {
        let (feeder, mut batches) = queue::<u32>(100, 3);
        for i in 0..5 {
            feeder.push(i).expect("room");
        }
        let first = batches.recv().await.expect("first");
        let started = Instant::now();
        let mut batch = vec![first];
        assert!(!batches.fill(&mut batch, Some(started + Duration::from_millis(25)), std::future::pending()).await);
        assert_eq!(batch, [0, 1, 2]);
        assert_eq!(started.elapsed(), Duration::from_millis(25), "the window was waited out");
        // Full: behind, so the next batch takes what is there without waiting.
        let mut next = vec![batches.recv().await.expect("next")];
        let at = Instant::now();
        batches.fill(&mut next, Some(at + LONG), std::future::pending()).await;
        assert_eq!((next, at.elapsed()), (vec![3, 4], Duration::ZERO));
    }

    /// An urgent push, a queue more than half full, or the writer's own interrupt end the
    /// window; a ring before the window opened ends it at once.
    #[tokio::test(start_paused = true)]
    async fn rings_and_interrupts_end_the_window_early() {
        let (feeder, mut batches) = queue::<u32>(4, 100);
        feeder.push(1).expect("room");
        let mut batch = vec![batches.recv().await.expect("first")];
        let at = Instant::now();
        let urgent = feeder.clone();
        let (_, interrupted) = tokio::join!(
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                urgent.push_urgent(2).await.expect("room");
            },
            batches.fill(&mut batch, Some(at + LONG), std::future::pending()),
        );
        assert_eq!((batch, interrupted, at.elapsed()), (vec![1, 2], false, Duration::from_millis(5)));

        // Three of four slots taken: more than half full rings, before the window opens.
        for i in 3..6 {
            feeder.push(i).expect("room");
        }
        let mut batch = vec![batches.recv().await.expect("first")];
        let at = Instant::now();
        batches.fill(&mut batch, Some(at + LONG), std::future::pending()).await;
        assert_eq!((batch, at.elapsed()), (vec![3, 4, 5], Duration::ZERO));

        feeder.push(6).expect("room");
        let mut batch = vec![batches.recv().await.expect("first")];
        let at = Instant::now();
        let interrupted = batches.fill(&mut batch, Some(at + LONG), tokio::time::sleep(Duration::from_millis(7))).await;
        assert_eq!((batch, interrupted, at.elapsed()), (vec![6], true, Duration::from_millis(7)));
    }

    #[tokio::test]
    async fn a_full_queue_gives_the_item_back_and_so_does_a_closed_one() {
        let (feeder, batches) = queue::<u32>(1, 10);
        feeder.push(1).expect("room");
        assert_eq!(feeder.push(2), Err(2));
        drop(batches);
        assert_eq!(feeder.push_urgent(3).await, Err(3));
    }
}
