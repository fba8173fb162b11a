//! Starts worker processes from one thread that lives as long as the gateway. A worker asks
//! the kernel to kill it when its parent goes (`PR_SET_PDEATHSIG`), and for the kernel the
//! parent is the *thread* that forked it: a worker started from a blocking-pool thread would
//! be killed when tokio retires that idle thread, ten seconds later.

use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};

type Request = (Command, mpsc::SyncSender<std::io::Result<Child>>);

/// Spawns `command` from the spawner thread.
pub(super) fn spawn(command: Command) -> std::io::Result<Child> {
    let (reply, answer) = mpsc::sync_channel(1);
    let sent = spawner()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply));
    if sent.is_err() {
        return Err(std::io::Error::other("the spawner thread is gone"));
    }
    answer
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the spawner thread is gone")))
}

fn spawner() -> &'static Mutex<Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<Request>();
        let started = std::thread::Builder::new()
            .name("render-spawner".into())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            });
        if let Err(error) = started {
            tracing::error!(%error, "cannot start the render worker spawner thread");
        }
        Mutex::new(requests)
    })
}
