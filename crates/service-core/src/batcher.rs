//! The dynamic batcher, after the Triton Inference Server's dynamic batcher.
//!
//! Items from concurrent requests wait in one queue per (operation, scheme). A batch leaves a
//! queue when it holds `max_batch_size` items, when its oldest item has waited
//! `max_queue_delay_us` (0 = at once, with whatever is queued), or at shutdown. Batches run on
//! dedicated worker threads (not the async runtime); each item's result goes back through a
//! oneshot channel together with its share of the worker thread's CPU time for the batch.
//! The total number of waiting items is bounded by `max_queue`; a submission that does not fit
//! is refused whole with [`Error::Overloaded`] (RESOURCE_EXHAUSTED). A batch that panics fails
//! its items with [`Error::Panicked`] and leaves the worker running.
//!
//! Queues share the workers fairly (weighted fair queuing over worker time): each queue is
//! charged the wall time its batches take, and of the queues ready to run the one charged least
//! goes next; a queue that was idle starts level with the others. A queue whose items are
//! expensive (ECDSA presigning on demand) gets batches of about [`BATCH_TIME_TARGET`] (from
//! its measured time per item), so a cheap queue's items never wait behind minutes of it.
//!
//! Expensive queues (declared so by [`Queue::expensive`], or measured at [`EXPENSIVE_ITEM`] or
//! more of CPU time per item) also have workers of their own: `workers` threads serve the
//! other queues and as many again, at a lower CPU priority ([`crate::background`]), serve the
//! expensive ones. A signature never waits for a worker to finish a batch of presigning, and
//! when the CPU is short its batch gets the larger share of it.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::{Error, Observer, Queue};

/// The batcher's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Most items per batch (≥ 1).
    pub max_batch_size: usize,
    /// How long the oldest item may wait for its batch to fill, µs (0 = take what is queued
    /// now).
    pub max_queue_delay_us: u64,
    /// Most items waiting over all queues before submissions are refused.
    pub max_queue: usize,
    /// Worker threads that run batches of the cheap queues; as many again run the expensive
    /// queues' batches at a lower CPU priority.
    pub workers: usize,
}

/// The result of one item with its share of the batch's CPU time.
#[derive(Debug)]
pub struct Done<R> {
    /// The item's result.
    pub result: R,
    /// Worker-thread CPU seconds of the batch divided by the batch's item count.
    pub cpu_seconds: f64,
    /// The accelerator backend that did the batch's work, as the probe reported it.
    pub backend: Option<&'static str>,
}

type Process<T, R> = dyn Fn(Queue, Vec<T>) -> Vec<R> + Send + Sync;
type Probe = dyn Fn() -> Option<&'static str> + Send + Sync;

struct Pending<T, R> {
    item: T,
    enqueued: Instant,
    reply: oneshot::Sender<Done<R>>,
}

/// About how long one batch of an expensive queue may hold a worker.
pub const BATCH_TIME_TARGET: Duration = Duration::from_millis(20);

/// The size of a queue's batches until its cost per item has been measured.
const FIRST_BATCH: usize = 16;

/// From this measured CPU time per item on, a queue's batches run on the background workers.
/// CPU time, not wall time: a cheap batch that waited for a CPU in its middle is still cheap
/// (measured by wall time, one such batch of one item sent signatures to the background
/// workers under load).
pub const EXPENSIVE_ITEM: Duration = Duration::from_micros(500);

/// Which queues a worker serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Queues whose items are cheap (or not measured yet): normal priority.
    Foreground,
    /// Queues whose items cost [`EXPENSIVE_ITEM`] or more of CPU time: lower priority.
    Background,
}

