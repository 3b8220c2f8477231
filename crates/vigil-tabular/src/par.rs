//! Data parallelism over a few items (columns, chunks) with scoped standard threads: the
//! pack needs nothing more, so it takes no thread-pool dependency.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// The number of worker threads to use when the caller does not say.
pub fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f` over every item on up to `threads` threads; results in the items' order. A panic
/// in `f` is propagated.
pub fn map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    run(items.len(), threads, |i| f(&items[i]))
}

/// Like [`map`], but each item is moved into `f`, so it can be dropped as soon as it is
/// processed (a raw column freed once its typed column exists).
pub fn map_owned<T: Send, R: Send>(items: Vec<T>, threads: usize, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    run(slots.len(), threads, |i| {
        let item = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take();
        // Each index is handed out exactly once by `run`.
        f(item.unwrap_or_else(|| unreachable!("item {i} taken twice")))
    })
}

fn run<R: Send>(len: usize, threads: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let threads = threads.clamp(1, len.max(1));
    if threads == 1 {
        return (0..len).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= len {
                            return mine;
                        }
                        mine.push((i, f(i)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order() {
        let items: Vec<u64> = (0..1000).collect();
        for threads in [1, 2, 7] {
            assert_eq!(map(&items, threads, |x| x * 2), items.iter().map(|x| x * 2).collect::<Vec<_>>());
            assert_eq!(map_owned(items.clone(), threads, |x| x + 1), items.iter().map(|x| x + 1).collect::<Vec<_>>());
        }
        assert!(map(&[] as &[u8], 4, |x| *x).is_empty());
    }
}
