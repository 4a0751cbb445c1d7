//! Assembles a running Longin from its settings: store, Redis, API, background tasks,
//! and (for `serve`) the controller; runs them until cancelled.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use longin_api::audit::{AuditLog, AuditWriter};
use longin_api::auth::jwt::JwtKeys;
use longin_api::auth::limiter::{FailureCounter, MemoryFailureCounter, RedisFailureCounter};
use longin_api::auth::password::PasswordHasher;
use longin_api::auth::secret;
use longin_api::{ApiConfig, ApiContext};
use longin_controller::ControllerConfig;
use longin_store::bus::Bus;
use longin_store::caching::Caching;
use longin_store::refresh_tokens::{RedisRefreshTokens, RefreshTokenStore, SqlRefreshTokens};
use longin_store::{Backend, Store, StoreOptions};

use crate::cli::{ServeArgs, StoreArgs};

/// Which parts run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// API and controller (`longin serve`).
    All,
    /// API only (`longin api`).
    ApiOnly,
}

/// A server that is bound and ready to run.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    /// The HTTPS listener and its configuration, when `--tls-listen` asks for one.
    tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
    ctx: ApiContext,
    audit_writer: AuditWriter,
    role: Role,
    controller: ControllerConfig,
    http_limits: crate::http::HttpLimits,
    /// Held while the server lives (see [`crate::data_dir`]).
    _data_dir_lock: Option<crate::data_dir::DataDirLock>,
    /// The settings scheduled backups need.
    backups: ServeArgs,
}

/// Opens the store (creating the data dir) and applies pending migrations.
///
/// # Errors
/// The data dir cannot be created, the database is unreachable, or a migration fails.
pub async fn open_store(args: &StoreArgs) -> anyhow::Result<Store> {
    crate::data_dir::prepare(&args.data_dir)?;
    let options = StoreOptions::new(args.effective_database_url());
    let store = Store::connect(&options)
        .await
        .context("connecting to the database")?;
    store
        .migrate()
        .await
        .context("applying database migrations")?;
    crate::data_dir::restrict_database_files(&args.data_dir)?;
    let key = secret::load_or_create_file(
        args.secrets_key.as_deref(),
        &args.data_dir,
        secret::SECRETS_KEY_FILE,
    )
    .context("loading the secrets key")?;
    let store = store.with_sealer(longin_store::secrets::Sealer::new(&key));
    tracing::info!(backend = store.backend().name(), "store ready");
    Ok(store)
}

impl Server {
    /// Connects everything and binds the listener; nothing is served until [`Server::run`].
    ///
    /// # Errors
    /// Any dependency that cannot be reached or set up, with what it was.
    pub async fn build(
        args: &ServeArgs,
        mut config: ApiConfig,
        role: Role,
    ) -> anyhow::Result<Self> {
        config.check_docker = role == Role::All;
        longin_api::prometheus::install();
        crate::data_dir::prepare(&args.store.data_dir)?;
        // A process serving a SQLite database owns the directory it is in (for the
        // embedded one, the data dir): it is then the database's only writer, which
        // lets a restart lead at once and lets it answer reads from memory. Several
        // processes need PostgreSQL (`api` processes on it may share a data dir for
        // the JWT secret).
        let (data_dir_lock, sole_writer) = lock_data_dir(args, role)?;
        let mut controller = args.controller_config();
        // Nobody else can be acting on a SQLite store whose directory this process
        // holds: a restart after a crash leads at once.
        controller.sole_controller = sole_writer;
        let store = open_store(&args.store).await?;
        // Accounts and applications' versions are read on every request; keep them in
        // memory where this process sees every change (see longin_store::caching).
        store.set_caching(if store.backend() == Backend::Postgres {
            Caching::Notified
        } else if sole_writer {
            Caching::Sole
        } else {
            Caching::Off
        });
        let secret = secret::load_or_create(args.jwt_secret.as_deref(), &args.store.data_dir)
            .context("loading the JWT signing secret")?;

        let (refresh_tokens, login_failures, bus) = sessions(args, &store, &config).await?;
        let tls = match args.tls_source() {
            None => None,
            Some(source) => {
                let tls = crate::tls::load(&source).context("setting up the HTTPS listener")?;
                let listen = args
                    .tls_listen
                    .context("an HTTPS source without a listen address")?;
                let listener = TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("binding {listen} (--tls-listen)"))?;
                config.kube = Some(longin_api::config::KubeEndpoint {
                    listen: listener.local_addr().context("reading the HTTPS address")?,
                    ca_pem: tls.ca_pem,
                });
                Some((listener, tls.config))
            }
        };