struct State<T, R> {
    queues: Vec<VecDeque<Pending<T, R>>>,
    depth: usize,
    shutdown: bool,
    /// Worker seconds charged to each queue (its virtual time).
    vtime: Vec<f64>,
    /// The virtual time of the latest batch started; an idle queue that gets work starts here.
    now_v: f64,
    /// Measured wall seconds per item of each queue's batches (moving average; 0 = unknown).
    item_time: Vec<f64>,
    /// Measured CPU seconds per item of each queue's batches (moving average; 0 = unknown).
    item_cpu: Vec<f64>,
}

impl<T, R> State<T, R> {
    /// The workers that serve queue `q` now.
    fn class(&self, q: usize) -> Class {
        if Queue::ALL[q].expensive() || self.item_cpu[q] >= EXPENSIVE_ITEM.as_secs_f64() {
            Class::Background
        } else {
            Class::Foreground
        }
    }

    /// The most items queue `q`'s next batch may take: about [`BATCH_TIME_TARGET`] of work,
    /// and [`FIRST_BATCH`] items while its cost is unknown.
    fn cap(&self, q: usize, max_batch_size: usize) -> usize {
        let per_item = self.item_time[q];
        if per_item > 0.0 {
            ((BATCH_TIME_TARGET.as_secs_f64() / per_item) as usize).clamp(1, max_batch_size)
        } else {
            FIRST_BATCH.min(max_batch_size)
        }
    }
}

struct Shared<T, R> {
    state: Mutex<State<T, R>>,
    /// Wakes the workers of one class: `[Foreground, Background]`.
    wake: [Condvar; 2],
    max_batch_size: usize,
    max_delay: Duration,
    max_queue: usize,
    observer: Arc<dyn Observer>,
    process: Box<Process<T, R>>,
    probe: Box<Probe>,
}

