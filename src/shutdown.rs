//! The shutdown signal: a watch channel every task listens to, and the OS
//! signals (Ctrl-C, SIGTERM) that trigger it.

use tokio::sync::watch;

/// Receiver side of the shutdown signal; the value turns `true` once.
pub type Stop = watch::Receiver<bool>;

/// Completes once shutdown was signalled (or the sender is gone).
pub async fn stopped(stop: &mut Stop) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn os_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}
