//! The render worker: the child side of [`crate::sandbox`]. It reads a [`Spec`], compiles it,
//! then answers jobs one at a time until its input ends. Before each job it caps its own
//! data memory at what it held when it was ready plus the job's budget, so a template that
//! builds a huge string dies here, in a process the gateway replaces, and nowhere else.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::os::fd::{AsFd, BorrowedFd};

use crate::alert::Notification;
use crate::compose::{compose, compose_with};
use crate::preview::{self, PreviewError, Request};
use crate::render::{Renderer, Spec};
use crate::state::Identity;

use super::wire::{Job, Reply, read_body, read_frame, read_len, write_frame, write_reply};

/// The first argument that makes the binary a render worker.
pub const ARG: &str = "render-worker";

/// The worker's second argument when it should yield the CPU to webhooks (previews).
pub const NICE_ARG: &str = "--nice";

/// Runs the worker on stdin/stdout; returns when the gateway closes its input. Only the
/// binary's `main` calls this, with the arguments after [`ARG`].
pub fn run(args: impl Iterator<Item = String>) -> io::Result<()> {
    stay_below_the_gateway();
    // A panic is answered as `Reply::Panicked`; printing it too could fill the stderr pipe
    // nobody reads while the worker lives, and block it.
    std::panic::set_hook(Box::new(|_| {}));
    if args.into_iter().any(|arg| arg == NICE_ARG) {
        // SAFETY: setpriority only changes this process's scheduling priority.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
        }
    }
    // The pipes as plain files: stdout's own line buffering would write an answer in two
    // parts (up to its last newline, then the rest), which wakes the gateway twice.
    let mut input = BufReader::with_capacity(64 * 1024, pipe(io::stdin().as_fd())?);
    let mut output = BufWriter::with_capacity(64 * 1024, pipe(io::stdout().as_fd())?);
    let Some(spec) = read_frame(&mut input)? else {
        return Ok(());
    };
    let spec: Spec = serde_json::from_slice(&spec).map_err(io::Error::other)?;
    let renderer = Renderer::from_spec(&spec);
    let ready = renderer.as_ref().map(|_| ()).map_err(Clone::clone);
    send(&mut output, &ready)?;
    let Ok(renderer) = renderer else {
        return Ok(());
    };
    let mut memory = Memory::new();
    while let Some(job) = read_frame(&mut input)? {
        let job: Job = serde_json::from_slice(&job).map_err(io::Error::other)?;
        let len =
            read_len(&mut input)?.ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        // The body is read within the job's cap, which always leaves room for it.
        memory.limit(len);
        let body = read_body(&mut input, len)?;
        memory.read(len);
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle(&renderer, job, &body, &mut memory)
        }))
        .unwrap_or_else(|panic| Reply::Panicked(panic_message(&*panic)));
        drop(body);
        write_reply(&mut output, &reply)?;
        output.flush()?;
    }
    Ok(())
}

/// A file of its own for one of the standard streams' pipes.
fn pipe(fd: BorrowedFd<'_>) -> io::Result<File> {
    Ok(File::from(fd.try_clone_to_owned()?))
}

fn send(output: &mut impl Write, value: &impl serde::Serialize) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_frame(output, &bytes)?;
    output.flush()
}

fn handle(renderer: &Renderer, job: Job, body: &[u8], memory: &mut Memory) -> Reply {
    match job {
        Job::Compose {
            profile,
            now,
            cap,
            builtin,
        } => match Notification::from_json(body) {
            Ok(notification) => {
                memory.parsed();
                match compose_as(renderer, &profile, &notification, now, cap, builtin) {
                    Ok(composed) => Reply::Composed {
                        alerts: notification.alerts.len(),
                        status: notification.status,
                        identity: Identity::of(&profile, &notification),
                        composed: Box::new(composed),
                    },
                    Err(error) => Reply::Render(error),
                }
            }
            Err(error) => Reply::BadPayload(error),
        },
        Job::Preview {
            profile,
            now,
            template,
            sample,
        } => {
            let answer = Request::from_body(body).and_then(|mut request| {
                memory.parsed();
                request.template = request.template.or(template);
                request.sample = request.sample.or(sample);
                preview::preview(renderer, &profile, request, now)
            });
            Reply::Preview(answer.map(Box::new).map_err(|e: PreviewError| e))
        }
        Job::SelfTest { profile, part, now } => {
            Reply::SelfTest(renderer.self_test(&profile, part, now))
        }
    }
}