/// A set of queues served by a pool of worker threads.
pub struct Batcher<T, R> {
    shared: Arc<Shared<T, R>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl<T, R> std::fmt::Debug for Batcher<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("max_batch_size", &self.shared.max_batch_size)
            .field("max_queue", &self.shared.max_queue)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts `cfg.workers` threads serving one queue per [`Queue`]. `process(queue, items)`
    /// must return one result per item; `probe()`, called on the worker thread right after,
    /// names the backend that did the work (see [`Done::backend`]).
    pub fn new(
        cfg: &BatcherConfig,
        observer: Arc<dyn Observer>,
        process: impl Fn(Queue, Vec<T>) -> Vec<R> + Send + Sync + 'static,
        probe: impl Fn() -> Option<&'static str> + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queues: Queue::ALL.iter().map(|_| VecDeque::new()).collect(),
                depth: 0,
                shutdown: false,
                vtime: vec![0.0; Queue::ALL.len()],
                now_v: 0.0,
                item_time: vec![0.0; Queue::ALL.len()],
                item_cpu: vec![0.0; Queue::ALL.len()],
            }),
            wake: [Condvar::new(), Condvar::new()],
            max_batch_size: cfg.max_batch_size.max(1),
            max_delay: Duration::from_micros(cfg.max_queue_delay_us),
            max_queue: cfg.max_queue.max(1),
            observer,
            process: Box::new(process),
            probe: Box::new(probe),
        });
        let mut workers = Vec::new();
        for class in [Class::Foreground, Class::Background] {
            for i in 0..cfg.workers.max(1) {
                let s = Arc::clone(&shared);
                let name = match class {
                    Class::Foreground => format!("tessera-batch-{i}"),
                    Class::Background => format!("tessera-batch-bg-{i}"),
                };
                let handle = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || {
                        if class == Class::Background {
                            crate::background::lower_this_thread();
                        }
                        worker(&s, class);
                    })
                    .map_err(|e| Error::Io {
                        context: "spawning batcher worker".into(),
                        source: e,
                    })?;
                workers.push(handle);
            }
        }
        Ok(Self {
            shared,
            workers: Mutex::new(workers),
        })
    }

    /// Queues `items` on `queue`, all or none; returns one receiver per item, in order.
    pub fn submit(
        &self,
        queue: Queue,
        items: Vec<T>,
    ) -> Result<Vec<oneshot::Receiver<Done<R>>>, Error> {
        self.submit_each(items.into_iter().map(|item| (queue, item)).collect())
    }

    /// Queues each item on its own queue, all or none; returns one receiver per item, in
    /// order.
    pub fn submit_each(
        &self,
        items: Vec<(Queue, T)>,
    ) -> Result<Vec<oneshot::Receiver<Done<R>>>, Error> {
        let s = &self.shared;
        let mut st = lock(&s.state);
        if st.shutdown {
            return Err(Error::ShuttingDown);
        }
        if st.depth + items.len() > s.max_queue {
            return Err(Error::Overloaded {
                depth: st.depth,
                max_queue: s.max_queue,
                retry_after: (s.max_delay * 10).max(Duration::from_millis(10)),
            });
        }
        let now = Instant::now();
        let mut receivers = Vec::with_capacity(items.len());
        st.depth += items.len();
        // The classes with a queue that needs a worker woken: one that was empty (no deadline
        // was set for it) or is now full. Otherwise a worker is already waiting for the
        // queue's deadline, or busy and will look again when its batch is done; waking one
        // per submission only costs context switches.
        let mut wake = [false; 2];
        let mut touched = [false; Queue::ALL.len()];
        for (queue, item) in items {
            let i = queue.index();
            if st.queues[i].is_empty() {
                // An idle queue starts level with the work running now, not with a credit.
                st.vtime[i] = st.vtime[i].max(st.now_v);
                wake[st.class(i) as usize] = true;
            }
            touched[i] = true;
            let (reply, rx) = oneshot::channel();
            st.queues[i].push_back(Pending {
                item,
                enqueued: now,
                reply,
            });
            receivers.push(rx);
        }
        for (i, _) in touched.iter().enumerate().filter(|(_, t)| **t) {
            if st.queues[i].len() >= st.cap(i, s.max_batch_size) {
                wake[st.class(i) as usize] = true;
            }
        }
        s.observer.queue_depth(st.depth);
        drop(st);
        for (class, _) in wake.iter().enumerate().filter(|(_, w)| **w) {
            s.wake[class].notify_one();
        }
        Ok(receivers)
    }

    /// Items waiting now.
    pub fn depth(&self) -> usize {
        lock(&self.shared.state).depth
    }

    /// Stops taking work, lets the workers finish everything queued, and joins them.
    pub fn shutdown(&self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.wake.iter().for_each(Condvar::notify_all);
        let workers = std::mem::take(&mut *lock(&self.workers));
        for w in workers {
            let _joined = w.join();
        }
    }
}

