//! A pool of render worker processes for one snapshot: started on demand, reused while they
//! answer, killed and replaced when a job passes its time or memory bound.
//!
//! Jobs are run by conductors: async tasks, at most one per worker, that speak to their
//! worker through its nonblocking pipes (see `process`) and run jobs one after another for as
//! long as any wait. While any job is queued or running, the pool's busy guard (see `busy`)
//! makes the runtime, a paused test clock included, see the workers' work as work.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::busy::{Busy, Working};
use super::process::Worker;
use super::wire::{Job, Reply};
use super::{SandboxError, TIME_LIMIT};

/// Workers of one kind (webhooks or previews).
pub(super) struct Pool {
    program: PathBuf,
    /// The snapshot's spec, encoded once; every new worker is sent it first.
    spec: Arc<Vec<u8>>,
    /// Lower the workers' CPU priority (previews yield to webhooks).
    nice: bool,
    /// How many workers may run at once.
    size: usize,
    /// Jobs waiting, workers waiting, and how many conductors run.
    state: Mutex<State>,
    /// Jobs in flight, for the runtime's sake.
    busy: Arc<Busy>,
}

#[derive(Default)]
struct State {
    /// Jobs not yet taken by a conductor, in arrival order.
    tasks: VecDeque<Task>,
    /// Workers waiting for a job.
    idle: Vec<Worker>,
    /// Conductors running: each drives one worker at a time.
    conductors: usize,
}

/// A job, its body, where its answer goes, and what the caller holds until the job is done.
struct Task {
    job: Job,
    body: Bytes,
    answer: oneshot::Sender<Result<Reply, SandboxError>>,
    /// Released when the job ends, not when its caller goes away: a preview's turn, a
    /// webhook body's share of the body budget.
    _held: Held,
    _working: Working,
}

/// Whatever a caller holds for its job (see [`Task`]).
pub(super) type Held = Box<dyn Send>;

impl Pool {
    pub(super) fn new(program: PathBuf, spec: Arc<Vec<u8>>, size: usize, nice: bool) -> Arc<Self> {
        Arc::new(Self {
            program,
            spec,
            nice,
            size: size.max(1),
            state: Mutex::new(State::default()),
            busy: Arc::default(),
        })
    }

    /// Runs a job on a worker, waiting for one when all are busy; a conductor is started
    /// when fewer run than there may be workers. A caller that goes away does not stop its
    /// job.
    pub(super) async fn run(
        self: &Arc<Self>,
        job: Job,
        body: Bytes,
        held: Held,
    ) -> Result<Reply, SandboxError> {
        let (answer, answered) = oneshot::channel();
        // A fallback to the built-in templates goes first: its webhook already waited once.
        let first = matches!(job, Job::Compose { builtin: true, .. });
        let task = Task {
            job,
            body,
            answer,
            _held: held,
            _working: self.busy.working(),
        };
        let start = {
            let mut state = self.lock();
            if first {
                state.tasks.push_front(task);
            } else {
                state.tasks.push_back(task);
            }
            let start = state.conductors < self.size;
            state.conductors += usize::from(start);
            start
        };
        if start {
            let conductor = Conductor {
                pool: Arc::clone(self),
                ended: false,
            };
            tokio::spawn(conductor.conduct());
        }
        answered
            .await
            .unwrap_or_else(|_| Err(SandboxError::Failed("the worker pool stopped".into())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One conductor of a pool; counted out when it ends, however it ends (a runtime shutting
/// down drops it mid-job: its worker is killed with it, and the pool can start another).
struct Conductor {
    pool: Arc<Pool>,
    /// It counted itself out, under the same lock that found the queue empty (a job queued
    /// after that starts a conductor of its own).
    ended: bool,
}

impl Conductor {
    /// Takes jobs until none waits, each on a live worker (a fresh one after a worker died).
    /// A job whose caller went away (a client hung up) is dropped unrun.
    async fn conduct(mut self) {
        let pool = Arc::clone(&self.pool);
        let mut worker: Option<Worker> = None;
        loop {
            let (task, idle) = {
                let mut state = pool.lock();
                state.tasks.retain(|task| !task.answer.is_closed());
                match state.tasks.pop_front() {
                    Some(task) => {
                        let idle = if worker.is_none() {
                            state.idle.pop()
                        } else {
                            None
                        };
                        (task, idle)
                    }
                    None => {
                        state.idle.extend(worker);
                        state.conductors -= 1;
                        self.ended = true;
                        return;
                    }
                }
            };
            // An idle worker that died meanwhile is replaced, not handed the job. The worker
            // of the job before is not asked (a `wait4` per job under load): it answered just
            // now, and if it was killed since, the job fails and is composed again.
            let kept = worker
                .take()
                .or_else(|| idle.and_then(|mut w| w.alive().then_some(w)));
            let running = match kept {
                Some(worker) => Ok(worker),
                None => {
                    Worker::start(pool.program.clone(), Arc::clone(&pool.spec), pool.nice).await
                }
            };
            let outcome = match running {
                Ok(running) => {
                    let (kept, outcome) = running.run(&task.job, &task.body, TIME_LIMIT).await;
                    worker = kept;
                    outcome
                }
                Err(error) => Err(error),
            };
            let _ = task.answer.send(outcome);
        }
    }
}

impl Drop for Conductor {
    fn drop(&mut self) {
        if !self.ended {
            self.pool.lock().conductors -= 1;
        }
    }
}