        let (audit, audit_writer) = AuditLog::new();
        let ctx = ApiContext {
            jwt: Arc::new(JwtKeys::new(&secret, config.access_token_lifetime)),
            passwords: PasswordHasher::new(hashes_in_flight()),
            store,
            refresh_tokens,
            login_failures,
            audit,
            bus,
            logs: {
                let per_user = usize::try_from(args.log_streams_per_user).unwrap_or(usize::MAX);
                match args.engine {
                    longin_controller::EngineKind::Docker => {
                        longin_api::logs::LogHub::new(per_user)
                    }
                    longin_controller::EngineKind::Swarm => {
                        longin_api::logs::LogHub::of_swarm_tasks(per_user)
                    }
                }
            },
            // A watch is a stream as a log follow is: the same figure bounds them.
            kube_watches: longin_api::slots::PerUserSlots::new(
                usize::try_from(args.log_streams_per_user).unwrap_or(usize::MAX),
                "longin_kube_watches_refused_total",
            ),
            config: Arc::new(config),
            rendered: longin_api::rendered::RenderedApplications::default(),
        };
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        Ok(Self {
            listener,
            tls,
            ctx,
            audit_writer,
            role,
            controller,
            http_limits: args.http_limits(),
            _data_dir_lock: data_dir_lock,
            backups: args.clone(),
        })
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// The socket has no local address.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("reading the bound address")
    }

    /// The HTTPS listener's bound address, when there is one.
    #[must_use]
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.ctx.config.kube.as_ref().map(|kube| kube.listen)
    }

    /// The API's shared state.
    #[must_use]
    pub fn context(&self) -> &ApiContext {
        &self.ctx
    }

    /// Serves until `cancel` fires, then stops every task, waiting for each, and logs
    /// how each ended.
    ///
    /// # Errors
    /// The bound address cannot be read.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            tls,
            ctx,
            audit_writer,
            role,
            controller,
            http_limits,
            _data_dir_lock,
            backups,
        } = self;
        let addr = listener.local_addr().context("reading the bound address")?;
        // Background tasks get their own token so they outlive the HTTP server's drain
        // and can still record its last requests.
        let background = CancellationToken::new();
        let mut tasks = JoinSet::new();
        spawn_background(
            &mut tasks,
            &ctx,
            audit_writer,
            role,
            &controller,
            &backups,
            &background,
        );

        let store = ctx.store.clone();
        let app = longin_api::app(ctx);
        tracing::info!(%addr, ?role, "longin listening");
        let https = async {
            if let Some((listener, config)) = tls {
                let addr = listener.local_addr().ok();
                tracing::info!(?addr, "longin listening for HTTPS (kubectl)");
                crate::http::serve(
                    listener,
                    app.clone(),
                    http_limits,
                    cancel.clone(),
                    Some(config),
                )
                .await;
            }
        };
        tokio::join!(
            crate::http::serve(listener, app.clone(), http_limits, cancel.clone(), None),
            https
        );
        tracing::info!("http server stopped");

        background.cancel();
        while let Some(ended) = tasks.join_next().await {
            match ended {
                Ok(name) => tracing::info!(task = name, "task ended"),
                Err(err) => tracing::error!(error = ?err, "task panicked"),
            }
        }
        store.close().await;
        Ok(())
    }
}

/// Locks the directory of a SQLite database (or the data dir of a whole server);
/// returns the lock and whether this process is then the store's only writer.
fn lock_data_dir(
    args: &ServeArgs,
    role: Role,
) -> anyhow::Result<(Option<crate::data_dir::DataDirLock>, bool)> {
    let sqlite_dir = args.store.sqlite_dir();
    let data_dir_lock = match (&sqlite_dir, role) {
        (Some(dir), _) => crate::data_dir::lock(dir)?,
        (None, Role::All) => crate::data_dir::lock(&args.store.data_dir)?,
        (None, Role::ApiOnly) => None,
    };
    let sole_writer = sqlite_dir.is_some() && data_dir_lock.is_some();
    if let (Some(dir), false) = (&sqlite_dir, sole_writer) {
        anyhow::bail!(
            "the SQLite database in {} is in use by another longin process (it holds {}); give this one its own --data-dir, or use PostgreSQL (--database-url) to run several",
            dir.display(),
            crate::data_dir::LOCK_FILE
        );
    }
    if role == Role::All && data_dir_lock.is_none() {
        anyhow::bail!(
            "data dir {} is in use by another longin process (it holds {}); give this one its own --data-dir",
            args.store.data_dir.display(),
            crate::data_dir::LOCK_FILE
        );
    }
    Ok((data_dir_lock, sole_writer))
}

