//! Steward: account and user management behind a SaaS front end.
//!
//! A request flows one way: route → handler → policy → repository → database, and back as
//! a view. [`Application`] builds the server so that `main` and the tests share one
//! constructor.

pub mod allocator;
pub mod api;
pub mod auth;
pub mod client_addr;
pub mod clock;
pub mod config;
pub mod cors;
pub mod db;
pub mod domain;
pub mod error;
pub mod housekeeping;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod logging;
pub mod metrics;
pub mod net_guard;
pub mod notify;
pub mod openapi;
pub mod rate_limit;
pub mod request_audit;
pub mod request_id;
pub mod routing;
pub mod security_headers;
pub mod service;
pub mod state;
pub mod worker_cpus;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpResponse, HttpServer};
use std::net::TcpListener;
use std::sync::Arc;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::keys::SigningKeys;
use crate::auth::password::Passwords;
use crate::auth::principal_cache::PrincipalCache;
use crate::auth::tokens::Tokens;
use crate::clock::SharedClock;
use crate::config::{Config, DatabaseUrl};
use crate::db::change_stamp::ChangeStamps;
use crate::db::Db;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] db::DbSetupError),
    #[error(transparent)]
    Key(#[from] auth::keys::KeyError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// A built, listening server, not yet running.
pub struct Application {
    server: Server,
    port: u16,
    state: web::Data<AppState>,
}

impl Application {
    /// Opens the database, applies migrations, binds the listener and builds the server.
    /// Binding to port 0 picks a free port (tests do).
    pub fn build(config: Config, clock: SharedClock, keys: SigningKeys) -> Result<Self, StartError> {
        let db = Db::connect(&config.database_url, config.database_pool_size, config.database_timeout)?;
        let applied = db.migrate()?;
        if !applied.is_empty() {
            log::info!("applied {} migration(s) on {}", applied.len(), db.backend());
        }
        let principals = principal_cache(&db, &config.database_url);
        let listener = TcpListener::bind(config.bind).map_err(|e| StartError::Bind(config.bind.to_string(), e))?;
        let port = listener
            .local_addr()
            .map_err(|e| StartError::Bind(config.bind.to_string(), e))?
            .port();
        let app_metrics = metrics::Metrics::default();
        let worker_cpus = worker_cpus::WorkerCpus::plan(config.pin_workers, config.workers);
        let passwords = Passwords::with_metrics(config.hash_concurrency, app_metrics.hashing(), worker_cpus.clone())
            .map_err(|e| StartError::Other(format!("{e:?}")))?;
        let keys = keys.with_retired(
            &config.retired_signing_keys_dir,
            config.retired_key_keep(),
            clock.now().and_utc(),
        )?;
        let tokens = Tokens::new(
            keys,
            config.jwt_issuer.clone(),
            config.jwt_audience.clone(),
            config.access_token_ttl,
        )
        .with_leeway(config.access_token_leeway);
        let doc = openapi::document();
        let mut routes = routing::KnownRoutes::from_openapi(&doc);
        if config.metrics_token.is_some() {
            routes = routes.with("/metrics", &["GET", "HEAD"]);
        }
        let state = web::Data::new(AppState {
            routes,
            metrics: app_metrics,
            openapi_json: openapi::document_json(),
            config,
            db,
            clock,
            passwords,
            tokens,
            principals,
        });

        let sink: Arc<dyn notify::Sink> = match (&state.config.notify_url, &state.config.notify_secret) {
            (Some(url), Some(secret)) => Arc::new(
                notify::HttpSink::new(
                    url.clone(),
                    secret.clone(),
                    state.config.notify_timeout,
                    state.clock.clone(),
                )
                .map_err(StartError::Other)?,
            ),
            _ => Arc::new(notify::LogSink),
        };
        let webhook_client = reqwest::Client::builder()
            .timeout(state.config.notify_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StartError::Other(e.to_string()))?;
        notify::Outbox {
            db: state.db.clone(),
            clock: state.clock.clone(),
            sink,
            max_attempts: state.config.outbox_max_attempts,
            webhook_client,
            allow_private_webhooks: state.config.webhook_allow_private,
            metrics: state.metrics.clone(),
        }
        .spawn(state.config.outbox_poll_interval);
        // Every minute: an expired invitation is announced at most a minute late.
        housekeeping::spawn(
            state.db.clone(),
            state.clock.clone(),
            std::time::Duration::from_secs(60),
        );

        allocator::spawn_release(std::time::Duration::from_secs(10));

        let app_state = state.clone();
        let max_body = state.config.max_body_bytes;
        let cors_origins = state.config.cors_allowed_origins.clone();
        let metrics_on = state.config.metrics_token.is_some();
        let server = HttpServer::new(move || {
            // actix-web builds each worker's app on that worker's own thread.
            if let Some(cpus) = &worker_cpus {
                cpus.register_this_thread();
            }
            let (app, _) = App::new().into_utoipa_app().configure(api::routes).split_for_parts();
            app.app_data(app_state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(max_body)
                        .error_handler(error::extractors::json),
                )
                .app_data(web::QueryConfig::default().error_handler(error::extractors::query))
                .app_data(web::PathConfig::default().error_handler(error::extractors::path))
                .configure(api::scim::routes)
                .route("/openapi.json", web::get().to(api::openapi_json))
                .configure(|cfg| {
                    // Off unless a token is configured: then an unknown path like any other.
                    if metrics_on {
                        cfg.route("/metrics", web::get().to(api::metrics::scrape));
                    }
                })
                .route(
                    "/docs",
                    web::get().to(|| async {
                        HttpResponse::PermanentRedirect()
                            .insert_header(("Location", "/docs/"))
                            .finish()
                    }),
                )
                // `validatorUrl: "none"` keeps Swagger UI from sending the document to, and
                // embedding a badge image from, swagger.io's online validator.
                .service(
                    SwaggerUi::new("/docs/{_:.*}")
                        .config(utoipa_swagger_ui::Config::new(["/openapi.json"]).validator_url("none")),
                )
                .default_service(web::to(api::fallback))
                .wrap(from_fn(idempotency::middleware))
                // Outside the idempotency layer, so that its refusals and replays under
                // /scim are SCIM errors too.
                .wrap(from_fn(api::scim::protocol::middleware))
                .wrap(from_fn(request_audit::middleware))
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    cors::middleware(&cors_origins),
                ))
                .wrap(from_fn(cors::refusals))
                .wrap(from_fn(request_id::middleware))
                // Around everything else, so that every response gets the headers, whoever
                // made it.
                .wrap(from_fn(security_headers::middleware))
                // Counts and times every answer, whoever made it.
                .wrap(from_fn(metrics::middleware))
                // First of all: the method can be changed only while nothing else holds the
                // request.
                .wrap(from_fn(routing::head_as_get))
        })
        .workers(state.config.workers)
        // Every blocking task holds or waits for a pooled connection (hashing has its own
        // threads), so threads beyond each worker's share of the pool would only queue on the
        // pool's lock, switching context and keeping stacks and allocator arenas for nothing.
        .worker_max_blocking_threads(blocking_threads(state.config.database_pool_size, state.config.workers))
        .shutdown_timeout(30)
        .listen(listener)
        .map_err(|e| StartError::Bind(state.config.bind.to_string(), e))?
        .run();
        Ok(Self { server, port, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM or SIGINT, then finishes the requests in flight (graceful
    /// shutdown, up to 30 seconds).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// On SQLite, principals are cached against the file's principal epoch, which this process's
/// own commits move only when they write a table principals are read from; elsewhere (or
/// when the stamp cannot be read) nothing is.
fn principal_cache(db: &Db, url: &DatabaseUrl) -> PrincipalCache {
    let DatabaseUrl::Sqlite(path) = url else {
        return PrincipalCache::disabled();
    };
    match ChangeStamps::open(path) {
        Ok(stamps) => {
            let stamps = std::sync::Arc::new(stamps);
            db.keep_principal_epoch(stamps.clone());
            PrincipalCache::new(stamps)
        }
        Err(e) => {
            log::warn!("principals are not cached: the SQLite change stamp cannot be read ({e})");
            PrincipalCache::disabled()
        }
    }
}

/// Each worker's blocking threads: its share of the connection pool, rounded up, and at
/// least two so that a slow query never holds up a worker's every database call.
fn blocking_threads(pool_size: u32, workers: usize) -> usize {
    (pool_size as usize).div_ceil(workers.max(1)).max(2)
}

impl Application {
    /// A handle to stop the server (tests stop theirs when they end).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}
