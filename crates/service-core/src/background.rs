//! Background work at a lower CPU priority.
//!
//! Some curve work is not on a signature's path: key generation and its distributed rounds,
//! refilling presignature pools, base-OT refreshes. When the CPU is short (a flood of key
//! generation or of ECDSA batches on a small host), that work must not take the CPU from
//! signing. So it runs on threads whose OS scheduling priority is lowered, as
//! [`set_priority`] chose (`batcher.background_priority`):
//!
//! - [`Priority::Idle`], the default: Linux's `SCHED_IDLE` policy. A signing thread that wakes
//!   up takes the CPU from a background thread at once. Under the nice value alone it waited
//!   for the background thread's time slice to end (up to a scheduler tick, 4 ms), at every
//!   one of the three or four thread hand-offs of a `Sign`, which tripled its p99 latency
//!   under a flood of key generation and ECDSA batches (`docs/performance.md`). The price: a
//!   background thread gets almost no CPU while other threads want all of it, so while
//!   signing (or anything else on the host) keeps every core busy, key generation and
//!   presignature refills wait, and requests that wait for them may reach their deadlines.
//! - [`Priority::Low`]: nice +[`NICE`] (Linux, where a thread's nice value is its own).
//!   Against one such thread, a signing thread at the default priority gets about nine
//!   tenths of a contended core, so background work keeps a share of a busy host.
//!
//! Both end at nice +[`NICE`], so where `SCHED_IDLE` is refused the thread is still at the
//! lower nice value. Background work gets whatever CPU is free, so on an idle host it runs as
//! fast as before.
//!
//! Background work runs on a fixed pool of such threads, one per CPU, not on a thread per
//! task. The nice value lowers each thread's weight, not the weight of the work as a whole:
//! with a thread per task, a flood of key generation (each new threshold-ECDSA key also
//! refills its presignature pool) ran eight or more background threads at once, which together
//! outweighed the signing threads and took two thirds of the CPU from them. Tasks that a
//! caller waits on ([`run`]: key generation and import, distributed rounds) go before tasks
//! that nobody waits on ([`spawn`]: pool refills).
//!
//! Two kinds of thread run at this priority: the pool's, and the batcher's workers for
//! queues whose items are expensive (see [`crate::batcher`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

use tokio::sync::oneshot;

use crate::Error;

/// The nice value background threads run at (0 is the default; 19 the lowest priority).
/// Against a thread at nice 0, one at nice 10 gets about a tenth of a contended core.
pub const NICE: i32 = 10;

/// How far background threads step back for signing (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Priority {
    /// `SCHED_IDLE` (Linux): signing takes the CPU from background work at once; background
    /// work gets only CPU nothing else wants.
    #[default]
    Idle,
    /// Nice +[`NICE`]: background work keeps about a tenth of a contended core per thread.
    Low,
}

impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Idle => "idle",
            Self::Low => "low",
        })
    }
}

impl std::str::FromStr for Priority {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "idle" => Ok(Self::Idle),
            "low" => Ok(Self::Low),
            _ => Err(format!("must be idle or low (got {s:?})")),
        }
    }
}

/// Whether background threads started from now on use `SCHED_IDLE` ([`Priority::Idle`]).
static IDLE: AtomicBool = AtomicBool::new(true);

/// Sets the priority of background threads started from now on; call it at start-up, before
/// any background work (threads already started keep theirs).
pub fn set_priority(priority: Priority) {
    IDLE.store(priority == Priority::Idle, Ordering::Relaxed);
}

/// Lowers the calling thread's CPU priority to the `SCHED_IDLE` policy under
/// [`Priority::Idle`], and to nice [`NICE`]. A thread cannot raise its priority again without
/// privileges, so call this only on threads that do nothing else. Where the OS refuses, or is
/// not Linux, the thread keeps what it has (logged once).
pub fn lower_this_thread() {
    let priority = if IDLE.load(Ordering::Relaxed) {
        Priority::Idle
    } else {
        Priority::Low
    };
    lower_to(priority);
}

