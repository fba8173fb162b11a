//! A pool of render worker processes for one snapshot: started on demand, reused while they
//! answer, killed and replaced when a job passes its time or memory bound.
//!
//! A conversation with a worker is plain blocking I/O on a blocking thread: the same frame
//! code as the worker's side, and the async runtime (a paused test clock included) sees a
//! blocking task at work rather than an idle wait.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::wire::{self, Job, Reply};
use super::{SandboxError, TIME_LIMIT, memory_budget, spawner, watchdog, worker};
use crate::render::RenderError;

/// How long a new worker may take to start and compile the templates.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A worker is replaced after this many jobs: its memory cap is set from what it held when it
/// started, and every job may leave a little more behind.
const RECYCLE_AFTER: usize = 100_000;

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
        })
    }

    /// Runs a job on a worker, waiting for one when all are busy. Jobs are taken by
    /// conductors: blocking tasks, at most one per worker, that run jobs one after another
    /// for as long as any wait (under load, one hand-off per job instead of a blocking task
    /// each) and end when none is left. A caller that goes away does not stop its job.
    pub(super) async fn run(
        self: &Arc<Self>,
        job: Job,
        body: Bytes,
        held: Held,
    ) -> Result<Reply, SandboxError> {
        let (answer, answered) = oneshot::channel();
        // A fallback to the built-in templates goes first: its webhook already waited once.
        let first = matches!(job, Job::Compose { builtin: true, .. });
        let start = {
            let mut state = self.lock();
            let task = Task {
                job,
                body,
                answer,
                _held: held,
            };
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
            let pool = Arc::clone(self);
            tokio::task::spawn_blocking(move || pool.conduct());
        }
        answered
            .await
            .unwrap_or_else(|_| Err(SandboxError::Failed("the worker pool stopped".into())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes jobs until none waits, each on a live worker (a fresh one after a worker died).
    /// A job whose caller went away (a client hung up) is dropped unrun.
    fn conduct(&self) {
        let mut worker: Option<Worker> = None;
        loop {
            let task = {
                let mut state = self.lock();
                state.tasks.retain(|task| !task.answer.is_closed());
                match state.tasks.pop_front() {
                    Some(task) => {
                        worker = worker.or_else(|| state.idle.pop());
                        task
                    }
                    None => {
                        state.conductors -= 1;
                        state.idle.extend(worker);
                        return;
                    }
                }
            };
            let (kept, outcome) = self.run_job(worker.take(), &task.job, &task.body);
            worker = kept;
            let _ = task.answer.send(outcome);
        }
    }

    /// Runs a job on `worker`, or a fresh one. A worker found gone before it took the job (it
    /// died since it last answered: killed from outside, idle or between two jobs) is
    /// replaced, once; the job never ran, so the fresh worker runs it for the first time.
    fn run_job(&self, mut worker: Option<Worker>, job: &Job, body: &[u8]) -> Ran {
        for _ in 0..2 {
            let running = match worker.take() {
                Some(running) => running,
                None => match Worker::start(&self.program, &self.spec, self.nice) {
                    Ok(running) => running,
                    Err(error) => return (None, Err(error)),
                },
            };
            if let Some(ran) = run_on(running, job, body) {
                return ran;
            }
        }
        let gone = "the render worker was gone before it took the job, twice";
        (None, Err(SandboxError::Failed(gone.into())))
    }
}

/// A job's answer (or why there is none), and its worker if it is still good.
type Ran = (Option<Worker>, Result<Reply, SandboxError>);

/// Runs one job on `worker` within [`TIME_LIMIT`]; gives the worker back if it is still good.
/// `None` when the worker was gone before it took the job (its pipe was closed: it died
/// since its last answer, killed from outside).
fn run_on(mut worker: Worker, job: &Job, body: &[u8]) -> Option<Ran> {
    let deadline = watchdog::arm(worker.child.id(), TIME_LIMIT);
    if worker.send_job(job, body).is_err() {
        let timed_out = deadline.disarm();
        worker.died();
        return timed_out.then_some((None, Err(SandboxError::TimedOut(TIME_LIMIT))));
    }
    let answer = wire::read_reply(&mut worker.stdout);
    let timed_out = deadline.disarm();
    worker.jobs += 1;
    Some(match answer {
        // A worker that took a large job may hold much of its memory still, and any worker
        // grows a little with every job: both are replaced rather than kept.
        Ok(reply) if !timed_out && worker.fresh_enough(body.len()) => (Some(worker), Ok(reply)),
        Ok(reply) if !timed_out => (None, Ok(reply)),
        _ if timed_out => {
            worker.died();
            (None, Err(SandboxError::TimedOut(TIME_LIMIT)))
        }
        _ => (None, Err(worker.died().reason(memory_budget(body.len())))),
    })
}

/// One worker process and its pipes. Killed and reaped when dropped.
struct Worker {
    child: Child,
    /// Jobs it answered.
    jobs: usize,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// Read only after the worker died, for the reason (Rust prints allocation failures
    /// and stack overflows there before aborting).
    stderr: Option<ChildStderr>,
    /// The next job's header, kept between jobs.
    out: Vec<u8>,
}

impl Worker {
    fn start(program: &Path, spec: &[u8], nice: bool) -> Result<Self, SandboxError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            SandboxError::Failed(format!("cannot start {}: {what}: {e}", program.display()))
        };
        let mut command = Command::new(program);
        command.arg(worker::ARG);
        if nice {
            command.arg(worker::NICE_ARG);
        }
        // Template text runs there: it gets no environment (the robots' tokens may be in it).
        command
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawner::spawn(command).map_err(|e| failed("spawn", &e))?;
        let (Some(stdin), Some(stdout), stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SandboxError::Failed("worker pipes missing".into()));
        };
        let mut worker = Self {
            child,
            jobs: 0,
            stdin: BufWriter::with_capacity(64 * 1024, stdin),
            stdout: BufReader::with_capacity(64 * 1024, stdout),
            stderr,
            out: Vec::with_capacity(256),
        };
        let deadline = watchdog::arm(worker.child.id(), START_LIMIT);
        let ready = worker
            .send(spec)
            .and_then(|()| worker.receive::<Result<(), Vec<RenderError>>>());
        let timed_out = deadline.disarm();
        match ready {
            _ if timed_out => Err(failed("handshake", &"timed out")),
            Ok(Ok(())) => Ok(worker),
            Ok(Err(errors)) => Err(SandboxError::Failed(format!(
                "the worker could not compile the templates: {}",
                errors.first().map(ToString::to_string).unwrap_or_default()
            ))),
            Err(e) => Err(failed("handshake", &e)),
        }
    }

    /// Whether to keep it after a job with a body of `body_len` bytes.
    fn fresh_enough(&self, body_len: usize) -> bool {
        body_len < super::LARGE_BODY && self.jobs < RECYCLE_AFTER
    }

    /// Sends a job and its body (one write while they fit the buffer).
    fn send_job(&mut self, job: &Job, body: &[u8]) -> std::io::Result<()> {
        self.out.clear();
        wire::put_job(&mut self.out, job, body.len())?;
        self.stdin.write_all(&self.out)?;
        self.stdin.write_all(body)?;
        self.stdin.flush()
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        wire::write_frame(&mut self.stdin, bytes)?;
        self.stdin.flush()
    }

    fn receive<T: serde::de::DeserializeOwned>(&mut self) -> std::io::Result<T> {
        let frame = wire::read_frame(&mut self.stdout)?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        serde_json::from_slice(&frame).map_err(std::io::Error::other)
    }

    /// The worker stopped talking: make sure it is gone, and keep what it said last.
    fn died(mut self) -> Said {
        let _ = self.child.kill();
        let mut said = Vec::new();
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.take(4096).read_to_end(&mut said);
        }
        let status = self.child.wait().ok();
        Said {
            stderr: String::from_utf8_lossy(&said).into_owned(),
            status: status.map(|s| s.to_string()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a dead worker left behind.
struct Said {
    stderr: String,
    status: Option<String>,
}

impl Said {
    /// Why the worker died, as the job's error.
    fn reason(&self, budget: usize) -> SandboxError {
        if self.stderr.contains("memory allocation of") {
            SandboxError::OutOfMemory(budget)
        } else if self.stderr.contains("overflowed its stack") {
            SandboxError::TooDeep
        } else {
            SandboxError::Failed(match &self.status {
                Some(status) => format!("the worker exited ({status})"),
                None => "the worker stopped answering".into(),
            })
        }
    }
}
