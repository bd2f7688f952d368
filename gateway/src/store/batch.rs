//! Group processing: requests hand their jobs to one task, which takes
//! everything pending (up to a maximum) and runs it as one batch — one
//! round trip to the store instead of one per request — then answers each
//! request with its own result. Under load the batches grow by themselves
//! (whatever arrived while the last batch ran); a lone request is a batch
//! of one, so nothing waits for company.

use crate::metrics::BatchMetrics;
use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// A job, when it was handed in, and where its result goes.
type Job<J, R> = (J, std::time::Instant, oneshot::Sender<Result<R, String>>);

pub struct Batcher<J, R> {
    jobs: mpsc::Sender<Job<J, R>>,
    what: &'static str,
}

impl<J, R> Clone for Batcher<J, R> {
    fn clone(&self) -> Self {
        Batcher { jobs: self.jobs.clone(), what: self.what }
    }
}

impl<J: Send + 'static, R: Send + 'static> Batcher<J, R> {
    /// Starts the task (needs a Tokio runtime). `run` gets the jobs of one
    /// batch in order and returns one result per job, in the same order;
    /// an `Err` fails every job of the batch. `what` names the task in
    /// errors ("the audit writer").
    pub fn start<F, Fut>(what: &'static str, max_batch: usize, metrics: BatchMetrics, mut run: F) -> Batcher<J, R>
    where
        F: FnMut(Vec<J>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<R>, String>> + Send,
    {
        let (jobs, mut rx) = mpsc::channel::<Job<J, R>>(8192);
        tokio::spawn(async move {
            let mut pending: Vec<Job<J, R>> = Vec::with_capacity(max_batch);
            while rx.recv_many(&mut pending, max_batch).await > 0 {
                let started = std::time::Instant::now();
                let mut batch = Vec::with_capacity(pending.len());
                let mut answers = Vec::with_capacity(pending.len());
                for (job, handed_in, answer) in pending.drain(..) {
                    metrics.wait.observe(started.duration_since(handed_in).as_secs_f64());
                    batch.push(job);
                    answers.push(answer);
                }
                let n = batch.len();
                let ran = run(batch).await;
                metrics.observe(n, started.elapsed());
                match ran {
                    Ok(results) if results.len() == n => {
                        for (answer, result) in answers.into_iter().zip(results) {
                            let _ = answer.send(Ok(result));
                        }
                    }
                    Ok(results) => {
                        let msg = format!("{what} answered {} of {n} jobs", results.len());
                        for answer in answers {
                            let _ = answer.send(Err(msg.clone()));
                        }
                    }
                    Err(msg) => {
                        for answer in answers {
                            let _ = answer.send(Err(msg.clone()));
                        }
                    }
                }
            }
        });
        Batcher { jobs, what }
    }

    /// Runs `job` in the next batch and returns its result.
    pub async fn submit(&self, job: J) -> Result<R, String> {
        let stopped = || format!("{} has stopped", self.what);
        let (answer, wait) = oneshot::channel();
        self.jobs.send((job, std::time::Instant::now(), answer)).await.map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_job_gets_its_own_result_and_concurrent_jobs_share_a_batch() {
        let sizes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let b: Batcher<u32, u32> = Batcher::start("the doubler", 64, BatchMetrics::new(), move |jobs: Vec<u32>| {
            seen.lock().expect("lock").push(jobs.len());
            async move {
                // Long enough for the other submissions to queue up.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok(jobs.into_iter().map(|j| j * 2).collect())
            }
        });
        let all = futures_join(&b, 0..40).await;
        assert_eq!(all, (0..40).map(|j| Ok(j * 2)).collect::<Vec<_>>());
        let sizes = sizes.lock().expect("lock").clone();
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(sizes.len() < 40, "40 concurrent jobs ran one by one: {sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_or_short_batch_fails_every_job_in_it() {
        let b: Batcher<u32, u32> = Batcher::start("the failer", 64, BatchMetrics::new(), |jobs: Vec<u32>| async move {
            Err(format!("{} jobs refused", jobs.len()))
        });
        assert_eq!(b.submit(1).await, Err("1 jobs refused".into()));
        let short: Batcher<u32, u32> =
            Batcher::start("the loser", 64, BatchMetrics::new(), |_: Vec<u32>| async move { Ok(Vec::new()) });
        assert_eq!(short.submit(1).await, Err("the loser answered 0 of 1 jobs".into()));
    }

    async fn futures_join(b: &Batcher<u32, u32>, jobs: std::ops::Range<u32>) -> Vec<Result<u32, String>> {
        let handles: Vec<_> = jobs
            .map(|j| {
                let b = b.clone();
                tokio::spawn(async move { b.submit(j).await })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("task"));
        }
        out
    }
}
