//! Watches `profiles.yaml`, the templates directory and secret files, and reloads after each
//! burst of changes to them.
//!
//! It watches the *directories*, not the files: editors that save by writing a temporary file
//! and renaming it over the original, files deleted and recreated, and Kubernetes ConfigMap
//! updates (which swap the directory's `..data` symlink) all replace the file the watch would
//! have been attached to. After every reload the watches are set up afresh, so a directory
//! that was itself replaced, or a templates directory that moved in the config, is followed.
//! Only the files that matter count: other files in those directories (a log file beside
//! `profiles.yaml`) neither start a reload nor hold one off.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Reloader;

/// How long the files must stay quiet before a reload: editors and kubelet touch several
/// files for one save.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The longest a reload waits for the files to go quiet: a file that never stops changing
/// (something rewriting a template in a loop) must not hold reloads off for ever.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(2);

/// What to watch: directories, and which names in them matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Targets {
    /// (directory, the names in it that matter; empty = every name).
    dirs: Vec<(PathBuf, BTreeSet<OsString>)>,
}

impl Targets {
    fn of(reloader: &Reloader) -> Self {
        let config_file = &reloader.sources().file;
        let config_dir = parent_dir(config_file);
        let runtime = reloader.current();
        let templates_dir = runtime.config.templates_dir.clone();
        let mut config_names = BTreeSet::new();
        config_names.extend(config_file.file_name().map(OsString::from));
        // The templates directory appearing or being replaced is a change too.
        let templates_name = templates_dir
            .as_deref()
            .unwrap_or(Path::new("templates"))
            .file_name()
            .map(OsString::from);
        config_names.extend(templates_name);
        let mut targets = Self {
            dirs: vec![(config_dir, config_names)],
        };
        if let Some(dir) = templates_dir {
            targets.add(dir, None);
        }
        for file in runtime
            .config
            .profiles
            .values()
            .filter_map(|p| p.secret_file.as_ref())
        {
            targets.add(parent_dir(file), file.file_name().map(OsString::from));
        }
        targets
    }

    /// Adds `name` in `dir` (`None`: every name in it) to what matters.
    pub(crate) fn add(&mut self, dir: PathBuf, name: Option<OsString>) {
        let Some(index) = self.dirs.iter().position(|(watched, _)| *watched == dir) else {
            self.dirs.push((dir, name.into_iter().collect()));
            return;
        };
        let names = &mut self.dirs[index].1;
        match name {
            // An empty set already means every name.
            Some(name) if !names.is_empty() => {
                names.insert(name);
            }
            Some(_) => {}
            None => names.clear(),
        }
    }

    /// Whether a changed path is one that matters.
    pub(crate) fn matters(&self, path: &Path) -> bool {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        // Kubernetes' atomic writer: `..data`, `..data_tmp`, `..2026_11_25_...`.
        let kubernetes = name.to_string_lossy().starts_with("..");
        self.dirs.iter().any(|(watched, names)| {
            same_dir(watched, dir) && (names.is_empty() || kubernetes || names.contains(name))
        })
    }
}

pub(crate) fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

fn relevant_kind(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Sets up the watches now, then reloads after each quiet burst of relevant changes until
/// `shutdown` completes. The watches are in place when this returns, so a change made right
/// after is seen.
pub fn spawn(
    reloader: Arc<Reloader>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let watched = reloader.clone();
    follow(
        move || Targets::of(&watched),
        move || {
            let reloader = reloader.clone();
            async move {
                let _ = reloader.reload("file change").await;
            }
        },
        shutdown,
    )
}

/// Watches the files `targets` names; after each quiet burst of changes to them runs
/// `reload`, then watches afresh what `targets` names now (a reload may name other files),
/// until `shutdown` completes. The watches are in place when this returns. The profiles'
/// watcher and the web config's are this one.
pub(crate) fn follow<R>(
    targets: impl Fn() -> Targets + Send + 'static,
    mut reload: impl FnMut() -> R + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    R: std::future::Future<Output = ()> + Send,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<PathBuf>>();
    let mut watching = targets();
    let mut watcher = start(&watching, tx.clone());
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        loop {
            let paths = tokio::select! {
                () = &mut shutdown => return,
                paths = rx.recv() => match paths { Some(p) => p, None => return },
            };
            if !paths.iter().any(|p| watching.matters(p)) {
                continue;
            }
            settle(&watching, &mut rx).await;
            reload().await;
            watching = targets();
            // The new watches exist before the old ones go, so no change falls between them.
            let _old = std::mem::replace(&mut watcher, start(&watching, tx.clone()));
        }
    })
}

