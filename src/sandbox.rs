//! Render workers: every template render runs in a child process whose memory and time are
//! capped, so no template text — a preview's, or a saved one that spins or grows a string
//! without end — can take the gateway's memory, keep a core busy after its answer, or hold
//! up a reload, a `check` or a shutdown.
//!
//! Tera has no way to interrupt a render or bound what it allocates, so the bound is the
//! process: a worker is this binary started as `alertrelay render-worker`, built from the
//! snapshot's [`Spec`] (no robot URLs or secrets). It caps its own data memory before each
//! job ([`memory_budget`]); the gateway kills it when a job passes [`TIME_LIMIT`] and starts
//! a fresh one for the next job. Webhooks and previews have pools of their own, so previews
//! can never take the capacity webhooks render with, and the preview worker runs at a lower
//! CPU priority.

mod pool;
mod spawner;
mod watchdog;
mod wire;
pub mod worker;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::alert::{PayloadError, Status};
use crate::compose::Composed;
use crate::preview::{Preview, PreviewError};
use crate::render::{Part, RenderError, Renderer, Spec};
use pool::Pool;
use wire::{Job, Reply};

/// How long one job (a webhook's message, a preview, one part of the self-test) may run
/// before its worker is killed.
pub const TIME_LIMIT: Duration = Duration::from_secs(2);

/// Data memory a job may add to its worker, beyond what the body needs.
pub const MEMORY_BASE: usize = 16 * 1024 * 1024;

/// Data memory a job may use per byte of its body (the payload parsed, and the template
/// context built from it).
pub const MEMORY_PER_BODY_BYTE: usize = 12;

/// Bodies from this size on are large: capped a second time once parsed (see `worker`), and
/// their worker is replaced after the job (see `pool`), since it may hold much of what the
/// job took.
pub(crate) const LARGE_BODY: usize = 1024 * 1024;

/// The memory bound of a job whose body is `body_len` bytes.
pub fn memory_budget(body_len: usize) -> usize {
    MEMORY_BASE.saturating_add(body_len.saturating_mul(MEMORY_PER_BODY_BYTE))
}

/// Webhook render workers at most: a render takes well under a millisecond, so a few
/// processes keep up with any robot's rate, and a big host does not start dozens.
pub const MAX_WEBHOOK_WORKERS: usize = 4;

/// Why a job has no answer from its worker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// The render ran past [`TIME_LIMIT`] and was stopped.
    #[error("did not finish within {}s; stopped", .0.as_secs_f64())]
    TimedOut(Duration),
    /// The template nests deeper than the worker's stack (macros or includes calling each
    /// other), and was stopped.
    #[error("nests too deep (stack overflow); stopped")]
    TooDeep,
    /// The render needed more memory than its bound and was stopped.
    #[error("needed more than {} MiB of memory; stopped", .0 / (1024 * 1024))]
    OutOfMemory(usize),
    /// The worker could not be started, or died for another reason.
    #[error("the render worker failed: {0}")]
    Failed(String),
}

/// A webhook's message, composed by a worker.
#[derive(Debug)]
pub struct Message {
    /// Alerts in the payload.
    pub alerts: usize,
    /// The notification's status.
    pub status: Status,
    /// What makes it the same notification as another (duplicate suppression).
    pub identity: crate::state::Identity,
    /// The message within the size cap.
    pub composed: Composed,
}

