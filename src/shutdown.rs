//! Graceful shutdown. On SIGTERM (what Kubernetes and Docker send) the replica first fails
//! `/readyz` while still serving, so load balancers stop routing to it
//! (`GATEWAY_SHUTDOWN_DELAY_MS`), then stops accepting connections and lets the operations
//! in flight finish, at most `GATEWAY_SHUTDOWN_TIMEOUT_MS`, then returns. Ctrl-C (SIGINT,
//! someone at a terminal) skips the readiness delay.

use std::future::Future;

use crate::{
    config::{ServerSettings, ShutdownSettings},
    gateway::Gateway,
    server::{self, Readiness},
};

/// What asked the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C): stop without the readiness delay.
    Interrupt,
    /// SIGTERM: an orchestrator is replacing the replica.
    Terminate,
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every request in flight finished.
    Complete,
    /// The grace period ran out with requests still in flight (they are abandoned).
    TimedOut {
        /// Operations still executing at that moment.
        in_flight: i64,
    },
}

/// Waits for SIGINT or SIGTERM.
pub async fn stop_signal() -> StopSignal {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
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
        () = interrupt => StopSignal::Interrupt,
        () = terminate => StopSignal::Terminate,
    }
}

/// Serves `gateway` on `listener` until `stop` resolves, then drains as described above.
pub async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    gateway: Gateway,
    server_settings: &ServerSettings,
    stop: impl Future<Output = StopSignal> + Send + 'static,
    settings: ShutdownSettings,
) -> std::io::Result<Drained> {
    let readiness = Readiness::default();
    let metrics = gateway.metrics().clone();
    let router = server::router(gateway, server_settings, readiness.clone());
    let (closing, closed) = tokio::sync::oneshot::channel::<()>();
    let close_listener = async move {
        let signal = stop.await;
        readiness.start_draining();
        if signal == StopSignal::Terminate && !settings.drain_delay.is_zero() {
            tracing::info!(delay = ?settings.drain_delay, "draining: readiness fails, still serving");
            tokio::time::sleep(settings.drain_delay).await;
        }
        tracing::info!(grace = ?settings.grace, "no longer accepting connections; finishing requests in flight");
        let _ = closing.send(());
    };
    let serving = server::serve(listener, router, close_listener);
    tokio::pin!(serving);
    let grace_over = async {
        // Never resolves if serving ended before the listener closed (the sender is gone).
        if closed.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(settings.grace).await;
    };
    tokio::select! {
        biased;
        served = &mut serving => served.map(|()| {
            tracing::info!("every request finished; stopped");
            Drained::Complete
        }),
        () = grace_over => {
            let in_flight = metrics.operations_in_flight();
            tracing::warn!(in_flight, "shutdown grace period over: abandoning the operations in flight");
            Ok(Drained::TimedOut { in_flight })
        }
    }
}
