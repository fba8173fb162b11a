//! The `alertrelay` binary: parse flags, set up logging, then check or serve.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{Signal, SignalKind, signal};

use alertrelay::cli::{Cli, Command};
use alertrelay::reload::{Reloader, watch};
use alertrelay::runtime::Runtime;
use alertrelay::web::{self, Web};
use alertrelay::{check, sandbox, server, telemetry};

/// jemalloc instead of glibc's malloc: a profile under load showed a fifth of the CPU in
/// glibc's allocator; jemalloc gave +23% deliveries/s at 11 MB idle RSS (mimalloc was as
/// fast but idled at 18 MB). See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(sandbox::worker::ARG) {
        // A render worker: no flags, no logging, no async runtime; see `sandbox`.
        return Ok(sandbox::worker::run(args)?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(serve());
    // Never wait on a render still running in a worker (or on the pool's busy guard, a
    // blocking task that lingers 20 ms): the workers die with this process.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    served
}

async fn serve() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.command == Some(Command::Check) {
        let web = cli.web_config_file.as_deref();
        let valid = check::check_all(&cli.sources(), web, &mut std::io::stdout()).await?;
        std::process::exit(if valid { 0 } else { 1 });
    }
    if let Some(Command::Migrate(args)) = &cli.command {
        return migrate(&args.options());
    }
    telemetry::init(cli.log_level, cli.log_format);
    let addr = cli.listen_addr().map_err(anyhow::Error::msg)?;
    let sources = cli.sources();
    let runtime = Runtime::load(&sources).await?;
    if let Some(error) = check::shared_state(&runtime.config.state).await? {
        tracing::warn!(%error, "state.redis does not answer yet; duplicates are suppressed in memory only until it does");
    }
    let profiles: Vec<&String> = runtime.config.profiles.keys().collect();
    tracing::info!(?profiles, timezone = %runtime.config.timezone, "configuration loaded");
    let state = server::AppState::new(runtime, sources)
        .with_lifecycle(cli.enable_lifecycle)
        .with_preview(cli.enable_preview);
    let web = Web::load(
        cli.web_config_file.as_deref(),
        cli.healthy_without_auth,
        state.metrics.clone(),
    )?;
    let state = state.with_web(web.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    watch::spawn(state.reloader.clone(), stopped(stop_rx.clone()));
    web::watch::spawn(web.clone(), stopped(stop_rx));
    // Signals are listened for before "listening" is logged: one sent right after it must
    // not find the default action (SIGHUP and SIGTERM end the process).
    let (hangup, terminate) = (
        listen(SignalKind::hangup()),
        listen(SignalKind::terminate()),
    );
    tokio::spawn(reload_on_sighup(
        state.reloader.clone(),
        web.clone(),
        hangup,
    ));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, tls = web.tls(), "listening");
    let dispatcher = state.dispatcher.clone();
    let shutdown = async move {
        shutdown_signal(terminate).await;
        let _ = stop_tx.send(true);
        // Waiting notifications get a truthful 503 now; requests in flight finish.
        dispatcher.shut_down();
    };
    server::run_web(
        listener,
        &web,
        server::router(state),
        shutdown,
        cli.shutdown_timeout,
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// `alertrelay migrate`: notes to stderr, the files written to stdout.
fn migrate(options: &alertrelay::migrate::Options) -> anyhow::Result<()> {
    let migration = alertrelay::migrate::plan(options)?;
    for note in &migration.notes {
        eprintln!("NOTE: {note}");
    }
    for file in alertrelay::migrate::write(&migration, options)? {
        println!("wrote {}", file.display());
    }
    println!(
        "next: alertrelay check --config.file {}",
        options.out.display()
    );
    Ok(())
}

async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Listens for a signal; `None` (logged) when that cannot be set up.
fn listen(kind: SignalKind) -> Option<Signal> {
    signal(kind)
        .inspect_err(|error| tracing::error!(%error, ?kind, "cannot listen for the signal"))
        .ok()
}

/// Reloads the profiles and the web config on every SIGHUP.
async fn reload_on_sighup(reloader: Arc<Reloader>, web: Web, hangup: Option<Signal>) {
    let Some(mut hangup) = hangup else {
        return;
    };
    while hangup.recv().await.is_some() {
        let _ = reloader.reload("SIGHUP").await;
        let _ = web.reload("SIGHUP");
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal(terminate: Option<Signal>) {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match terminate {
            Some(mut signal) => {
                signal.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
