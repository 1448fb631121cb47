//! `m365-emulator`: a local stand-in for the Microsoft endpoints exogate talks to.
//!
//! One axum app serves every host's paths: Entra (`/{tenant}/oauth2/v2.0/token`, admin consent,
//! OpenID configuration, JWKS), Graph (`/v1.0/organization`), the Exchange admin API
//! (`/adminapi/beta/{tenant}/InvokeCommand` and `$batch`), a small "Entra admin centre" page to
//! assign directory roles, and a control API under `/_emulator/` for tests.
//!
//! It follows `docs/MICROSOFT.md`, not exogate's client: it shares no types
//! with `exogate-exchange`, so a serde mistake cannot hide on both sides.

pub mod admin_centre;
pub mod clock;
pub mod control;
pub mod entra;
pub mod exchange;
pub mod graph;
pub mod scenario;
pub mod signin;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use clock::Clock;
pub use scenario::Scenario;
pub use state::Shared;

/// Largest request body any endpoint accepts; larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Builds the router over shared state. Tests normally use [`start`] instead.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(entra::routes())
        .merge(graph::routes())
        .merge(exchange::routes())
        .merge(admin_centre::routes())
        .merge(signin::routes())
        .nest("/_emulator", control::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// A running emulator. Dropping it does not stop it; call [`Emulator::shutdown`].
pub struct Emulator {
    /// `http://127.0.0.1:PORT` with no trailing slash. Use it as the login, Graph and Exchange base URL.
    pub base_url: String,
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Emulator {
    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    }
}

/// Starts the emulator with `scenario` on `127.0.0.1:0`.
pub async fn start(scenario: Scenario) -> anyhow::Result<Emulator> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    start_on(listener, scenario).await
}

/// Starts the emulator with `scenario` on an already bound listener.
pub async fn start_on(listener: TcpListener, scenario: Scenario) -> anyhow::Result<Emulator> {
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let shared = Arc::new(Shared::new(base_url.clone(), scenario)?);
    let app = router(shared.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await
    });
    Ok(Emulator {
        base_url,
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}
