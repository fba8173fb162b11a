//! The `alertrelay` binary: parse flags, set up logging, load the config, serve.

use anyhow::Context;
use clap::Parser;

use alertrelay::cli::Cli;
use alertrelay::config::Config;
use alertrelay::runtime::Runtime;
use alertrelay::{server, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_level, cli.log_format);
    let addr = cli.listen_addr().map_err(anyhow::Error::msg)?;
    let config = Config::load(&cli.sources())?;
    let profiles: Vec<&String> = config.profiles.keys().collect();
    tracing::info!(?profiles, timezone = %config.timezone, "configuration loaded");
    let runtime = Runtime::build(config)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    let router = server::router(server::AppState::new(runtime));
    server::run(listener, router, shutdown_signal(), cli.shutdown_timeout).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
