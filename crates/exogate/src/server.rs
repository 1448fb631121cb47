//! Building the application from configuration, and serving it: the router (pages, API, MCP)
//! plus the background worker, both stopped by one cancellation token.

use std::sync::Arc;

use anyhow::Context as _;
use exogate_core::ports::Clock;
use exogate_exchange::{AppConfig, ClientConfig, Endpoints, M365Client};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::{App, SystemClock};
use crate::config::{AppCredential, Cloud, Config};
use crate::microsoft::ExchangeAdapter;
use crate::worker::{self, WorkerSettings};

/// The Microsoft endpoints the configuration asks for: the cloud's, with any overrides.
pub fn endpoints(config: &Config) -> anyhow::Result<Endpoints> {
    let cloud = match config.cloud {
        Cloud::Global => exogate_exchange::Cloud::Global,
        Cloud::UsGovHigh => exogate_exchange::Cloud::GccHigh,
        Cloud::UsGovDod => exogate_exchange::Cloud::Dod,
        Cloud::China => exogate_exchange::Cloud::China,
    };
    let mut endpoints = Endpoints::cloud(cloud);
    if let Some(url) = &config.login_url {
        endpoints.login = url.clone();
    }
    if let Some(url) = &config.graph_url {
        endpoints.graph = url.clone();
    }
    if let Some(url) = &config.exchange_url {
        endpoints.exchange = url.clone();
    }
    endpoints
        .validate()
        .context("invalid Microsoft endpoints")?;
    Ok(endpoints)
}

fn app_config(app: &crate::config::AppConfig) -> anyhow::Result<AppConfig> {
    Ok(match &app.credential {
        AppCredential::Secret(secret) => AppConfig {
            client_id: app.client_id,
            credential: exogate_exchange::AppCredential::Secret(secret.clone()),
        },
        AppCredential::Certificate {
            certificate_pem,
            private_key_pem,
        } => AppConfig::with_certificate(
            app.client_id,
            exogate_exchange::CertificateCredential::from_pem(certificate_pem, private_key_pem)
                .context("the app certificate or key cannot be used")?,
        ),
    })
}

/// The Microsoft client the configuration describes.
pub fn m365_client(config: &Config) -> anyhow::Result<M365Client> {
    let mut client_config =
        ClientConfig::new(endpoints(config)?, app_config(&config.exchange_app)?);
    client_config.connect_app = Some(app_config(&config.connect_app)?);
    client_config.limits.per_tenant_concurrency = config.tenant_concurrency;
    client_config.limits.global_concurrency = config.global_concurrency;
    client_config.limits.role_propagation_window =
        std::time::Duration::from_secs(config.propagation_window.whole_seconds().max(0) as u64);
    M365Client::new(client_config).context("cannot build the Microsoft client")
}

/// Opens (and migrates) the database and builds the application.
pub async fn build_app(config: &Config) -> anyhow::Result<Arc<App>> {
    build_app_with_clock(config, Arc::new(SystemClock)).await
}

