//! Reloads the web configuration when web.yml or a certificate, key or CA file it names
//! changes (cert-manager and kubelet rotate them in place), with the profiles watcher's
//! approach: watch the directories, debounce, watch afresh after each reload.

use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;

use super::Web;
use crate::reload::watch::{Targets, follow, parent_dir};

/// Sets up the watches now (a change right after this returns is seen), then reloads after
/// each quiet burst of changes until `shutdown` completes. Without a web config file, does
/// nothing.
pub fn spawn(
    web: Web,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    if web.file().is_none() {
        return tokio::spawn(async {});
    }
    let watched = web.clone();
    follow(
        move || targets(&watched),
        move || {
            let _ = web.reload("file change");
            std::future::ready(())
        },
        shutdown,
    )
}

/// The directories of every file the current config was read from, and those names.
fn targets(web: &Web) -> Targets {
    let mut targets = Targets::default();
    let files = web.files().into_iter().chain(web.file().map(PathBuf::from));
    for file in files {
        targets.add(parent_dir(&file), file.file_name().map(OsString::from));
    }
    targets
}
