//! Starts worker processes from one thread that lives as long as the gateway, and reaps them
//! there too. A worker asks the kernel to kill it when its parent goes (`PR_SET_PDEATHSIG`),
//! and for the kernel the parent is the *thread* that forked it: a worker started from a
//! blocking-pool thread would be killed when tokio retires that idle thread, ten seconds
//! later. Reaping a killed worker waits for the kernel to tear it down (a millisecond or
//! more for one that held a large job's memory): on this thread that wait never holds up a
//! runtime thread, which now speaks to workers itself.

use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};

enum Request {
    Spawn(Command, mpsc::SyncSender<std::io::Result<Child>>),
    /// A worker already sent SIGKILL, to be waited for.
    Reap(Child),
}

/// Spawns `command` from the spawner thread.
pub(super) fn spawn(command: Command) -> std::io::Result<Child> {
    let (reply, answer) = mpsc::sync_channel(1);
    if requests().send(Request::Spawn(command, reply)).is_err() {
        return Err(std::io::Error::other("the spawner thread is gone"));
    }
    answer
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the spawner thread is gone")))
}

/// Kills `child` now and waits for it on the spawner thread (here, if that thread is gone).
pub(super) fn reap(mut child: Child) {
    let _ = child.kill();
    let unsent = requests().send(Request::Reap(child));
    if let Err(mpsc::SendError(Request::Reap(mut child))) = unsent {
        let _ = child.wait();
    }
}

fn requests() -> std::sync::MutexGuard<'static, Sender<Request>> {
    spawner().lock().unwrap_or_else(|e| e.into_inner())
}

fn spawner() -> &'static Mutex<Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<Request>();
        let started = std::thread::Builder::new()
            .name("render-spawner".into())
            .spawn(move || {
                for request in incoming {
                    match request {
                        Request::Spawn(mut command, reply) => {
                            let _ = reply.send(command.spawn());
                        }
                        Request::Reap(mut child) => {
                            let _ = child.wait();
                        }
                    }
                }
            });
        if let Err(error) = started {
            tracing::error!(%error, "cannot start the render worker spawner thread");
        }
        Mutex::new(requests)
    })
}