/// Composes with the profile's templates, or with the built-in ones.
fn compose_as(
    renderer: &Renderer,
    profile: &str,
    notification: &Notification,
    now: chrono::DateTime<chrono::Utc>,
    cap: usize,
    builtin: bool,
) -> Result<crate::compose::Composed, crate::render::RenderError> {
    if !builtin {
        return compose(renderer, profile, notification, now, cap);
    }
    let look = renderer
        .look(profile)
        .ok_or_else(|| crate::render::RenderError::unknown_profile(profile))?;
    compose_with(look, notification, cap, |subset| {
        renderer.render_builtin(profile, subset, now)
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

/// The cap on this process's data memory (heap and anonymous mappings) while it works: what
/// it held when it was ready, plus the job's budget ([`super::memory_budget`]). An allocation
/// past the cap fails and the worker aborts: the gateway sees it die and reports the job as
/// over its memory bound. The baseline is measured once, so no job can raise it for the next;
/// the gateway replaces a worker after a large job, and after many (see `pool`). The cap is
/// set again only when it changes.
///
/// A large body gets a second, tighter cap once it is parsed: what the parse really took,
/// times [`CONTEXT_PER_PARSED`] for the template contexts built from it, plus
/// [`super::MEMORY_BASE`] for the template. Padding (whitespace, fields nobody reads) parses
/// to nothing, so it buys a template no room.
struct Memory {
    /// What the process held when it was ready.
    baseline: usize,
    /// The cap in force, to skip setting it again.
    cap: Option<usize>,
    /// For a large body: what the process held before it was parsed.
    before_parse: Option<usize>,
}

/// Room for the template contexts of a parsed payload, per byte the parse took.
const CONTEXT_PER_PARSED: usize = 4;

impl Memory {
    fn new() -> Self {
        Self {
            baseline: data_bytes(),
            cap: None,
            before_parse: None,
        }
    }

    /// The cap for a job whose body is `body_len` bytes, set before the body is read.
    fn limit(&mut self, body_len: usize) {
        self.set(self.baseline.saturating_add(super::memory_budget(body_len)));
    }

    /// The body is read: for a large one, what the process holds before parsing it.
    fn read(&mut self, body_len: usize) {
        self.before_parse = (body_len >= super::LARGE_BODY).then(data_bytes);
    }

    /// The body is parsed: a large one's cap is tightened to what its payload needs.
    fn parsed(&mut self) {
        let Some(before) = self.before_parse.take() else {
            return;
        };
        let now = data_bytes();
        let took = now.saturating_sub(before);
        let cap = now
            .saturating_add(took.saturating_mul(CONTEXT_PER_PARSED))
            .saturating_add(super::MEMORY_BASE);
        if self.cap.is_some_and(|current| cap < current) {
            self.set(cap);
        }
    }

    fn set(&mut self, cap: usize) {
        if self.cap != Some(cap) {
            set_data_limit(cap);
            self.cap = Some(cap);
        }
    }
}

/// Sets the soft `RLIMIT_DATA` to `cap` bytes (at most the hard limit).
fn set_data_limit(cap: usize) {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_DATA, &mut limit) != 0 {
            return;
        }
        limit.rlim_cur = (cap as libc::rlim_t).min(limit.rlim_max);
        libc::setrlimit(libc::RLIMIT_DATA, &limit);
    }
}

/// The data memory this process holds now (`VmData`), in bytes.
fn data_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmData:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// A worker must not outlive the gateway: if the gateway is killed, so is the worker, even
/// in the middle of a render that never ends. And if the host (or the container's memory
/// limit) runs short, the kernel's OOM killer takes a worker first, never the gateway.
fn stay_below_the_gateway() {
    // Raising one's own score needs no privilege; a failure only loses the preference.
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and changes nothing else.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}