/// As [`build_app`], with a given clock (tests drive time).
pub async fn build_app_with_clock(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<App>> {
    if config.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create data directory `{}`",
                config.data_dir.display()
            )
        })?;
    }
    let db = exogate_store::Db::connect_pool(&config.database_url, &config.database_pool)
        .await
        .with_context(|| {
            format!(
                "cannot open database `{}`",
                exogate_store::redact_url(&config.database_url)
            )
        })?;
    db.migrate().await.context("database migration failed")?;
    let m365 = m365_client(config)?;
    let limits = crate::limits::Limits::new(
        config.token_per_minute,
        config.company_per_minute,
        clock.clone(),
    );
    let settings = exogate_core::ops::Settings {
        lease_secs: config.worker_lease.as_secs() as i64,
        ..App::settings_from(config)
    };
    // (msft-signin)
    let microsoft_signin = config
        .signin
        .microsoft
        .as_ref()
        .map(|m| Arc::new(crate::signin::MicrosoftSignin::new(&m365, m)));
    Ok(Arc::new(App {
        store: Arc::new(db.clone()),
        db,
        ms: Arc::new(ExchangeAdapter::new(m365.clone())),
        m365,
        clock: clock.clone(),
        settings,
        public_url: config.public_url.clone(),
        secure_cookies: config.secure_cookies,
        edge: crate::edge::EdgePolicy::new(
            &config.public_url,
            &config.allowed_hosts,
            config.loopback_hosts,
        ),
        limits,
        sweep_lease: config.sweep_lease,
        worker_wake: Arc::new(Notify::new()),
        events: tokio::sync::broadcast::channel(256).0,
        login: Arc::new(crate::login::LoginGuard::new(config.login.clone())),
        oauth: config.oauth.clone(),
        local_accounts: config.signin.local_accounts,
        microsoft_signin,
        second_factor: config.signin.second_factor,
        // (notify)
        notify: Arc::new(config.notifications.clone()),
        notify_wake: Arc::new(Notify::new()),
        // (hardening)
        registrations: crate::registration::RegistrationLimiter::new(
            config.oauth.registrations_per_minute,
            clock.clone(),
        ),
        // (reviews)
        review_key: Default::default(),
    }))
}

/// Serves `app` on `listener` with the worker beside it, until `shutdown` is cancelled.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    worker_settings: Option<WorkerSettings>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve_with_grace(app, listener, worker_settings, shutdown, None).await
}

/// As [`serve`]; once `shutdown` fires, the listener closes at once (a load balancer's next
/// health check fails and new connections are refused), the worker claims nothing new, and what
/// is in flight (HTTP requests, an execution) gets `grace` to finish (None: as long as it
/// takes). After that the process may exit: an execution cut short keeps its lease until it
/// lapses, and another replica then takes the request over, reading Exchange before writing.
pub async fn serve_with_grace(
    app: Arc<App>,
    listener: TcpListener,
    worker_settings: Option<WorkerSettings>,
    shutdown: CancellationToken,
    grace: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let worker = worker_settings
        .map(|settings| tokio::spawn(worker::run(app.clone(), settings, shutdown.child_token())));
    // (notify) The delivery worker runs wherever the worker does.
    let delivery = worker
        .is_some()
        .then(|| tokio::spawn(crate::notify::run(app.clone(), shutdown.child_token())));
    let router = router(app);
    let stop = shutdown.clone();
    let http = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.cancelled().await });
    let drain = async {
        let served = http.await.context("HTTP server failed");
        shutdown.cancel();
        if let Some(worker) = worker {
            worker.await.context("worker task panicked")?;
        }
        if let Some(delivery) = delivery {
            delivery.await.context("delivery task panicked")?;
        }
        served
    };
    let Some(grace) = grace else {
        return drain.await;
    };
    tokio::pin!(drain);
    tokio::select! {
        done = &mut drain => return done,
        () = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(grace, drain).await {
        Ok(done) => done,
        Err(_) => {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "shutdown grace period over: exiting with work in flight (its lease will lapse)"
            );
            Ok(())
        }
    }
}

/// Resolves on SIGTERM (what orchestrators send) or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down: no new work; finishing what is in flight");
}

/// The whole HTTP surface: web pages and JSON API (`web`), and MCP (`mcp`), on one router,
/// behind the checks every route shares (`edge`): the `Host` first, then a browser's `Origin`
/// for changes.
pub fn router(app: Arc<App>) -> axum::Router {
    let edge = Arc::new(app.edge.clone());
    axum::Router::new()
        .merge(crate::mcp::routes(app.clone()))
        .merge(crate::web::routes(app))
        .layer(axum::middleware::from_fn_with_state(
            edge.clone(),
            crate::edge::check_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            edge,
            crate::edge::check_host,
        ))
}
