//! PostgreSQL wire protocol server: accepts connections and serves each with
//! [`handler::Handlers`] until shutdown.

mod binary_values;
mod copy_text;
mod encode;
mod extended;
mod handler;
mod parameter_types;
mod parameters;
mod pg_format;
mod pipeline;
mod query_string;
mod sql_prepare;
pub mod sqlstate;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::database::Database;

pub use handler::Handlers;

/// Serves `db` on `listener` until `shutdown` resolves. Each connection gets
/// its own session; at most `connections_max` are served at once.
pub async fn serve(
    db: Database,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let handlers = Arc::new(Handlers::new(db.clone()));
    let slots = Arc::new(Semaphore::new(db.config().connections_max));
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "refusing connection: connections_max reached");
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let handlers = handlers.clone();
        tokio::spawn(async move {
            if let Err(error) = pgwire::tokio::process_socket(socket, None, handlers).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    Ok(())
}
