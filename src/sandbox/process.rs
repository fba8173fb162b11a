//! One worker process and the conversation with it. Starting it (spawn, spec, compile) is
//! blocking work done once, on a blocking thread; jobs then go through its pipes set
//! nonblocking, on the runtime's own threads: the job written in one `write`, and the task
//! woken by the reactor when the answer is there (a blocking thread in between cost two
//! thread wake-ups per job; see BENCHMARKS.md, "The round trip (issue 14)").

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

use super::wire::{self, Job, Reply};
use super::{SandboxError, spawner, watchdog, worker};
use crate::render::RenderError;

/// How long a new worker may take to start and compile the templates.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A worker is replaced after this many jobs: its memory cap is set from what it held when it
/// started, and every job may leave a little more behind.
const RECYCLE_AFTER: usize = 100_000;

/// Bodies up to this size go out in the job's own write; larger ones are written from where
/// they are rather than copied.
const INLINE_BODY: usize = 64 * 1024;

/// A worker process, killed (and reaped on the spawner thread) when dropped.
struct Process(Option<Child>);

impl Process {
    fn child(&mut self) -> &mut Child {
        self.0
            .as_mut()
            .expect("a process is only taken when dropped")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            spawner::reap(child);
        }
    }
}

/// A worker started and ready, its pipes still blocking.
struct Started {
    process: Process,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: Option<ChildStderr>,
}

/// A worker ready for jobs.
pub(super) struct Worker {
    process: Process,
    pid: u32,
    /// Jobs it answered.
    jobs: usize,
    stdin: pipe::Sender,
    stdout: BufReader<pipe::Receiver>,
    /// Read only after the worker died, for the reason (Rust prints allocation failures
    /// and stack overflows there before aborting).
    stderr: Option<ChildStderr>,
    /// The next job's frames, kept between jobs.
    out: Vec<u8>,
}

impl Worker {
    /// Starts a worker for the encoded `spec`, on a blocking thread.
    pub(super) async fn start(
        program: PathBuf,
        spec: Arc<Vec<u8>>,
        nice: bool,
    ) -> Result<Self, SandboxError> {
        let started = tokio::task::spawn_blocking(move || Started::start(&program, &spec, nice))
            .await
            .map_err(|e| SandboxError::Failed(format!("cannot start a worker: {e}")))??;
        let Started {
            mut process,
            stdin,
            stdout,
            stderr,
        } = started;
        let pid = process.child().id();
        let pipes = pipe::Sender::from_owned_fd(OwnedFd::from(stdin)).and_then(|stdin| {
            pipe::Receiver::from_owned_fd(OwnedFd::from(stdout)).map(|stdout| (stdin, stdout))
        });
        let (stdin, stdout) =
            pipes.map_err(|e| SandboxError::Failed(format!("worker pipes: {e}")))?;
        Ok(Self {
            process,
            pid,
            jobs: 0,
            stdin,
            stdout: BufReader::with_capacity(64 * 1024, stdout),
            stderr,
            out: Vec::with_capacity(1024),
        })
    }

    /// Runs one job within `limit`; gives the worker back if it is still good to keep.
    pub(super) async fn run(
        mut self,
        job: &Job,
        body: &[u8],
        limit: Duration,
    ) -> (Option<Self>, Result<Reply, SandboxError>) {
        let deadline = watchdog::arm(self.pid, limit);
        let answer = self.call(job, body).await;
        let timed_out = deadline.disarm();
        self.jobs += 1;
        match answer {
            // A worker that took a large job may hold much of its memory still, and any
            // worker grows a little with every job: both are replaced rather than kept.
            Ok(reply) if !timed_out && self.fresh_enough(body.len()) => (Some(self), Ok(reply)),
            Ok(reply) if !timed_out => (None, Ok(reply)),
            _ if timed_out => {
                self.died().await;
                (None, Err(SandboxError::TimedOut(limit)))
            }
            _ => {
                let said = self.died().await;
                (None, Err(said.reason(super::memory_budget(body.len()))))
            }
        }
    }

    /// Still running (an idle worker can have been killed from outside).
    pub(super) fn alive(&mut self) -> bool {
        matches!(self.process.child().try_wait(), Ok(None))
    }

    /// Whether to keep it after a job with a body of `body_len` bytes.
    fn fresh_enough(&self, body_len: usize) -> bool {
        body_len < super::LARGE_BODY && self.jobs < RECYCLE_AFTER
    }

    /// Sends a job and its body (one write unless the body is large), and reads the answer.
    async fn call(&mut self, job: &Job, body: &[u8]) -> std::io::Result<Reply> {
        self.out.clear();
        wire::put_job(&mut self.out, job, body.len())?;
        let inline = body.len() <= INLINE_BODY;
        if inline {
            self.out.extend_from_slice(body);
        }
        self.stdin.write_all(&self.out).await?;
        if !inline {
            self.stdin.write_all(body).await?;
        }
        wire::read_reply(&mut self.stdout).await
    }

    /// The worker stopped talking: make sure it is gone, and keep what it said last. Its
    /// stderr is read to its end and the process waited for on a blocking thread: both take
    /// as long as the kernel takes to tear it down.
    async fn died(self) -> Said {
        let Self {
            mut process,
            stderr,
            ..
        } = self;
        let said = tokio::task::spawn_blocking(move || {
            let child = process.child();
            let _ = child.kill();
            let mut said = Vec::new();
            if let Some(stderr) = stderr {
                let _ = stderr.take(4096).read_to_end(&mut said);
            }
            let status = child.wait().ok();
            Said {
                stderr: String::from_utf8_lossy(&said).into_owned(),
                status: status.map(|s| s.to_string()),
            }
        });
        said.await.unwrap_or(Said {
            stderr: String::new(),
            status: None,
        })
    }
}

impl Started {
    /// Spawns a worker and hands it the spec: blocking, within [`START_LIMIT`].
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
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let mut process = Process(Some(child));
        let (Some(mut stdin), Some(mut stdout)) = (stdin, stdout) else {
            return Err(SandboxError::Failed("worker pipes missing".into()));
        };
        let deadline = watchdog::arm(process.child().id(), START_LIMIT);
        let ready = handshake(&mut stdin, &mut stdout, spec);
        let timed_out = deadline.disarm();
        match ready {
            _ if timed_out => Err(failed("handshake", &"timed out")),
            Ok(Ok(())) => Ok(Self {
                process,
                stdin,
                stdout,
                stderr,
            }),
            Ok(Err(errors)) => Err(SandboxError::Failed(format!(
                "the worker could not compile the templates: {}",
                errors.first().map(ToString::to_string).unwrap_or_default()
            ))),
            Err(e) => Err(failed("handshake", &e)),
        }
    }
}

/// Sends the spec and reads whether the worker compiled it.
fn handshake(
    stdin: &mut ChildStdin,
    stdout: &mut ChildStdout,
    spec: &[u8],
) -> std::io::Result<Result<(), Vec<RenderError>>> {
    let mut frame = Vec::with_capacity(spec.len() + 4);
    wire::write_frame(&mut frame, spec)?;
    stdin.write_all(&frame)?;
    let ready = wire::read_frame(stdout)?
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
    serde_json::from_slice(&ready).map_err(std::io::Error::other)
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