/// Where refresh tokens, sign-in failure counts and live events live: Redis when
/// configured (several API processes share them), else the store and memory.
async fn sessions(
    args: &ServeArgs,
    store: &Store,
    config: &ApiConfig,
) -> anyhow::Result<(Arc<dyn RefreshTokenStore>, Arc<dyn FailureCounter>, Bus)> {
    Ok(match &args.redis_url {
        Some(url) => {
            let (client, conn) = connect_redis(url).await?;
            tracing::info!(prefix = %args.redis_prefix, "sessions, sign-in limits and live events in Redis");
            (
                Arc::new(RedisRefreshTokens::new(
                    conn.clone(),
                    args.redis_prefix.clone(),
                    config.refresh_token_lifetime,
                )),
                Arc::new(RedisFailureCounter::new(
                    conn.clone(),
                    args.redis_prefix.clone(),
                )),
                Bus::with_redis(client, conn, &args.redis_prefix),
            )
        }
        None => (
            Arc::new(SqlRefreshTokens::new(store.clone())),
            Arc::new(MemoryFailureCounter::default()),
            Bus::in_process(),
        ),
    })
}

/// The tasks that run beside the HTTP server until `background` fires: the audit
/// writer, retention, the change listeners, and with the whole server the backup
/// schedule and the controller.
fn spawn_background(
    tasks: &mut JoinSet<&'static str>,
    ctx: &ApiContext,
    audit_writer: AuditWriter,
    role: Role,
    controller: &ControllerConfig,
    backups: &ServeArgs,
    background: &CancellationToken,
) {
    tasks.spawn({
        let (store, interval, cancel) = (
            ctx.store.clone(),
            ctx.config.audit_flush_interval,
            background.clone(),
        );
        async move {
            audit_writer.run(store, interval, cancel).await;
            "audit log writer"
        }
    });
    tasks.spawn({
        let (ctx, cancel) = (ctx.clone(), background.clone());
        async move {
            longin_api::retention::run(ctx, cancel).await;
            "retention"
        }
    });
    tasks.spawn({
        let (store, cancel) = (ctx.store.clone(), background.clone());
        async move {
            store.follow_account_changes(cancel).await;
            "account change listener"
        }
    });
    tasks.spawn({
        let (bus, cancel) = (ctx.bus.clone(), background.clone());
        async move {
            bus.run_redis_listener(cancel).await;
            "event bus listener"
        }
    });
    if let (Role::All, Some(every)) = (role, backups.backup_schedule.0) {
        let schedule = crate::backup::Schedule {
            every,
            keep: Duration::from_secs(u64::from(backups.backup_retention_days) * 86_400),
        };
        tasks.spawn({
            let (store, args, cancel) =
                (ctx.store.clone(), backups.store.clone(), background.clone());
            async move {
                crate::backup::run_schedule(store, args, schedule, cancel).await;
                "backup schedule"
            }
        });
    }
    if role == Role::All {
        tasks.spawn({
            let (store, bus, cancel, config) = (
                ctx.store.clone(),
                ctx.bus.clone(),
                background.clone(),
                controller.clone(),
            );
            async move {
                longin_controller::run(store, bus, config, cancel).await;
                "controller"
            }
        });
    }
}

/// A Redis client and a managed connection to it.
///
/// # Errors
/// The URL is invalid or Redis does not answer.
pub async fn connect_redis(
    url: &str,
) -> anyhow::Result<(redis::Client, redis::aio::ConnectionManager)> {
    let client = redis::Client::open(url).context("parsing REDIS_URL")?;
    let conn = redis::aio::ConnectionManager::new(client.clone())
        .await
        .context("connecting to Redis")?;
    Ok((client, conn))
}

/// The event bus `args` ask for: through Redis when `REDIS_URL` is set.
///
/// # Errors
/// Redis does not answer.
pub async fn event_bus(args: &ServeArgs) -> anyhow::Result<Bus> {
    Ok(match &args.redis_url {
        Some(url) => {
            let (client, conn) = connect_redis(url).await?;
            Bus::with_redis(client, conn, &args.redis_prefix)
        }
        None => Bus::in_process(),
    })
}

/// Argon2 hashes allowed at once: one per core, plus one, so hashing can use the
/// machine but never queue unbounded blocking work.
fn hashes_in_flight() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() + 1)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = ?err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = ?err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}