/// [`lower_this_thread`] to `priority`.
#[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
fn lower_to(priority: Priority) {
    #[cfg(target_os = "linux")]
    {
        // SCHED_IDLE first: setting it also sets the nice value the priority names (0), which
        // would be refused once the thread is at NICE.
        if priority == Priority::Idle {
            use thread_priority::{
                NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
            };
            if let Err(e) = thread_priority::set_thread_priority_and_policy(
                thread_priority::thread_native_id(),
                ThreadPriority::Min,
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
            ) {
                static WARNED: OnceLock<()> = OnceLock::new();
                WARNED.get_or_init(|| {
                    tracing::warn!(error = ?e, "cannot give background threads the SCHED_IDLE policy; they run at nice {NICE}, and signing waits for their time slices");
                });
            }
        }
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), NICE) {
            static WARNED: OnceLock<()> = OnceLock::new();
            WARNED.get_or_init(|| {
                tracing::warn!(error = %e, "cannot lower the priority of background threads; background work competes with signing for the CPU");
            });
        }
    }
}

/// Whether this thread runs under `SCHED_IDLE` (Linux; `false` elsewhere), for tests and
/// diagnostics.
pub fn this_thread_idle() -> bool {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        thread_priority::thread_schedule_policy()
            .is_ok_and(|p| p == ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle))
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// This thread's nice value (Linux; `None` elsewhere), for tests and diagnostics.
pub fn this_thread_nice() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    None
}

type Task = Box<dyn FnOnce() + Send>;

/// Whether a caller waits for a task's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Urgency {
    /// A request waits on it: it goes before every deferred task.
    Awaited,
    /// Nobody waits on it.
    Deferred,
}

#[derive(Default)]
struct Queues {
    awaited: VecDeque<Task>,
    deferred: VecDeque<Task>,
    /// Threads started.
    threads: usize,
    /// Threads waiting for a task.
    idle: usize,
}

impl Queues {
    fn next(&mut self) -> Option<Task> {
        self.awaited
            .pop_front()
            .or_else(|| self.deferred.pop_front())
    }
}

/// The pool: at most `limit` threads, started as work arrives and kept.
struct Pool {
    limit: usize,
    queues: Mutex<Queues>,
    ready: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        limit: std::thread::available_parallelism().map_or(1, |n| n.get()),
        queues: Mutex::new(Queues::default()),
        ready: Condvar::new(),
    })
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `task`; starts a thread when none is idle and the pool is below its limit. Fails
    /// only when the pool has no thread and none can be started.
    fn submit(&'static self, urgency: Urgency, task: Task) -> std::io::Result<()> {
        let mut q = self.lock();
        let queued = q.awaited.len() + q.deferred.len();
        if q.idle <= queued && q.threads < self.limit {
            let started = std::thread::Builder::new()
                .name("tessera-bg".into())
                .spawn(move || {
                    lower_this_thread();
                    self.work();
                });
            match started {
                Ok(_) => q.threads += 1,
                Err(e) if q.threads == 0 => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, threads = q.threads, "cannot start another background thread; the task waits for one of the pool's");
                }
            }
        }
        match urgency {
            Urgency::Awaited => q.awaited.push_back(task),
            Urgency::Deferred => q.deferred.push_back(task),
        }
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    fn work(&self) {
        let mut q = self.lock();
        loop {
            if let Some(task) = q.next() {
                drop(q);
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_err() {
                    tracing::error!("a background task panicked");
                }
                q = self.lock();
            } else {
                q.idle += 1;
                q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                q.idle -= 1;
            }
        }
    }
}

/// Runs `f` on a background thread and waits for its result; it goes before every task of
/// [`spawn`]. A panic in `f` is [`Error::Panicked`] naming `task`.
pub async fn run<T: Send + 'static>(
    task: &'static str,
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let (reply, result) = oneshot::channel();
    pool()
        .submit(
            Urgency::Awaited,
            Box::new(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                    .unwrap_or(Err(Error::Panicked { task }));
                let _caller_gone = reply.send(r);
            }),
        )
        .map_err(|e| Error::Io {
            context: format!("starting a background thread for {task}"),
            source: e,
        })?;
    result.await.map_err(|_| Error::Panicked { task })?
}

/// The most background threads that run at once (one per CPU).
pub fn threads() -> usize {
    pool().limit
}

