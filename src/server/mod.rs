//! The PostgreSQL wire front end: a listener, SCRAM-SHA-256 authentication against the
//! catalog's users, optional TLS, query cancel, and one handler task per connection.

mod auth;
mod compat;
mod connections;
pub(crate) mod encode;
mod handler;
pub mod limits;
pub mod metrics;
mod psql;
mod serve;
mod session;
mod wait;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use pgwire::api::PgWireServerHandlers;
use pgwire::api::auth::DefaultServerParameterProvider;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{
    ConnectionManager,
    auth::StartupHandler,
    cancel::CancelHandler,
    query::{ExtendedQueryHandler, SimpleQueryHandler},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::control::Control;
use crate::executor::Executor;
use crate::views::Views;

/// How the server is started.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The `admin` user's password on first start; generated and printed once when absent.
    pub admin_password: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Refuse clients that do not negotiate TLS (needs a certificate).
    pub tls_required: bool,
}

/// What every connection shares.
pub struct Shared {
    pub catalog: Arc<Catalog>,
    pub views: Arc<Views>,
    pub control: Arc<Control>,
}

struct Handlers {
    backend: Arc<handler::Backend>,
    startup: Arc<SASLAuthStartupHandler<DefaultServerParameterProvider>>,
    cancel: Arc<DefaultCancelHandler>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.backend.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.backend.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}

/// A started server: where it listens and how to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Stops the accept loop only; [`RunningServer::stop`] is the clean shutdown.
    pub shutdown: CancellationToken,
    pub done: tokio::task::JoinHandle<()>,
    executor: Arc<Executor>,
    connections: Arc<connections::Connections>,
    data_dir: PathBuf,
}

impl RunningServer {
    /// Client connections open now (handshakes in progress included).
    pub fn open_connections(&self) -> usize {
        self.connections.count()
    }

    /// Serves Prometheus metrics on `addr` (`--metrics`) until the server stops accepting;
    /// returns the address bound.
    pub async fn serve_metrics(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let sources = Arc::new(metrics::Sources {
            catalog: self.executor.catalog().clone(),
            connections: self.connections.clone(),
            data_dir: self.data_dir.clone(),
        });
        tokio::spawn(metrics::serve(listener, sources, self.shutdown.clone()));
        tracing::info!(addr = %bound, "metrics are served at /metrics");
        Ok(bound)
    }

    /// The clean shutdown of SIGTERM: no new connections; running jobs are suspended (data
    /// backups, which resume at the next start) or ended saying so (the others), waiting at
    /// most `grace`; then every connection is told `57P01` and closed. The catalog's every
    /// write is committed already, so nothing is lost when the process exits after this.
    pub async fn stop(self, grace: std::time::Duration) {
        self.shutdown.cancel();
        let unsettled = self.executor.shut_down(grace).await;
        if !unsettled.is_empty() {
            tracing::warn!(jobs = ?unsettled, "jobs still running at shutdown: the next start recovers them");
        }
        self.connections.terminate();
        if let Err(e) = self.done.await {
            tracing::warn!(error = %e, "the accept loop ended badly");
        }
        if let Err(e) = self.executor.catalog().close() {
            tracing::error!(error = %e, "cannot close the catalog");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Refused(String),
    #[error("cannot open the catalog: {0}")]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("cannot load the views: {0}")]
    Views(#[from] datafusion::error::DataFusionError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

/// Opens the catalog, creates the first admin if needed, and starts accepting connections.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    crate::storage::faults::init().map_err(StartError::Refused)?;
    let catalog = Catalog::open(&config.data_dir)?;
    auth::bootstrap_admin(&catalog, &config)?;
    let views = Views::open(catalog.clone()).await?;
    let executor =
        crate::executor::Executor::new(catalog.clone(), tokio::runtime::Handle::current());
    executor
        .recover()
        .map_err(|e| StartError::Refused(format!("cannot recover unfinished jobs: {e}")))?;
    executor
        .recover_archive()
        .map_err(|e| StartError::Refused(format!("cannot resume archive log rounds: {e}")))?;
    executor.spawn_log_copier();
    executor.start_restart_scheduler();
    executor.start_delete_policy_scheduler();
    executor.start_plan_scheduler();
    let control = Arc::new(Control::new(catalog.clone(), executor.clone()));
    let views_address = views.clone();
    let shared = Arc::new(Shared {
        catalog: catalog.clone(),
        views,
        control,
    });

    let tls = auth::tls_acceptor(&config)?;
    let manager = Arc::new(ConnectionManager::new());
    let mut scram = ScramAuth::new(Arc::new(auth::CatalogAuth::new(catalog.clone())));
    scram.set_iterations(crate::catalog::users::SCRAM_ITERATIONS);
    if let Some(cert) = &config.tls_cert {
        let pem =
            std::fs::read(cert).map_err(|e| StartError::Tls(format!("{}: {e}", cert.display())))?;
        scram
            .configure_certificate(&pem)
            .map_err(|e| StartError::Tls(e.to_string()))?;
    }
    let mut parameters = DefaultServerParameterProvider::default();
    parameters.server_version = "16.6".to_string();
    parameters.search_path = crate::views::VIEW_SCHEMA.to_string();
    parameters.is_superuser = false;
    let startup = SASLAuthStartupHandler::new(Arc::new(parameters))
        .with_scram(scram)
        .with_connection_manager(manager.clone());
    let handlers = Arc::new(Handlers {
        backend: Arc::new(handler::Backend::new(shared)),
        startup: Arc::new(startup),
        cancel: Arc::new(DefaultCancelHandler::new(manager)),
    });

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    executor.set_address(addr);
    views_address.set_address(addr);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let connections = Arc::new(connections::Connections::new(tls.is_some()));
    let tracked = connections.clone();
    let executor_events = executor.clone();
    let limits_catalog = catalog.clone();
    let config_tls_required = config.tls_required;
    let done = tokio::spawn(async move {
        let executor_events = executor_events.events();
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (socket, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let limits = limits::Limits::read(&limits_catalog);
            if tracked.count() >= limits.max_connections {
                tokio::spawn(serve::refuse(
                    socket,
                    "53300",
                    format!(
                        "sorry, too many clients already: max_connections is {}",
                        limits.max_connections
                    ),
                ));
                continue;
            }
            let (socket, id) = match tracked.track(socket) {
                Ok(tracked) => tracked,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot take a connection");
                    continue;
                }
            };
            let handlers = handlers.clone();
            let tls = tls.clone();
            let tracked = tracked.clone();
            let events = executor_events.subscribe();
            let tls_required = config_tls_required;
            tokio::spawn(async move {
                use futures::FutureExt;
                let serving = serve::serve(socket, tls, tls_required, limits, handlers, events);
                // A panic while serving (pgwire's decoder panics on some malformed messages,
                // before authentication too) ends this connection only, and it is forgotten, so
                // that malformed messages cannot pile up connections until max_connections.
                match std::panic::AssertUnwindSafe(serving).catch_unwind().await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "connection ended with an error")
                    }
                    Err(_) => tracing::error!(
                        %peer,
                        "a malformed message broke this connection (a panic in the protocol \
                         decoder); the connection is closed and the server goes on"
                    ),
                }
                tracked.forget(id);
            });
        }
    });
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "backstop is listening");
    Ok(RunningServer {
        addr,
        shutdown,
        done,
        executor,
        connections,
        data_dir: config.data_dir.clone(),
    })
}
