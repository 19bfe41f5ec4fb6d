//! The `strata` binary: load configuration, open the database, serve.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use strata::{Config, Database};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "A stream database: a durable event log queried with SQL over the PostgreSQL protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Subcommand)]
enum CliCommand {
    /// Open the database and serve the PostgreSQL wire protocol.
    Serve {
        /// Data directory (WAL, manifest, segments); created if missing.
        #[arg(long = "data", env = "STRATA_DATA", default_value = "strata-data")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "STRATA_LISTEN", default_value = "127.0.0.1:6543")]
        listen: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let CliCommand::Serve { data_dir, listen } = cli.command;
    match serve(
        Config::default()
            .with_data_dir(data_dir)
            .with_listen(listen),
    )
    .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("strata: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let db = Database::open(config.clone()).await?;
    let listener = TcpListener::bind(&config.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "ready for connections");
    strata::server::serve(db.clone(), listener, shutdown_signal()).await?;
    tracing::info!("shutting down");
    db.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return interrupt.await.unwrap_or(()),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
