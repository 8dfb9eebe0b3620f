//! A fixed pool of worker threads for guest execution.
//!
//! Guests are CPU-bound and synchronous; running them on the I/O threads would
//! stall accepting and parsing connections. The pool is sized from the board
//! profile, and its queue is bounded so that overload becomes a fast 503
//! instead of unbounded memory.

use std::thread;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("all {workers} workers are busy and {queued} requests are already queued")]
    Busy { workers: usize, queued: usize },
    #[error("the worker pool has shut down")]
    Closed,
}

pub struct WorkerPool {
    jobs: async_channel::Sender<Job>,
    workers: usize,
}

impl WorkerPool {
    pub fn new(workers: usize, max_queued: usize) -> std::io::Result<Self> {
        let (jobs, queue) = async_channel::bounded::<Job>(max_queued.max(1));
        for n in 0..workers {
            let queue = queue.clone();
            thread::Builder::new()
                .name(format!("flint-worker-{n}"))
                .spawn(move || {
                    while let Ok(job) = queue.recv_blocking() {
                        job();
                    }
                })?;
        }
        Ok(Self { jobs, workers })
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs waiting for a worker now.
    pub fn queued(&self) -> usize {
        self.jobs.len()
    }

    /// Jobs that may wait at most.
    pub fn capacity(&self) -> usize {
        self.jobs.capacity().unwrap_or(0)
    }

    /// Runs `f` on a worker and waits for its result without blocking the executor.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (tx, rx) = async_channel::bounded(1);
        let job: Job = Box::new(move || {
            // A requester that has gone (connection dropped) needs no answer.
            if !tx.is_closed() {
                let _ = tx.send_blocking(f());
            }
        });
        self.jobs.try_send(job).map_err(|e| match e {
            async_channel::TrySendError::Full(_) => PoolError::Busy {
                workers: self.workers,
                queued: self.jobs.capacity().unwrap_or(0),
            },
            async_channel::TrySendError::Closed(_) => PoolError::Closed,
        })?;
        rx.recv().await.map_err(|_| PoolError::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn runs_jobs_in_parallel_up_to_the_pool_size() {
        let pool = WorkerPool::new(2, 4).expect("pool");
        // Both jobs must be running at once for either to pass the barrier.
        let barrier = Arc::new(Barrier::new(2));
        let results = smol::block_on(async {
            let (a, b) = (barrier.clone(), barrier.clone());
            smol::future::zip(
                pool.run(move || {
                    a.wait();
                    1
                }),
                pool.run(move || {
                    b.wait();
                    2
                }),
            )
            .await
        });
        assert_eq!(results, (Ok(1), Ok(2)));
    }

    #[test]
    fn a_full_queue_is_refused_not_grown() {
        let pool = WorkerPool::new(1, 1).expect("pool");
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        smol::block_on(async {
            let mut running = Box::pin(pool.run(move || {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
            }));
            assert!(smol::future::poll_once(&mut running).await.is_none());
            started_rx.recv().expect("the worker took the first job");
            let mut queued = Box::pin(pool.run(|| 2));
            assert!(smol::future::poll_once(&mut queued).await.is_none());
            assert_eq!(
                pool.run(|| 3).await,
                Err(PoolError::Busy {
                    workers: 1,
                    queued: 1
                })
            );
            release_tx.send(()).expect("release");
            assert_eq!(running.await, Ok(()));
            assert_eq!(queued.await, Ok(2));
        });
    }
}