/// Queues `f` for a background thread without waiting for it; it runs after the tasks of
/// [`run`] queued before it starts.
pub fn spawn(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = pool().submit(Urgency::Deferred, Box::new(f)) {
        tracing::error!(error = %e, "cannot start a background thread; background work dropped");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn background_work_runs_at_a_lower_priority_and_returns_its_result() {
        let (name, nice) = run("test", || {
            Ok((
                std::thread::current().name().map(str::to_owned),
                this_thread_nice(),
            ))
        })
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("tessera-bg"));
        if cfg!(target_os = "linux") {
            // At least NICE: a process started at a lower priority stays there.
            assert!(nice.unwrap() >= NICE, "{nice:?}");
        }
        assert_eq!(
            run("test", || Ok(this_thread_idle())).await.unwrap(),
            cfg!(target_os = "linux"),
            "the default priority is idle"
        );
    }

    /// Each priority gives a thread what its documentation says, `Low` without `SCHED_IDLE`.
    #[test]
    fn each_priority_lowers_a_thread_as_documented() {
        for priority in [Priority::Idle, Priority::Low] {
            let (nice, idle) = std::thread::spawn(move || {
                lower_to(priority);
                (this_thread_nice(), this_thread_idle())
            })
            .join()
            .unwrap();
            if cfg!(target_os = "linux") {
                assert!(nice.unwrap() >= NICE, "{priority}: {nice:?}");
                assert_eq!(idle, priority == Priority::Idle, "{priority}");
            }
        }
        for priority in [Priority::Idle, Priority::Low] {
            assert_eq!(priority.to_string().parse::<Priority>(), Ok(priority));
        }
        assert!("nice".parse::<Priority>().is_err());
    }

    /// The pool runs at most one task per CPU at once, however many are queued.
    #[tokio::test]
    async fn no_more_tasks_run_at_once_than_the_pool_has_threads() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let limit = pool().limit;
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks = (0..limit * 4).map(|_| {
            let (now, most) = (Arc::clone(&now), Arc::clone(&most));
            run("test", move || {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(running, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
        });
        let tasks: Vec<_> = tasks.map(tokio::spawn).collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=limit).contains(&most),
            "{most} at once, {limit} threads"
        );
    }

    /// A task a caller waits for goes before deferred work queued earlier.
    #[test]
    fn awaited_work_goes_before_deferred_work() {
        use std::sync::mpsc;
        use std::sync::{Arc, Mutex};
        let limit = pool().limit;
        // Occupy every thread of the pool until released, one at a time.
        let (started, blocked) = mpsc::channel();
        let mut releases = Vec::new();
        for _ in 0..limit {
            let (release, wait) = mpsc::channel::<()>();
            let started = started.clone();
            spawn(move || {
                started.send(()).unwrap();
                wait.recv().unwrap();
            });
            releases.push(release);
        }
        for _ in 0..limit {
            blocked.recv().unwrap();
        }
        let order = Arc::new(Mutex::new(Vec::new()));
        let (done, finished) = mpsc::channel();
        let (deferred, awaited) = (Arc::clone(&order), Arc::clone(&order));
        let done2 = done.clone();
        spawn(move || {
            deferred.lock().unwrap().push("deferred");
            done.send(()).unwrap();
        });
        pool()
            .submit(
                Urgency::Awaited,
                Box::new(move || {
                    awaited.lock().unwrap().push("awaited");
                    done2.send(()).unwrap();
                }),
            )
            .unwrap();
        // One free thread takes the awaited task first; then the rest are let go.
        releases.pop().unwrap().send(()).unwrap();
        finished.recv().unwrap();
        for r in releases {
            r.send(()).unwrap();
        }
        finished.recv().unwrap();
        assert_eq!(*order.lock().unwrap(), ["awaited", "deferred"]);
    }

    #[tokio::test]
    async fn a_panicking_task_is_an_error() {
        let r: Result<(), Error> = run("boom", || panic!("boom")).await;
        assert!(matches!(r, Err(Error::Panicked { task: "boom" })), "{r:?}");
        assert_eq!(run("after", || Ok(7)).await.unwrap(), 7);
    }
}
