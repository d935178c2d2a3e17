//! Background work at a lower CPU priority.
//!
//! Some curve work is not on a signature's path: key generation and its distributed rounds,
//! refilling presignature pools, base-OT refreshes. When the CPU is short (a flood of key
//! generation or of ECDSA batches on a small host), that work must not take the CPU from
//! signing. So it runs on threads whose OS scheduling priority is lowered (nice +[`NICE`] on
//! Linux, where a thread's nice value is its own). Against one such thread, a signing thread
//! at the default priority gets about nine tenths of a contended core. Background work still
//! gets whatever CPU is free, so on an idle host it runs as fast as before.
//!
//! Two kinds of thread run at this priority: those that [`run`] and [`spawn`] start, and the
//! batcher's workers for queues whose items are expensive (see [`crate::batcher`]).

#[cfg(target_os = "linux")]
use std::sync::OnceLock;

use tokio::sync::oneshot;

use crate::Error;

/// The nice value background threads run at (0 is the default; 19 the lowest priority).
/// Against a thread at nice 0, one at nice 10 gets about a tenth of a contended core.
pub const NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to nice [`NICE`]. A thread cannot raise its
/// priority again without privileges, so call this only on threads that do nothing else.
/// Where the OS refuses, or is not Linux, the thread keeps its priority (logged once).
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), NICE) {
            static WARNED: OnceLock<()> = OnceLock::new();
            WARNED.get_or_init(|| {
                tracing::warn!(error = %e, "cannot lower the priority of background threads; background work competes with signing for the CPU");
            });
        }
    }
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

/// Starts a background thread (a fresh one per task: background tasks take milliseconds to
/// seconds, so starting a thread costs little, and no task queues behind another).
fn start(f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tessera-bg".into())
        .spawn(move || {
            lower_this_thread();
            f();
        })
        .map(drop)
}

/// Runs `f` on a background thread and waits for its result. A panic in `f` is
/// [`Error::Panicked`] naming `task`.
pub async fn run<T: Send + 'static>(
    task: &'static str,
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let (reply, result) = oneshot::channel();
    start(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .unwrap_or(Err(Error::Panicked { task }));
        let _caller_gone = reply.send(r);
    })
    .map_err(|e| Error::Io {
        context: format!("starting a background thread for {task}"),
        source: e,
    })?;
    result.await.map_err(|_| Error::Panicked { task })?
}

/// Starts `f` on a background thread without waiting for it.
pub fn spawn(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = start(f) {
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
    }

    #[tokio::test]
    async fn a_panicking_task_is_an_error() {
        let r: Result<(), Error> = run("boom", || panic!("boom")).await;
        assert!(matches!(r, Err(Error::Panicked { task: "boom" })), "{r:?}");
        assert_eq!(run("after", || Ok(7)).await.unwrap(), 7);
    }
}
