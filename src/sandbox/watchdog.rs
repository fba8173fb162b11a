//! Kills a worker whose job passed its deadline. A thread of its own with the real clock,
//! not a tokio timer: the bound must hold whatever the async runtime is doing (and a paused
//! test clock must not fire it early). Killing the process ends its pipes, so the job's
//! reader wakes up and reports the time-out.
//!
//! Arming and disarming only touch a map: the thread looks at it every [`TICK`] and is
//! never woken by a job (a wake-up per job cost more than the job's own bookkeeping under
//! load), so a deadline is kept to within a tick.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A deadline being watched.
pub(super) struct Armed {
    key: Key,
}

impl Armed {
    /// Stops the watch; true when the deadline had passed and the worker was killed. Taken
    /// under the watchdog's lock, so a kill is never missed between the two.
    pub(super) fn disarm(self) -> bool {
        let watchdog = watchdog();
        let mut deadlines = watchdog.deadlines.lock().unwrap_or_else(|e| e.into_inner());
        deadlines.remove(&self.key).is_none()
    }
}

/// Kills process `pid` unless the returned guard is disarmed within `limit`.
pub(super) fn arm(pid: u32, limit: Duration) -> Armed {
    let watchdog = watchdog();
    let key = (
        Instant::now() + limit,
        watchdog.next.fetch_add(1, Ordering::Relaxed),
    );
    let mut deadlines = watchdog.deadlines.lock().unwrap_or_else(|e| e.into_inner());
    deadlines.insert(key, pid);
    Armed { key }
}

/// When, and a number that keeps equal instants apart.
type Key = (Instant, u64);

/// How often the watchdog looks for deadlines that passed.
const TICK: Duration = Duration::from_millis(50);

struct Watchdog {
    /// Deadlines in order.
    deadlines: Mutex<BTreeMap<Key, u32>>,
    next: std::sync::atomic::AtomicU64,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let watchdog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            deadlines: Mutex::new(BTreeMap::new()),
            next: std::sync::atomic::AtomicU64::new(0),
        }));
        std::thread::Builder::new()
            .name("render-watchdog".into())
            .spawn(move || watchdog.watch())
            .expect("spawn the render watchdog thread");
        watchdog
    })
}

impl Watchdog {
    fn watch(&self) {
        loop {
            std::thread::sleep(TICK);
            let now = Instant::now();
            let mut deadlines = self.deadlines.lock().unwrap_or_else(|e| e.into_inner());
            while let Some(entry) = deadlines.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let pid = entry.remove();
                // SAFETY: kill only sends a signal. The pid is a worker still owned by a
                // job (not yet disarmed), so it has not been reaped and cannot be reused.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
    }
}
