//! Makes the async runtime count a worker's render as work. Jobs are spoken to workers
//! through nonblocking pipes on the runtime's own threads, so while a worker renders, the
//! runtime only waits on a pipe: to tokio's paused test clock (current-thread runtimes with
//! `start_paused`) that is an idle runtime, and it would jump the clock to the next timer in
//! the middle of a render, firing time-outs that never passed. A blocking task holds that
//! auto-advance off for as long as it runs, so one (the "guard") runs while any job of the
//! pool is queued or in a worker.
//!
//! It lingers [`LINGER`] of real time after the last job before it ends, so under load it is
//! started once per busy period rather than once per job (a blocking task per job was the
//! cost the async pipes remove), and jobs never wake it: it looks every [`LINGER`]. On a
//! multi-thread runtime (the server's) tokio has no auto-advance and the guard only sleeps,
//! a wake-up every [`LINGER`] while webhooks flow. It never delays a shutdown by more than
//! [`LINGER`] twice over: a job dropped with the runtime is over for the guard too.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long the guard stays after the last job, and how often it looks.
const LINGER: Duration = Duration::from_millis(20);

/// Jobs in flight for one pool, and its guard.
#[derive(Default)]
pub(super) struct Busy {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Jobs queued or running.
    jobs: usize,
    /// A job started since the guard last looked.
    recent: bool,
    /// A guard runs (or is about to).
    guarded: bool,
}

/// One job in flight; the guard may end once none is left. Dropped with the job.
pub(super) struct Working(Arc<Busy>);

impl Busy {
    /// Counts a job in, starting the guard if none runs: before the job can reach a worker,
    /// since tokio holds auto-advance off from the moment a blocking task is spawned.
    pub(super) fn working(self: &Arc<Self>) -> Working {
        let start = {
            let mut state = self.lock();
            state.jobs += 1;
            state.recent = true;
            !std::mem::replace(&mut state.guarded, true)
        };
        if start {
            let guard = Guard {
                busy: Arc::clone(self),
                ended: false,
            };
            tokio::task::spawn_blocking(move || guard.linger());
        }
        Working(Arc::clone(self))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.0.lock().jobs -= 1;
    }
}

/// The blocking task itself.
struct Guard {
    busy: Arc<Busy>,
    /// It ended by itself (its pool is no longer guarded).
    ended: bool,
}

impl Guard {
    /// Sleeps in steps of [`LINGER`] until a whole step passed with no job in flight. It
    /// gives up the pool's guard under the same lock a new job takes, so a job either finds
    /// it still running or starts another.
    fn linger(mut self) {
        loop {
            std::thread::sleep(LINGER);
            let mut state = self.busy.lock();
            if state.jobs == 0 && !state.recent {
                state.guarded = false;
                self.ended = true;
                return;
            }
            state.recent = false;
        }
    }
}

impl Drop for Guard {
    /// A guard that never ran (the runtime was shutting down) hands the role on.
    fn drop(&mut self) {
        if !self.ended {
            self.busy.lock().guarded = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real time passes while a job is in flight, the paused clock does not jump.
    #[tokio::test(start_paused = true)]
    async fn the_paused_clock_holds_still_while_a_job_is_in_flight() {
        let busy = Arc::new(Busy::default());
        let working = busy.working();
        let before = tokio::time::Instant::now();
        let timer = tokio::time::sleep(Duration::from_secs(60));
        tokio::pin!(timer);
        // A worker's reply, as the runtime sees it: an outside event after real time.
        let (reply, replied) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let _ = reply.send(());
        });
        tokio::select! {
            _ = &mut timer => panic!("the clock jumped while a job was in flight"),
            _ = replied => {}
        }
        assert!(before.elapsed() < Duration::from_secs(1));
        drop(working);
        // Once idle again, the clock moves on by itself.
        timer.await;
        assert!(before.elapsed() >= Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn the_guard_ends_once_no_job_is_left() {
        let busy = Arc::new(Busy::default());
        drop(busy.working());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while busy.lock().guarded {
            assert!(std::time::Instant::now() < deadline, "the guard stayed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(busy.lock().jobs, 0);
    }
}
