//! Kills a worker whose job passed its deadline. A thread of its own with the real clock,
//! not a tokio timer: the bound must hold whatever the async runtime is doing (and a paused
//! test clock must not fire it early). Killing the process ends its pipes, so the job's
//! reader wakes up and reports the time-out.
//!
//! Arming and disarming only touch a map: the thread looks at it every [`TICK`] and is
//! never woken by a job (a wake-up per job cost more than the job's own bookkeeping under
//! load), so a deadline is kept to within a tick.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A deadline being watched; dropping it stops the watch.
pub(super) struct Armed {
    key: Key,
    fired: Arc<AtomicBool>,
}

impl Armed {
    /// True when the deadline passed and the worker was killed.
    pub(super) fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        let watchdog = watchdog();
        let mut deadlines = watchdog.deadlines.lock().unwrap_or_else(|e| e.into_inner());
        deadlines.remove(&self.key);
    }
}

/// Kills process `pid` unless the returned guard is dropped within `limit`.
pub(super) fn arm(pid: u32, limit: Duration) -> Armed {
    let watchdog = watchdog();
    let fired = Arc::new(AtomicBool::new(false));
    let key = (
        Instant::now() + limit,
        watchdog.next.fetch_add(1, Ordering::Relaxed),
    );
    let mut deadlines = watchdog.deadlines.lock().unwrap_or_else(|e| e.into_inner());
    deadlines.insert(key, (pid, Arc::clone(&fired)));
    Armed { key, fired }
}

/// When, and a number that keeps equal instants apart.
type Key = (Instant, u64);

/// The process to kill, and the flag to raise when it is killed.
type Target = (u32, Arc<AtomicBool>);

/// How often the watchdog looks for deadlines that passed.
const TICK: Duration = Duration::from_millis(50);

struct Watchdog {
    /// Deadlines in order.
    deadlines: Mutex<BTreeMap<Key, Target>>,
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
                let (pid, fired) = entry.remove();
                fired.store(true, Ordering::Release);
                // SAFETY: kill only sends a signal. The pid is a worker still owned by a
                // job (its guard is alive), so it has not been reaped and cannot be reused.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
    }
}
