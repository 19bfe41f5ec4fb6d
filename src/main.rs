//! The `strata` binary: load configuration, open the database, serve.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Many small allocations per statement from many threads: mimalloc spends
/// less time in them than the system allocator (measured under 8-client INSERTs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Where sealed history goes: s3://bucket/prefix (settings from the
        /// AWS_* environment variables) or file:///directory; default DATA/store.
        #[arg(long = "store", env = "STRATA_STORE")]
        store_url: Option<String>,
        /// Address to listen on.
        #[arg(long, env = "STRATA_LISTEN", default_value = "127.0.0.1:6543")]
        listen: String,
        /// Seal the in-memory tail into a Parquet segment past this many bytes.
        #[arg(long, env = "STRATA_SEAL_BYTES_MAX")]
        seal_bytes_max: Option<usize>,
        /// Seal the tail once its oldest rows are this old (milliseconds).
        #[arg(long, env = "STRATA_SEAL_AGE_MS_MAX")]
        seal_age_ms_max: Option<u64>,
        /// Start a new WAL file past this many bytes (sealed files are deleted).
        #[arg(long, env = "STRATA_WAL_FILE_BYTES_MAX")]
        wal_file_bytes_max: Option<u64>,
        /// Snapshot a table's state at a seal once this many changes (and at
        /// least its row count) came since its last snapshot.
        #[arg(long, env = "STRATA_SNAPSHOT_CHANGES_MIN")]
        snapshot_changes_min: Option<u64>,
        /// Scan tables of at least this many rows from the previous scan's
        /// rows plus the changes since, instead of from the key index.
        #[arg(long, env = "STRATA_SCAN_CACHE_ROWS_MIN")]
        scan_cache_rows_min: Option<usize>,
    },
}

/// Stack of each runtime thread: planning a view's query recurses deeply
/// through DataFusion, and tokio's 2 MiB default left little to spare (a
/// debug build overflowed it).
const THREAD_STACK_BYTES: usize = 8 << 20;

fn main() -> std::process::ExitCode {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
        .expect("the tokio runtime starts")
        .block_on(run())
}

async fn run() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let CliCommand::Serve {
        data_dir,
        store_url,
        listen,
        seal_bytes_max,
        seal_age_ms_max,
        wal_file_bytes_max,
        snapshot_changes_min,
        scan_cache_rows_min,
    } = cli.command;
    let mut config = Config::default().with_data_dir(data_dir).with_listen(listen);
    config.store_url = store_url;
    if let Some(bytes) = seal_bytes_max {
        config.seal_bytes_max = bytes;
    }
    if let Some(ms) = seal_age_ms_max {
        config.seal_age_ms_max = ms;
    }
    if let Some(bytes) = wal_file_bytes_max {
        config.wal_file_bytes_max = bytes;
    }
    if let Some(changes) = snapshot_changes_min {
        config.snapshot_changes_min = changes;
    }
    if let Some(rows) = scan_cache_rows_min {
        config.scan_cache_rows_min = rows;
    }
    match serve(config).await {
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
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