impl<T, R> Drop for Batcher<T, R> {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.wake.iter().for_each(Condvar::notify_all);
        for w in std::mem::take(&mut *lock(&self.workers)) {
            let _joined = w.join();
        }
    }
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The queue of `class` to serve now (of the ready ones, the one charged the least worker
/// time; the older front breaks ties), else the earliest instant at which one becomes ready.
fn pick<T, R>(
    s: &Shared<T, R>,
    st: &State<T, R>,
    now: Instant,
    class: Class,
) -> Result<usize, Option<Instant>> {
    let mut best: Option<(usize, f64, Instant)> = None;
    let mut next: Option<Instant> = None;
    for (i, q) in st.queues.iter().enumerate() {
        if st.class(i) != class {
            continue;
        }
        let Some(front) = q.front() else { continue };
        let deadline = front.enqueued + s.max_delay;
        if st.shutdown || q.len() >= st.cap(i, s.max_batch_size) || deadline <= now {
            let v = st.vtime[i];
            if best.is_none_or(|(_, bv, t)| v < bv || (v == bv && front.enqueued < t)) {
                best = Some((i, v, front.enqueued));
            }
        } else if next.is_none_or(|n| deadline < n) {
            next = Some(deadline);
        }
    }
    best.map(|(i, _, _)| i).ok_or(next)
}

fn worker<T, R>(s: &Shared<T, R>, class: Class) {
    let wake = &s.wake[class as usize];
    loop {
        let mut st = lock(&s.state);
        let (q, estimate, queue, batch) = loop {
            match pick(s, &st, Instant::now(), class) {
                Ok(q) => {
                    let n = st.queues[q].len().min(st.cap(q, s.max_batch_size));
                    let batch: Vec<_> = st.queues[q].drain(..n).collect();
                    st.depth -= n;
                    // Charge the batch now (at its expected cost), settle after it ran.
                    st.now_v = st.now_v.max(st.vtime[q]);
                    let estimate = st.item_time[q] * n as f64;
                    st.vtime[q] += estimate;
                    s.observer.queue_depth(st.depth);
                    if !st.queues[q].is_empty() {
                        // More of this queue is waiting: let another worker plan for it.
                        wake.notify_one();
                    }
                    break (q, estimate, Queue::ALL[q], batch);
                }
                Err(_) if st.shutdown => return,
                Err(Some(deadline)) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    st = wake
                        .wait_timeout(st, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                Err(None) => st = wake.wait(st).unwrap_or_else(|e| e.into_inner()),
            }
        };
        drop(st);
        let n = batch.len().max(1) as f64;
        let started = Instant::now();
        let cpu = run_batch(s, queue, batch);
        let took = started.elapsed().as_secs_f64();
        let mut st = lock(&s.state);
        st.vtime[q] += took - estimate;
        st.item_time[q] = follow(st.item_time[q], took / n);
        st.item_cpu[q] = follow(st.item_cpu[q], cpu.unwrap_or(took) / n);
        let now_class = st.class(q);
        if now_class != class && !st.queues[q].is_empty() {
            // The queue changed hands: its waiting items are the other workers' now.
            s.wake[now_class as usize].notify_one();
        }
    }
}

/// The next moving average of a cost per item: a rise counts at once (the next batch must not
/// hold a worker for long); a fall is believed slowly (a queue can mix cheap and expensive
/// items).
fn follow(old: f64, per_item: f64) -> f64 {
    if per_item >= old {
        per_item
    } else {
        0.9 * old + 0.1 * per_item
    }
}

/// Runs one batch and answers its items; returns the batch's CPU seconds on this thread, when
/// the thread's CPU clock can be read.
fn run_batch<T, R>(s: &Shared<T, R>, queue: Queue, batch: Vec<Pending<T, R>>) -> Option<f64> {
    let n = batch.len();
    let waited = batch
        .iter()
        .map(|p| p.enqueued)
        .min()
        .map_or(Duration::ZERO, |t| t.elapsed());
    s.observer.batch_started(queue, n, waited);
    let mut items = Vec::with_capacity(n);
    let mut replies = Vec::with_capacity(n);
    for p in batch {
        items.push(p.item);
        replies.push(p.reply);
    }
    let cpu = cpu_time::ThreadTime::try_now().ok();
    // A panicking batch drops its replies (the callers see the channel close) but does not take
    // the worker thread down with it.
    let results = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (s.process)(queue, items)
    })) {
        Ok(r) => r,
        Err(_) => {
            tracing::error!(op = queue.op(), scheme = %queue.scheme(), items = n, "batch processing panicked");
            return cpu.map(|t| t.elapsed().as_secs_f64());
        }
    };
    let batch_cpu = cpu.map(|t| t.elapsed().as_secs_f64());
    let cpu_seconds = batch_cpu.unwrap_or(0.0) / n.max(1) as f64;
    let backend = (s.probe)();
    for (reply, result) in replies.into_iter().zip(results) {
        let _receiver_gone = reply.send(Done {
            result,
            cpu_seconds,
            backend,
        });
    }
    batch_cpu
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::{NoObserver, Scheme};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    const A: Queue = Queue::Sign(Scheme::Ed25519);
    const B: Queue = Queue::Sign(Scheme::Bip340);

    fn quiet() -> Arc<dyn Observer> {
        Arc::new(NoObserver)
    }

    fn no_probe() -> Option<&'static str> {
        None
    }

    /// Counts batches, for the delay-0 test.
    #[derive(Debug, Default)]
    struct Batches(AtomicUsize);

    impl Observer for Batches {
        fn queue_depth(&self, _depth: usize) {}
        fn batch_started(&self, _queue: Queue, _size: usize, _oldest_wait: Duration) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        fn presignatures_ready(&self, _delta: i64) {}
        fn presignature_used(&self, _source: crate::PresignSource) {}
        fn signatures_issued(&self, _scheme: Scheme, _count: u64) {}
    }

    fn cfg(
        max_batch_size: usize,
        delay_us: u64,
        max_queue: usize,
        workers: usize,
    ) -> BatcherConfig {
        BatcherConfig {
            max_batch_size,
            max_queue_delay_us: delay_us,
            max_queue,
            workers,
        }
    }

    #[tokio::test]
    async fn max_batch_size_is_respected_and_results_come_back_in_order() {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let b = Batcher::new(
            &cfg(8, 50_000, 1000, 2),
            quiet(),
            move |q, items: Vec<u32>| {
                lock(&tx).send(items.len()).unwrap();
                items
                    .into_iter()
                    .map(|x| x * 10 + q.index() as u32)
                    .collect()
            },
            || Some("cpu"),
        )
        .unwrap();
        let rxs = b.submit(A, (0..100).collect()).unwrap();
        let rxs_b = b.submit(B, (0..3).collect()).unwrap();
        for (i, r) in rxs.into_iter().enumerate() {
            let done = r.await.unwrap();
            assert_eq!(done.result, i as u32 * 10);
            assert_eq!(done.backend, Some("cpu"));
        }
        for (i, r) in rxs_b.into_iter().enumerate() {
            assert_eq!(r.await.unwrap().result, i as u32 * 10 + 1);
        }
        let sizes: Vec<usize> = rx.try_iter().collect();
        assert_eq!(sizes.iter().sum::<usize>(), 103);
        assert!(sizes.iter().all(|&n| (1..=8).contains(&n)), "{sizes:?}");
        assert!(sizes.iter().filter(|&&n| n == 8).count() >= 12, "{sizes:?}");
        assert_eq!(b.depth(), 0);
    }

    /// A cheap queue's item does not wait behind a deep queue of expensive items: the
    /// expensive queue gets short batches once its cost is known, and the cheap queue, idle
    /// until then, goes next.
    #[tokio::test]
    async fn a_cheap_item_does_not_wait_behind_a_deep_expensive_queue() {
        let b = Batcher::new(
            &cfg(64, 0, 10_000, 1),
            quiet(),
            |q, items: Vec<u32>| {
                if q == A {
                    std::thread::sleep(Duration::from_millis(2) * items.len() as u32);
                }
                items
            },
            no_probe,
        )
        .unwrap();
        // 400 expensive items: 800 ms of work, in batches of about 20 ms once measured.
        let slow = b.submit(A, (0..400).collect()).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let start = Instant::now();
        let cheap = b.submit(B, vec![7]).unwrap();
        for r in cheap {
            assert_eq!(r.await.unwrap().result, 7);
        }
        let waited = start.elapsed();
        assert!(
            waited < Duration::from_millis(100),
            "the cheap item waited {waited:?} behind the expensive queue"
        );
        assert!(
            b.depth() > 100,
            "most of the expensive queue was still waiting"
        );
        for r in slow {
            r.await.unwrap();
        }
    }

    /// Keeps this thread's CPU busy for `d`.
    fn burn(d: Duration) {
        let start = Instant::now();
        while start.elapsed() < d {
            std::hint::spin_loop();
        }
    }

    /// One worker per class: once queue A is known to be expensive (40 ms of CPU per item, so
    /// one item per batch), its batches run on the background worker, at a lower CPU
    /// priority, and a cheap item is served at once instead of after the batch that is
    /// running.
    #[tokio::test]
    async fn a_cheap_item_gets_a_worker_while_an_expensive_batch_runs() {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let b = Batcher::new(
            &cfg(64, 0, 10_000, 1),
            quiet(),
            move |q, items: Vec<u32>| {
                if q == A {
                    let thread = std::thread::current().name().map(str::to_owned);
                    lock(&tx)
                        .send((thread, crate::background::this_thread_nice()))
                        .unwrap();
                    burn(Duration::from_millis(40) * items.len() as u32);
                }
                items
            },
            no_probe,
        )
        .unwrap();
        // The first item measures the queue.
        for r in b.submit(A, vec![0]).unwrap() {
            r.await.unwrap();
        }
        let (first, _) = rx.recv().unwrap();
        assert_eq!(first.as_deref(), Some("tessera-batch-0"));
        let slow = b.submit(A, (1..=5).collect()).unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let start = Instant::now();
        for r in b.submit(B, vec![7]).unwrap() {
            assert_eq!(r.await.unwrap().result, 7);
        }
        let waited = start.elapsed();
        assert!(
            waited < Duration::from_millis(50),
            "the cheap item waited {waited:?} for the expensive batch"
        );
        for r in slow {
            r.await.unwrap();
        }
        for _ in 1..=5 {
            let (thread, nice) = rx.recv().unwrap();
            assert_eq!(thread.as_deref(), Some("tessera-batch-bg-0"));
            if cfg!(target_os = "linux") {
                assert!(nice.unwrap() >= crate::background::NICE, "{nice:?}");
            }
        }
    }

    /// A batch that takes long but little CPU (here it sleeps; under load, it waits for a CPU)
    /// leaves its queue with the workers that serve signatures.
    #[tokio::test]
    async fn a_batch_slow_for_want_of_cpu_stays_on_the_signature_workers() {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let b = Batcher::new(
            &cfg(64, 0, 10_000, 1),
            quiet(),
            move |_, items: Vec<u32>| {
                let thread = std::thread::current().name().map(str::to_owned);
                lock(&tx).send(thread).unwrap();
                std::thread::sleep(Duration::from_millis(5));
                items
            },
            no_probe,
        )
        .unwrap();
        for i in 0..4 {
            for r in b.submit(A, vec![i]).unwrap() {
                assert_eq!(r.await.unwrap().result, i);
            }
        }
        let ran: Vec<_> = rx.try_iter().collect();
        assert_eq!(ran.len(), 4);
        for thread in ran {
            assert_eq!(thread.as_deref(), Some("tessera-batch-0"));
        }
    }

    /// A queue declared expensive never runs on the workers that serve signatures, not even
    /// its first batch (before any of its cost is measured); items of one submission spread
    /// over several queues come back in submission order.
    #[tokio::test]
    async fn a_declared_expensive_queue_runs_on_the_background_workers_from_the_start() {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let b = Batcher::new(
            &cfg(64, 0, 10_000, 1),
            quiet(),
            move |q, items: Vec<u32>| {
                let thread = std::thread::current().name().map(str::to_owned);
                lock(&tx).send((q, thread)).unwrap();
                items
                    .into_iter()
                    .map(|x| x * 100 + q.index() as u32)
                    .collect()
            },
            no_probe,
        )
        .unwrap();
        let on_demand = Queue::EcdsaOnDemand;
        assert!(on_demand.expensive() && !A.expensive());
        let items = vec![(A, 1), (on_demand, 2), (A, 3), (on_demand, 4)];
        let mut results = Vec::new();
        for r in b.submit_each(items).unwrap() {
            results.push(r.await.unwrap().result);
        }
        assert_eq!(results, [100, 212, 300, 412]);
        let ran: Vec<_> = rx.try_iter().collect();
        assert!(ran.iter().any(|(q, _)| *q == on_demand), "{ran:?}");
        for (q, thread) in ran {
            let want = if q == on_demand {
                "tessera-batch-bg-0"
            } else {
                "tessera-batch-0"
            };
            assert_eq!(thread.as_deref(), Some(want), "{q:?}");
        }
    }

    #[tokio::test]
    async fn items_wait_for_company_up_to_the_delay() {
        let b = Batcher::new(
            &cfg(64, 100_000, 1000, 1),
            quiet(),
            |_, items: Vec<u32>| vec![items.len() as u32; items.len()],
            no_probe,
        )
        .unwrap();
        let first = b.submit(A, vec![1]).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = b.submit(A, vec![2, 3]).unwrap();
        let start = Instant::now();
        for r in first.into_iter().chain(second) {
            assert_eq!(r.await.unwrap().result, 3, "all three rode in one batch");
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn zero_delay_takes_what_is_queued_now() {
        let batches = Arc::new(Batches::default());
        let b = Batcher::new(
            &cfg(256, 0, 1000, 1),
            Arc::clone(&batches) as Arc<dyn Observer>,
            |_, items: Vec<u32>| items,
            no_probe,
        )
        .unwrap();
        let start = Instant::now();
        let r = b.submit(A, vec![7]).unwrap();
        let done = tokio::time::timeout(Duration::from_secs(5), r.into_iter().next().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.result, 7);
        assert!(done.cpu_seconds >= 0.0);
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(batches.0.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn full_queue_is_refused_whole_with_resource_exhausted() {
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = Mutex::new(gate_rx);
        let b = Batcher::new(
            &cfg(1, 0, 4, 1),
            quiet(),
            move |_, items: Vec<u32>| {
                lock(&gate).recv().unwrap();
                items
            },
            no_probe,
        )
        .unwrap();
        let first = b.submit(A, vec![0]).unwrap();
        // Wait until the worker has taken the first item and blocks on the gate.
        while b.depth() != 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let queued = b.submit(A, vec![1, 2, 3]).unwrap();
        let err = b.submit(B, vec![4, 5]).unwrap_err();
        assert!(matches!(
            err,
            Error::Overloaded {
                depth: 3,
                max_queue: 4,
                ..
            }
        ));
        assert_eq!(err.kind(), crate::ErrorKind::ResourceExhausted);
        assert!(err.to_string().contains("retry after"), "{err}");
        assert_eq!(b.depth(), 3, "nothing of the refused submission was queued");
        for _ in 0..4 {
            gate_tx.send(()).unwrap();
        }
        for (i, r) in first.into_iter().chain(queued).enumerate() {
            assert_eq!(r.await.unwrap().result, i as u32);
        }
    }

    #[tokio::test]
    async fn a_panicking_batch_fails_its_items_and_the_worker_survives() {
        let b = Batcher::new(
            &cfg(8, 0, 100, 1),
            quiet(),
            |_, items: Vec<u32>| {
                assert!(!items.contains(&13), "unlucky batch");
                items
            },
            no_probe,
        )
        .unwrap();
        let bad = b.submit(A, vec![13]).unwrap();
        assert!(bad.into_iter().next().unwrap().await.is_err());
        let good = b.submit(A, vec![1]).unwrap();
        assert_eq!(good.into_iter().next().unwrap().await.unwrap().result, 1);
    }

    #[tokio::test]
    async fn shutdown_finishes_queued_work() {
        let b = Batcher::new(
            &cfg(2, 1_000_000, 100, 1),
            quiet(),
            |_, items: Vec<u32>| items,
            no_probe,
        )
        .unwrap();
        let r = b.submit(A, vec![5]).unwrap();
        b.shutdown();
        assert_eq!(r.into_iter().next().unwrap().await.unwrap().result, 5);
        assert!(matches!(b.submit(A, vec![1]), Err(Error::ShuttingDown)));
    }
}