/// Debounce: returns once the files that matter have not changed for [`DEBOUNCE`], or
/// [`MAX_DEBOUNCE`] after it was called. Changes to other files are taken off the channel
/// without counting.
async fn settle(targets: &Targets, rx: &mut mpsc::UnboundedReceiver<Vec<PathBuf>>) {
    let give_up = Instant::now() + MAX_DEBOUNCE;
    let mut quiet = Instant::now() + DEBOUNCE;
    loop {
        match tokio::time::timeout_at(quiet.min(give_up), rx.recv()).await {
            Ok(Some(paths)) if paths.iter().any(|p| targets.matters(p)) => {
                quiet = Instant::now() + DEBOUNCE;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

/// Sets up the watches; a directory that cannot be watched (it does not exist yet) is logged
/// and skipped: its creation shows up in its parent's watch.
fn start(targets: &Targets, tx: mpsc::UnboundedSender<Vec<PathBuf>>) -> Option<RecommendedWatcher> {
    let handler = move |event: notify::Result<Event>| match event {
        Ok(event) if relevant_kind(&event.kind) => {
            let _ = tx.send(event.paths);
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "file watch error"),
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::error!(%error, "cannot watch files; reload with SIGHUP or /-/reload");
            return None;
        }
    };
    for (dir, _) in &targets.dirs {
        match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => tracing::debug!(dir = %dir.display(), "watching"),
            Err(error) => tracing::warn!(dir = %dir.display(), %error, "cannot watch directory"),
        }
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets {
            dirs: vec![
                (
                    PathBuf::from("/etc/alertrelay"),
                    ["profiles.yaml", "templates"].map(OsString::from).into(),
                ),
                (PathBuf::from("/etc/alertrelay/templates"), BTreeSet::new()),
            ],
        }
    }

    #[test]
    fn the_config_file_templates_and_kubernetes_swaps_matter() {
        let t = targets();
        assert!(t.matters(Path::new("/etc/alertrelay/profiles.yaml")));
        assert!(t.matters(Path::new("/etc/alertrelay/..data")));
        assert!(t.matters(Path::new("/etc/alertrelay/templates")));
        assert!(t.matters(Path::new("/etc/alertrelay/templates/ops.md.tera")));
        assert!(t.matters(Path::new("/etc/alertrelay/templates/.ops.md.tera.swp")));
    }

    /// Sends `path` every 20 ms (virtual time) for `until`. The caller keeps its own sender,
    /// as the watch loop does, so the channel stays open.
    fn trickle(
        tx: mpsc::UnboundedSender<Vec<PathBuf>>,
        path: &str,
        until: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let path = PathBuf::from(path);
        tokio::spawn(async move {
            let end = Instant::now() + until;
            while Instant::now() < end {
                let _ = tx.send(vec![path.clone()]);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn writes_to_another_file_beside_the_config_do_not_hold_a_reload_off() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _log = trickle(
            tx.clone(),
            "/etc/alertrelay/alertrelay.log",
            Duration::from_secs(60),
        );
        let started = Instant::now();

        settle(&targets(), &mut rx).await;

        assert!(started.elapsed() < DEBOUNCE * 2, "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_that_matters_and_never_stops_changing_is_waited_on_only_so_long() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let template = "/etc/alertrelay/templates/ops.md.tera";
        let _writer = trickle(tx.clone(), template, Duration::from_secs(60));
        let started = Instant::now();

        settle(&targets(), &mut rx).await;

        assert_eq!(started.elapsed(), MAX_DEBOUNCE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_changes_that_matter_is_waited_out() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _save = trickle(
            tx.clone(),
            "/etc/alertrelay/profiles.yaml",
            Duration::from_millis(200),
        );
        let started = Instant::now();

        settle(&targets(), &mut rx).await;

        assert!(
            started.elapsed() >= Duration::from_millis(200) + DEBOUNCE / 2,
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn secret_files_matter_wherever_they_are() {
        let mut t = targets();
        t.add(PathBuf::from("/run/secrets"), Some("ops".into()));
        t.add(PathBuf::from("/etc/alertrelay/templates"), Some("x".into()));

        assert!(t.matters(Path::new("/run/secrets/ops")));
        assert!(t.matters(Path::new("/run/secrets/..data")));
        assert!(!t.matters(Path::new("/run/secrets/other")));
        assert!(t.matters(Path::new("/etc/alertrelay/templates/any.tera")));
    }

    #[test]
    fn other_files_beside_the_config_do_not() {
        let t = targets();
        assert!(!t.matters(Path::new("/etc/alertrelay/README")));
        assert!(!t.matters(Path::new("/etc/alertrelay/.profiles.yaml.swp")));
        assert!(!t.matters(Path::new("/var/log/x")));
    }
}