/// Why a webhook's message could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The body is not an Alertmanager payload.
    #[error(transparent)]
    BadPayload(#[from] PayloadError),
    /// Neither the profile's template nor the built-in one rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The worker gave no answer (time, memory, crash): the caller composes again with the
    /// built-in templates (`builtin`), in a worker too.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

/// Where worker processes are started from.
static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Starts workers from `program` (a built `alertrelay` binary) instead of the running one.
/// For tests and benches, whose own executable is not alertrelay; the first call wins.
pub fn use_program(program: impl Into<PathBuf>) {
    let _ = PROGRAM.set(program.into());
}

/// Names the binary to start workers from when the running one is not alertrelay itself: a
/// process run under valgrind sees valgrind's tool as `/proc/self/exe`.
pub const PROGRAM_ENV: &str = "ALERTRELAY_RENDER_WORKER";

fn program() -> PathBuf {
    PROGRAM
        .get_or_init(|| {
            if let Some(program) = std::env::var_os(PROGRAM_ENV) {
                return program.into();
            }
            // The running binary itself, even if a package upgrade replaced its file.
            let own = PathBuf::from("/proc/self/exe");
            if own.exists() {
                own
            } else {
                std::env::current_exe().unwrap_or_else(|_| "alertrelay".into())
            }
        })
        .clone()
}

/// The render workers of one snapshot. Dropped with it: its workers are killed.
pub struct Sandbox {
    webhooks: Arc<Pool>,
    previews: Arc<Pool>,
    /// Profiles whose template ran out of time, and until when their webhooks skip it: a
    /// template that spins on a storm's payloads would otherwise take 2 s of a worker for
    /// each of them, ahead of every other profile's webhooks.
    tripped: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// How long a profile whose template ran out of time is composed with the built-in
/// templates straight away.
pub const TRIP_FOR: Duration = Duration::from_secs(60);

impl Sandbox {
    /// Workers for `spec`, started when first needed: as many for webhooks as there are
    /// CPUs, one for previews.
    pub fn new(spec: &Spec) -> Result<Self, SandboxError> {
        let spec =
            Arc::new(serde_json::to_vec(spec).map_err(|e| SandboxError::Failed(e.to_string()))?);
        let cpus = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .min(MAX_WEBHOOK_WORKERS);
        Ok(Self {
            webhooks: Pool::new(program(), Arc::clone(&spec), cpus, false),
            previews: Pool::new(program(), spec, 1, true),
            tripped: std::sync::Mutex::default(),
        })
    }

    /// Parses a webhook body and composes the profile's message within `cap` bytes, with
    /// the profile's templates or (`builtin`) the built-in ones. `held` (a body's share of a
    /// budget, say) is kept until the job ends, even if the caller goes away first.
    pub async fn compose(
        &self,
        profile: &str,
        body: Bytes,
        now: DateTime<Utc>,
        cap: usize,
        builtin: bool,
        held: impl Send + 'static,
    ) -> Result<Message, ComposeError> {
        if !builtin && self.is_tripped(profile) {
            return Err(SandboxError::TimedOut(TIME_LIMIT).into());
        }
        let job = Job::Compose {
            profile: profile.to_owned(),
            now,
            cap,
            builtin,
        };
        let reply = self.webhooks.run(job, body, Box::new(held)).await;
        if !builtin && matches!(reply, Err(SandboxError::TimedOut(_))) {
            self.trip(profile);
        }
        match reply? {
            Reply::Composed {
                alerts,
                status,
                identity,
                composed,
            } => Ok(Message {
                alerts,
                status,
                identity,
                composed: *composed,
            }),
            Reply::BadPayload(error) => Err(error.into()),
            Reply::Render(error) => Err(error.into()),
            other => Err(unexpected(&other).into()),
        }
    }

    fn is_tripped(&self, profile: &str) -> bool {
        let tripped = self.tripped.lock().unwrap_or_else(|e| e.into_inner());
        tripped
            .get(profile)
            .is_some_and(|until| std::time::Instant::now() < *until)
    }

    fn trip(&self, profile: &str) {
        let until = std::time::Instant::now() + TRIP_FOR;
        let mut tripped = self.tripped.lock().unwrap_or_else(|e| e.into_inner());
        tripped.insert(profile.to_owned(), until);
    }

    /// Builds a preview from a preview request body (see [`crate::preview::Request`]);
    /// `held` (the preview's turn) is kept until the job ends.
    pub async fn preview(
        &self,
        profile: &str,
        body: Bytes,
        query: (Option<String>, Option<String>),
        now: DateTime<Utc>,
        held: impl Send + 'static,
    ) -> Result<Result<Preview, PreviewError>, SandboxError> {
        let (template, sample) = query;
        let job = Job::Preview {
            profile: profile.to_owned(),
            now,
            template,
            sample,
        };
        match self.previews.run(job, body, Box::new(held)).await? {
            Reply::Preview(answer) => Ok(answer.map(|preview| *preview)),
            other => Err(unexpected(&other)),
        }
    }

    /// Renders every profile's title and body against the built-in samples, each in a
    /// worker; a template that fails, or passes a bound, is reported with its name.
    pub async fn self_test(
        &self,
        renderer: &Renderer,
        now: DateTime<Utc>,
    ) -> Result<(), Vec<RenderError>> {
        let jobs = renderer.profile_names().flat_map(|profile| {
            [Part::Title, Part::Body].map(|part| async move {
                let job = Job::SelfTest {
                    profile: profile.to_owned(),
                    part,
                    now,
                };
                let failed = |error: &dyn std::fmt::Display| RenderError {
                    template: renderer
                        .template_of(profile, part)
                        .unwrap_or_default()
                        .to_owned(),
                    line: None,
                    message: format!("{error} (profile {profile:?}, sample payloads)"),
                };
                match self.webhooks.run(job, Bytes::new(), Box::new(())).await {
                    Ok(Reply::SelfTest(outcome)) => outcome,
                    Ok(other) => Err(failed(&unexpected(&other))),
                    Err(error) => Err(failed(&error)),
                }
            })
        });
        let errors: Vec<RenderError> = futures_util::future::join_all(jobs)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn unexpected(reply: &Reply) -> SandboxError {
    match reply {
        Reply::Panicked(message) => SandboxError::Failed(format!("the render panicked: {message}")),
        other => SandboxError::Failed(format!("unexpected answer {other:?}")),
    }
}
