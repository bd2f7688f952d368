//! Password hashing off the async workers, bounded (issue 18): argon2 costs
//! 19 MiB and tens of milliseconds a try, so `workers` threads of its own
//! do it and at most `queue` more wait; past that a guess is turned away
//! `busy` at once, costing neither memory nor a thread. The threads are the
//! pool's for its whole life: on Tokio's blocking pool every burst would
//! start fresh threads, and each thread's allocator arena keeps the 19 MiB
//! it last hashed with (a sign-in flood measured +630 MiB that way). An
//! unknown ID's wasted hash goes through the same pool, so it waits as a
//! real one does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

type Job = Box<dyn FnOnce() + Send>;

pub struct PasswordPool {
    jobs: mpsc::SyncSender<Job>,
    /// Running and waiting, against `workers + queue`.
    admitted: AtomicUsize,
    capacity: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("too many password checks are waiting")]
    Busy,
    #[error("the password check failed")]
    Failed,
}

/// A place in the pool (`PasswordPool::admit`).
pub struct Ticket<'a> {
    pool: &'a PasswordPool,
    _admitted: Admitted<'a>,
}

impl Ticket<'_> {
    /// Runs `check` on one of the pool's threads once one is free.
    pub async fn run<T: Send + 'static>(self, check: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(check());
        });
        // The channel holds `capacity` jobs, and at most that many tickets
        // exist: a send never waits.
        self.pool.jobs.try_send(job).map_err(|_| PoolError::Failed)?;
        // A job whose thread panicked drops its sender: `Failed`.
        rx.await.map_err(|_| PoolError::Failed)
    }
}

/// Gives the admission back however the check ends (dropped futures too).
struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordPool {
    /// Starts `workers` threads (they end when the pool is dropped).
    pub fn new(workers: usize, queue: usize) -> PasswordPool {
        let workers = workers.max(1);
        let capacity = workers + queue;
        let (jobs, rx) = mpsc::sync_channel::<Job>(capacity);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("password-{i}")).spawn(move || {
                loop {
                    // The lock is held only while taking a job, not while
                    // running it.
                    let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(job) = next else { return };
                    // A panicking check fails its own request, not the
                    // thread.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password thread");
            }
        }
        PasswordPool { jobs, admitted: AtomicUsize::new(0), capacity }
    }

    /// A place in the pool, or `Busy` at once when the queue is full —
    /// taken before a guess is admitted, so a guess turned away costs the
    /// account nothing and is not counted as tried.
    pub fn admit(&self) -> Result<Ticket<'_>, PoolError> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(PoolError::Busy);
        }
        Ok(Ticket { pool: self, _admitted: Admitted(&self.admitted) })
    }

    /// Runs `check` on a blocking thread once a worker is free, or refuses
    /// at once when the queue is full.
    pub async fn run<T: Send + 'static>(&self, check: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
        self.admit()?.run(check).await
    }

    /// Checks admitted now (running and waiting).
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_workers_run_at_most_queue_wait_and_the_rest_are_busy_at_once() {
        let pool = Arc::new(PasswordPool::new(2, 3));
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("task"));
        }
        let done = results.iter().filter(|r| r.is_ok()).count();
        let busy = results.iter().filter(|r| **r == Err(PoolError::Busy)).count();
        assert_eq!((done, busy), (5, 15), "two run, three wait, the rest are turned away");
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(pool.admitted(), 0, "every admission was given back");
    }
}
