//! Command-line interface and configuration: every setting is a flag and an
//! environment variable, documented in `--help`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use longin_api::ApiConfig;
use longin_api::auth::limiter::Limit;
use longin_controller::ControllerConfig;
use longin_controller::plan::RestartLimit;
use longin_store::applications::PortRange;

/// Longin: a self-hosted application platform.
#[derive(Debug, Parser)]
#[command(name = "longin", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub client: ClientOptions,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of the client commands, accepted before or after the subcommand
/// (`longin -o json get web`, `longin get web -o json`). Server and admin commands
/// ignore `--server` (so an exported `LONGIN_SERVER` does not get in their way) and
/// refuse `-o` and `--owner`.
#[derive(Debug, Clone, Default, Args)]
pub struct ClientOptions {
    /// Talk to this server instead of the one logged in to (`login`: the server to sign
    /// in to).
    #[arg(long, global = true, env = "LONGIN_SERVER", value_name = "URL", help_heading = CLIENT_OPTIONS)]
    pub server: Option<String>,
    /// How `get` prints: yaml, json, or wide (more columns); a table by default.
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT", help_heading = CLIENT_OPTIONS)]
    pub output: Option<OutputFormat>,
    /// Admins: act on this user's applications instead of your own (`get` without it
    /// lists everyone's).
    #[arg(long, global = true, value_name = "USERNAME", help_heading = CLIENT_OPTIONS)]
    pub owner: Option<String>,
}

/// The heading of the client options in `--help`.
const CLIENT_OPTIONS: &str = "Client options";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API and the controller in one process (single-node default).
    Serve(ServeArgs),
    /// Run the API only (scaled-out deployments: several behind a load balancer).
    Api(ServeArgs),
    /// Run the controller only (scaled-out deployments: several against one
    /// PostgreSQL; one leader acts, another takes over within ~15 s if it dies).
    Controller(ServeArgs),
    /// The node agent of a Swarm: answers the controller with the stats of this
    /// node's tasks. Longin deploys it itself (`serve --engine swarm --agent-image`),
    /// as a global service; not run by hand.
    Agent(AgentArgs),
    /// Apply pending database migrations, then exit.
    Migrate(StoreArgs),
    /// Write a backup: a consistent online copy of the store with the data dir's JWT
    /// secret, in one tar file (mode 0600).
    Backup(BackupArgs),
    /// Restore a backup into an empty data dir (and, for PostgreSQL, an empty
    /// database); then start `longin serve` on them.
    Restore(RestoreArgs),
    /// Administrative tasks run against the store directly.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Sign in to the server given with --server (e.g. http://127.0.0.1:3001) and keep
    /// the session in ~/.config/longin (mode 0600).
    Login(LoginArgs),
    /// Sign out: revoke the session and forget it.
    Logout,
    /// Create or update applications from YAML/JSON files, directories or stdin.
    Apply(ApplyArgs),
    /// List applications, or show one.
    Get(GetArgs),
    /// Show an application's spec, status, conditions, containers and recent events.
    Describe(NameArgs),
    /// Delete an application and everything it runs.
    Delete(NameArgs),
    /// Stop an application (replicas to 0, remembering the count).
    Stop(NameArgs),
    /// Start a stopped application with the replica count it had.
    Start(NameArgs),
    /// Rolling restart of every replica.
    Restart(NameArgs),
    /// Print an application's output (stderr lines to stderr); -f follows it.
    Logs(LogsArgs),
    /// CPU and memory of every application, from the latest metrics cycle.
    Top,
    /// Admins: the machines applications run on (the Swarm's nodes, or the one local
    /// engine), with their state and the replicas on each.
    Nodes,
    /// An application's revisions: history, undo (roll back), status (wait).
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Roll out again: rebuild from git at the branch's head, or pull the image again.
    Redeploy(NameArgs),
    /// Show an application's GitHub webhook (created the first time) and its deliveries.
    Webhook(WebhookArgs),
    /// Set the HTTPS token builds fetch a private repository with (read from stdin).
    GitToken(GitTokenArgs),
    /// Show the SSH deploy key builds fetch with (generated the first time).
    DeployKey(DeployKeyArgs),
    /// Personal API tokens for kubectl and CI: create, list, revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Write a kubeconfig for this server's Kubernetes-compatible API (`serve
    /// --tls-listen`): its https address and CA, a new API token, and a context whose
    /// namespace is your username. Merged into --file when it exists; printed without.
    Kubeconfig(KubeconfigArgs),
}

/// Settings of `kubeconfig`.
#[derive(Debug, Clone, Args)]
pub struct KubeconfigArgs {
    /// The kubeconfig to write (e.g. ~/.kube/config): merged into when it exists, its
    /// other clusters, users and contexts kept. Without it, printed on stdout.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Name of the context (and of its cluster and user entries).
    #[arg(long, default_value = "longin")]
    pub context: String,
    /// Days until the context's API token expires (it is `kubeconfig-CONTEXT`; a new
    /// kubeconfig replaces it).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub expires_in_days: i64,
}

/// Settings of `git-token`.
#[derive(Debug, Clone, Args)]
pub struct GitTokenArgs {
    pub name: String,
    /// Forget the token instead.
    #[arg(long)]
    pub clear: bool,
}

/// Settings of `deploy-key`.
#[derive(Debug, Clone, Args)]
pub struct DeployKeyArgs {
    pub name: String,
    /// Generate a new key (the old one stops working).
    #[arg(long)]
    pub rotate: bool,
}

/// `longin token …`: personal API tokens, long-lived bearer tokens that act as you.
/// Managed with the session of `longin login`: a token cannot create or revoke tokens.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (it is shown this once).
    Create(TokenCreateArgs),
    /// Your tokens: when each was created, last used and expires.
    List,
    /// Revoke a token: requests with it are refused from now on.
    Revoke(NameArgs),
}

/// Settings of `token create`.
#[derive(Debug, Clone, Args)]
pub struct TokenCreateArgs {
    /// 1–63 of a-z, 0-9 and '-', unique among your tokens (the machine or pipeline
    /// that uses it, say).
    pub name: String,
    /// Days until the token stops working, 1–3650 (default 90).
    #[arg(long, value_name = "DAYS")]
    pub expires_in_days: Option<i64>,
}

/// `longin rollout …`, after `kubectl rollout`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Every revision: trigger, status, commit, image.
    History(NameArgs),
    /// Roll back to the previous succeeded revision, or to --to-revision.
    Undo(UndoArgs),
    /// Wait for a revision (the newest by default) to end; exit 0 only if it succeeded.
    Status(StatusArgs),
}

/// Settings of `rollout undo`.
#[derive(Debug, Clone, Args)]
pub struct UndoArgs {
    pub name: String,
    /// The revision whose image to roll back to.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub to_revision: Option<i64>,
}

/// Settings of `rollout status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    pub name: String,
    /// The revision to wait for (default: the newest).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub revision: Option<i64>,
    /// How long to wait: `10m`, `90s` (1 s to 1 h).
    #[arg(long, default_value = "20m", value_parser = parse_interval)]
    pub timeout: Duration,
}

/// Settings of `webhook`.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    pub name: String,
    /// Give the hook a new secret (shown once; the URL stays).
    #[arg(long)]
    pub rotate: bool,
}

/// Settings of `logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    pub name: String,
    /// Keep printing new lines until the containers stop (Ctrl-C to quit).
    #[arg(short, long)]
    pub follow: bool,
    /// Lines of history to print first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub tail: u64,
    /// Only this replica's container (default: every replica, lines prefixed [rN]).
    #[arg(long)]
    pub replica: Option<u32>,
}

/// Settings of `login`.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    #[arg(long)]
    pub username: String,
    /// Read the password from stdin (as `docker login` does) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Settings of `apply`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// A file, a directory of .yaml/.yml/.json files, or - for stdin; repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
}

/// How `get` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
    Wide,
}

/// Settings of `get`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// One application; all when omitted.
    pub name: Option<String>,
}

/// Commands that name one application.
#[derive(Debug, Clone, Args)]
pub struct NameArgs {
    pub name: String,
}

impl Command {
    /// Whether this command runs a server (`serve`, `api`, `controller`): those log at
    /// info by default, every other command only warnings, so that it prints its
    /// results and nothing else.
    #[must_use]
    pub fn is_server(&self) -> bool {
        matches!(
            self,
            Self::Serve(_) | Self::Api(_) | Self::Controller(_) | Self::Agent(_)
        )
    }

    /// Whether this command is a client of a server (rather than a server or admin task).
    #[must_use]
    pub fn is_client(&self) -> bool {
        !self.is_server()
            && !matches!(
                self,
                Self::Migrate(_)
                    | Self::Backup(_)
                    | Self::Restore(_)
                    | Self::Admin { .. }
                    | Self::Agent(_)
            )
    }

    /// Whether this command acts on applications, and so on an owner's.
    #[must_use]
    pub fn acts_on_applications(&self) -> bool {
        self.is_client()
            && !matches!(
                self,
                Self::Login(_)
                    | Self::Logout
                    | Self::Token { .. }
                    | Self::Kubeconfig(_)
                    | Self::Nodes
            )
    }
}

impl ClientOptions {
    /// What is wrong with these options for `command`, if anything: a usage error.
    #[must_use]
    pub fn misuse(&self, command: &Command) -> Option<String> {
        if self.output.is_some() && !matches!(command, Command::Get(_) | Command::Nodes) {
            return Some(
                "-o/--output is the output format of `longin get` and `longin nodes` (a backup's file is `longin backup --file`)"
                    .to_owned(),
            );
        }
        if self.owner.is_some() && !command.acts_on_applications() {
            return Some(
                "--owner is for the commands on applications (apply, get, describe, delete, stop, start, restart, logs, top, rollout, redeploy, webhook, git-token, deploy-key)"
                    .to_owned(),
            );
        }
        if matches!(command, Command::Login(_)) && self.server.is_none() {
            return Some("login needs --server URL (or LONGIN_SERVER)".to_owned());
        }
        None
    }
}

/// Settings of `agent`.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Address the agent answers on (its node's, with host networking).
    #[arg(long, default_value = "0.0.0.0:4040")]
    pub listen: SocketAddr,
    /// The installation's instance name (`serve --instance`).
    #[arg(long, default_value = "longin")]
    pub instance: String,
    /// The installation's id: only its tasks are reported.
    #[arg(long)]
    pub installation: String,
    /// The secret the controller authenticates with (set by the controller when it
    /// deploys the agent; at least 32 characters). The node's engine is `DOCKER_HOST`.
    #[arg(long, env = "LONGIN_AGENT_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Settings of `backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Where to write it. Default: `<data-dir>/backups/longin-<UTC time>.tar`. (Not
    /// `-o`: that is the client commands' output format.)
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
}

/// Settings of `restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user, for example the first admin. The password is read from stdin when
    /// it is not a terminal, else prompted for twice.
    CreateUser(CreateUserArgs),
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory for Longin's own files (the SQLite database, the generated JWT
    /// secret); created on start.
    #[arg(long, env = "LONGIN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL. Default: a SQLite file in the data dir. `postgres://…` selects
    /// PostgreSQL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Key that seals secret env values in the database (at least 32 bytes). Default:
    /// generated at first start and kept in the data dir (`secrets-key`, mode 0600).
    /// Give every process of one installation the same one.
    #[arg(long, env = "LONGIN_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,
}

impl StoreArgs {
    /// Whether the store is the embedded SQLite file in the data dir (the default).
    #[must_use]
    pub fn uses_embedded_database(&self) -> bool {
        self.effective_database_url()
            == longin_store::StoreOptions::sqlite_file(&self.data_dir.join("longin.db")).url
    }

    /// The directory of the SQLite database in force, if it is SQLite.
    #[must_use]
    pub fn sqlite_dir(&self) -> Option<PathBuf> {
        let url = self.effective_database_url();
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = PathBuf::from(rest.split('?').next().unwrap_or(rest));
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Some(if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        })
    }

    /// The database URL in force: the one given, else SQLite in the data dir.
    #[must_use]
    pub fn effective_database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            longin_store::StoreOptions::sqlite_file(&self.data_dir.join("longin.db")).url
        })
    }
}

/// Who may create accounts. Either way the installation's first account may register,
/// and becomes its admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    /// Anyone may register through the API.
    Open,
    /// After the first account, only admins create accounts (`longin admin
    /// create-user`).
    Closed,
}

/// The server-wide image pull policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
}

impl From<PullPolicy> for longin_crds::application::ImagePullPolicy {
    fn from(policy: PullPolicy) -> Self {
        match policy {
            PullPolicy::Always => Self::Always,
            PullPolicy::IfNotPresent => Self::IfNotPresent,
        }
    }
}

/// Settings of `serve` and `api`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Address the HTTP API listens on (`longin controller`: its /metrics and
    /// /healthz, so give it another port than an API process on the same host).
    #[arg(long, env = "LONGIN_LISTEN", default_value = "127.0.0.1:3001")]
    pub listen: SocketAddr,

    /// Address of an HTTPS listener serving the same API, for kubectl (client-go sends
    /// a bearer token only over https). Off unless set, e.g. `127.0.0.1:6443`.
    #[arg(long, env = "LONGIN_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,

    /// PEM certificate chain of the HTTPS listener. Default: issued at each start by a
    /// CA made once in `<data-dir>/tls/`, which `longin kubeconfig` hands out.
    #[arg(long, env = "LONGIN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "LONGIN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Another DNS name or IP address the generated certificate is valid for (beside
    /// localhost, the loopback addresses and the listen address); repeatable.
    #[arg(long = "tls-san", env = "LONGIN_TLS_SANS", value_delimiter = ',')]
    pub tls_sans: Vec<String>,

    /// Redis URL. When set, refresh tokens and sign-in failure counts live in Redis, so
    /// several API processes share them.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key Longin writes, to share a Redis with other users.
    #[arg(long, env = "LONGIN_REDIS_PREFIX", default_value = "longin:")]
    pub redis_prefix: String,

    /// JWT signing secret (at least 32 bytes). Default: generated at first start and
    /// kept in the data dir (mode 0600). Set it to share tokens across API processes.
    #[arg(long, env = "LONGIN_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Whether anyone may register. The first account always may, and becomes the
    /// admin; `closed` (the default) then refuses everyone else.
    #[arg(
        long,
        env = "LONGIN_REGISTRATION",
        value_enum,
        default_value = "closed"
    )]
    pub registration: Registration,

    /// Days to keep the request audit log.
    #[arg(long, env = "LONGIN_API_LOG_RETENTION_DAYS", default_value_t = 30)]
    pub api_log_retention_days: u32,

    /// Failed sign-ins allowed per account in 15 minutes.
    #[arg(
        long,
        env = "LONGIN_LOGIN_MAX_FAILURES_PER_ACCOUNT",
        default_value_t = 10
    )]
    pub login_max_failures_per_account: u32,

    /// Failed sign-ins allowed per client address in 15 minutes.
    #[arg(
        long,
        env = "LONGIN_LOGIN_MAX_FAILURES_PER_CLIENT",
        default_value_t = 50
    )]
    pub login_max_failures_per_client: u32,

    /// Host ports given to application replicas, FIRST-LAST inclusive.
    #[arg(long, env = "LONGIN_PORT_RANGE", default_value = "3100-4000", value_parser = parse_port_range)]
    pub port_range: PortRange,

    /// Host address replicas' ports are published on (127.0.0.1 keeps them local,
    /// behind a reverse proxy).
    #[arg(long, env = "LONGIN_BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: std::net::IpAddr,

    /// Name of this installation: labels its containers so that several installations
    /// can share one Docker engine without touching each other's containers.
    #[arg(long, env = "LONGIN_INSTANCE", default_value = "longin")]
    pub instance: String,

    /// Seconds a rollout may take before it is reported stuck (ProgressDeadlineExceeded).
    #[arg(long, env = "LONGIN_PROGRESS_DEADLINE_SECONDS", default_value_t = 600)]
    pub progress_deadline_seconds: u64,

    /// First CrashLoopBackOff delay in seconds; it doubles on each restart up to 5 min.
    #[arg(long, env = "LONGIN_RESTART_BACKOFF_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub restart_backoff_seconds: u64,

    /// Restarts of one replica within 10 minutes that make the application Failed.
    #[arg(long, env = "LONGIN_MAX_RESTARTS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_restarts: u64,

    /// Seconds between full resyncs of every application with the engine.
    #[arg(long, env = "LONGIN_RESYNC_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub resync_seconds: u64,

    /// How often containers' CPU, memory, network and block I/O are collected: `30s`,
    /// `5s`, `2m` (1 s to 1 h).
    #[arg(long, env = "LONGIN_METRICS_INTERVAL", default_value = "30s", value_parser = parse_interval)]
    pub metrics_interval: Duration,

    /// How long one Docker engine call may take before it counts as failed and is
    /// retried with back-off: `2m`, `30s` (1 s to 1 h). A stop also gets the
    /// container's grace period on top; an image pull, this long without progress.
    #[arg(long, env = "LONGIN_ENGINE_TIMEOUT", default_value = "2m", value_parser = parse_interval)]
    pub engine_timeout: Duration,

    /// Days to keep collected container metrics.
    #[arg(long, env = "LONGIN_METRICS_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub metrics_retention_days: u32,

    /// Which engine runs the replicas: `docker` (the local engine; Longin places,
    /// restarts and rolls out each replica) or `swarm` (`DOCKER_HOST` names a Docker
    /// Swarm manager; each application is one service the Swarm schedules over its
    /// nodes).
    #[arg(long, env = "LONGIN_ENGINE", default_value = "docker")]
    pub engine: longin_controller::EngineKind,

    /// With `--engine swarm`: `host` publishes each replica's port on the node it
    /// runs on (at most one replica per node; works without IPVS), `ingress` uses the
    /// Swarm's routing mesh (every node's port reaches every replica; needs IPVS).
    #[arg(long, env = "LONGIN_SWARM_PUBLISH", default_value = "host")]
    pub swarm_publish: longin_controller::services::PublishMode,

    /// Where images built from git are pushed for every node to pull
    /// (`host[:port][/path]`, e.g. `10.0.0.5:5000`): needed by `--engine swarm`, where
    /// the manager builds and other nodes run the replicas; the registry must take
    /// pushes from the manager's engine and pulls from every node without credentials.
    #[arg(long, env = "LONGIN_REGISTRY", value_parser = parse_registry)]
    pub registry: Option<String>,

    /// With `--engine swarm`: the image of the node agent Longin deploys on every
    /// node (a global service) to read the stats of the replicas there; its
    /// entrypoint must be `longin` (the repository's Dockerfile builds one) and every
    /// node must be able to pull it. Without it, only replicas on the manager have
    /// metrics.
    #[arg(long, env = "LONGIN_AGENT_IMAGE")]
    pub agent_image: Option<String>,

    /// The port node agents listen on, on every node's own addresses (host
    /// networking): open it from the controller to the nodes, and to nothing else.
    #[arg(long, env = "LONGIN_AGENT_PORT", default_value_t = longin_controller::agent::DEFAULT_PORT)]
    pub agent_port: u16,

    /// The node's engine as the agent reaches it: `unix:///var/run/docker.sock`
    /// (bind-mounted into the agent) or a `tcp://127.0.0.1:PORT` the node's engine
    /// listens on (the agent shares the node's network).
    #[arg(long, env = "LONGIN_AGENT_DOCKER_HOST", default_value = "unix:///var/run/docker.sock", value_parser = parse_agent_docker_host)]
    pub agent_docker_host: String,

    /// When images are pulled for apps that do not say (`spec.imagePullPolicy`):
    /// `always` checks the registry before every container start, so a user can run
    /// only images they can pull, never one that happens to be on the engine;
    /// `if-not-present` uses an engine's copy.
    #[arg(long, env = "LONGIN_PULL_POLICY", value_enum, default_value = "always")]
    pub pull_policy: PullPolicy,

    /// Addresses of owners' networks, `A.B.C.D/N` (N from 8 to 24): each owner's
    /// containers get a bridge network with a /24 of their own from it, so the
    /// default holds 4096 owners.
    #[arg(long, env = "LONGIN_NETWORK_POOL", default_value = "10.224.0.0/12", value_parser = parse_network_pool)]
    pub network_pool: longin_controller::networks::NetworkPool,

    /// How often `serve` writes a backup into `<data-dir>/backups`: `daily`, `hourly`,
    /// an interval (`6h`, `30m`; 1 min to 1 year), or `off`.
    #[arg(long, env = "LONGIN_BACKUP_SCHEDULE", default_value = "daily", value_parser = parse_backup_schedule)]
    pub backup_schedule: BackupSchedule,

    /// Days scheduled backups are kept (the newest always is).
    #[arg(long, env = "LONGIN_BACKUP_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub backup_retention_days: u32,

    /// Applications one user may have (admins are exempt unless given their own
    /// quota through `PATCH /api/admin/users/{id}`).
    #[arg(long, env = "LONGIN_QUOTA_APPS", default_value_t = 20)]
    pub quota_apps: u64,

    /// Replicas one user's applications may ask for in all.
    #[arg(long, env = "LONGIN_QUOTA_REPLICAS", default_value_t = 40)]
    pub quota_replicas: u64,

    /// Memory one user's applications may ask for in all (replicas × limit): `20Gi`, `512Mi`.
    #[arg(long, env = "LONGIN_QUOTA_MEMORY", default_value = "20Gi", value_parser = parse_memory_quantity)]
    pub quota_memory: u64,

    /// Log reads, follows and WebSocket log subscriptions one user may have open at
    /// once (per API process); more are refused with 429. Kubernetes watches have as
    /// many places of their own.
    #[arg(long, env = "LONGIN_LOG_STREAMS_PER_USER", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub log_streams_per_user: u64,

    /// Seconds a client has to send a request's headers (also how long an idle
    /// keep-alive connection stays open); a slower one is disconnected.
    #[arg(long, env = "LONGIN_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_interval)]
    pub http_header_timeout: Duration,

    /// HTTP connections served at once; more wait in the kernel's accept queue.
    #[arg(long, env = "LONGIN_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Image builds from git (`spec.source`) run at once, across applications (one
    /// per application always).
    #[arg(long, env = "LONGIN_BUILD_CONCURRENCY", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub build_concurrency: u64,

    /// How long one build (fetch, context, image) may run before it fails: `15m`,
    /// `90s` (1 s to 1 h).
    #[arg(long, env = "LONGIN_BUILD_TIMEOUT", default_value = "15m", value_parser = parse_interval)]
    pub build_timeout: Duration,

    /// Built images kept per application: those of its newest succeeded revisions
    /// (and any image in use). Older ones built by this installation are removed.
    #[arg(long, env = "LONGIN_KEEP_IMAGES", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub keep_images: u64,

    /// Bearer token Prometheus must present on /metrics. Without it /metrics is open
    /// to anyone who can reach the server (it names every application).
    #[arg(long, env = "LONGIN_METRICS_TOKEN")]
    pub metrics_token: Option<String>,
}

impl ServeArgs {
    /// Where the HTTPS listener's certificate comes from, if there is one.
    #[must_use]
    pub fn tls_source(&self) -> Option<crate::tls::Source> {
        let listen = self.tls_listen?;
        Some(match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => crate::tls::Source::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => crate::tls::Source::Generated {
                data_dir: self.store.data_dir.clone(),
                listen,
                extra_names: self.tls_sans.clone(),
            },
        })
    }

    /// The HTTP server's limits these arguments ask for.
    #[must_use]
    pub fn http_limits(&self) -> crate::http::HttpLimits {
        crate::http::HttpLimits {
            header_read_timeout: self.http_header_timeout,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            ..crate::http::HttpLimits::default()
        }
    }

    /// The controller settings these arguments ask for.
    #[must_use]
    pub fn controller_config(&self) -> ControllerConfig {
        ControllerConfig {
            instance: self.instance.clone(),
            bind_address: self.bind_address.to_string(),
            port_range: self.port_range,
            progress_deadline: Duration::from_secs(self.progress_deadline_seconds),
            restart_limit: RestartLimit {
                backoff_start_secs: i64::try_from(self.restart_backoff_seconds).unwrap_or(10),
                max_restarts: usize::try_from(self.max_restarts).unwrap_or(5),
                ..RestartLimit::default()
            },
            resync: Duration::from_secs(self.resync_seconds),
            metrics_interval: self.metrics_interval,
            engine_timeout: self.engine_timeout,
            pull_policy: self.pull_policy.into(),
            network_pool: self.network_pool,
            engine: self.engine,
            publish: self.swarm_publish,
            agent: self
                .agent_image
                .clone()
                .map(|image| longin_controller::agent::AgentSettings {
                    image,
                    port: self.agent_port,
                    docker_host: self.agent_docker_host.clone(),
                }),
            builds: longin_controller::builds::BuildConfig {
                root: self.store.data_dir.join("git"),
                concurrency: usize::try_from(self.build_concurrency).unwrap_or(1),
                timeout: self.build_timeout,
                keep_images: usize::try_from(self.keep_images).unwrap_or(5),
                registry: self.registry.clone(),
                multi_node: self.engine == longin_controller::EngineKind::Swarm,
                ..longin_controller::builds::BuildConfig::default()
            },
            ..ControllerConfig::default()
        }
    }
}

/// Accepts a registry to push built images to: what stands before `longin/<uid>:<tag>`
/// in a valid image reference, with a host (a dot, a port or `localhost`) so it is
/// not read as a Docker Hub account.
fn parse_registry(s: &str) -> Result<String, String> {
    let registry = s.trim_end_matches('/');
    let host = registry.split('/').next().unwrap_or_default();
    let is_host = host.contains('.') || host.contains(':') || host == "localhost";
    let valid = longin_crds::limits::Image::parse(&format!("{registry}/longin/x:1")).is_ok();
    if is_host && valid && !registry.contains("://") {
        Ok(registry.to_owned())
    } else {
        Err("a registry host[:port][/path], e.g. 10.0.0.5:5000 (no scheme)".to_owned())
    }
}

/// Accepts the node engine addresses an agent can use: a unix socket it gets mounted,
/// or TCP on the node's loopback (anything else would send the engine's API over a
/// network unauthenticated).
fn parse_agent_docker_host(s: &str) -> Result<String, String> {
    let ok = s.strip_prefix("unix:///").is_some_and(|p| !p.is_empty())
        || s.strip_prefix("tcp://127.0.0.1:")
            .is_some_and(|port| port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("unix:///PATH or tcp://127.0.0.1:PORT".to_owned())
    }
}

/// Parses an interval: a number with `s`, `m` or `h` (a bare number is seconds),
/// from 1 s to 1 h.
///
/// # Errors
/// A message saying what is wrong, for clap to print.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 30s, 5s or 2m, got {s:?}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        other => return Err(format!("unknown unit {other:?}: use s, m or h")),
    };
    if !(1..=3600).contains(&secs) {
        return Err(format!("{s} is out of range: from 1s to 1h"));
    }
    Ok(Duration::from_secs(secs))
}

/// How often scheduled backups are taken; `None` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSchedule(pub Option<Duration>);

/// Parses a backup schedule: `off`, `daily`, `hourly`, or a number with `m`, `h` or
/// `d` (1 minute to 365 days).
///
/// # Errors
/// A message saying what is wrong, for clap to print.
pub fn parse_backup_schedule(s: &str) -> Result<BackupSchedule, String> {
    let s = s.trim();
    let minutes: u64 = match s {
        "off" => return Ok(BackupSchedule(None)),
        "daily" => 24 * 60,
        "hourly" => 60,
        _ => {
            let (number, unit) =
                s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
            let n: u64 = number.parse().map_err(|_| {
                format!("expected off, daily, hourly or an interval like 6h, got {s:?}")
            })?;
            match unit {
                "m" => n,
                "h" => n.saturating_mul(60),
                "d" => n.saturating_mul(24 * 60),
                other => return Err(format!("unknown unit {other:?}: use m, h or d")),
            }
        }
    };
    if !(1..=365 * 24 * 60).contains(&minutes) {
        return Err(format!("{s} is out of range: from 1m to 365d"));
    }
    Ok(BackupSchedule(Some(Duration::from_secs(minutes * 60))))
}

/// Parses a network pool (`10.224.0.0/12`).
///
/// # Errors
/// A message saying what is wrong, for clap to print.
pub fn parse_network_pool(s: &str) -> Result<longin_controller::networks::NetworkPool, String> {
    longin_controller::networks::NetworkPool::parse(s).map_err(|e| e.to_string())
}

/// Parses a memory quantity (`16Gi`, `512Mi`, bytes).
///
/// # Errors
/// A message saying what is wrong, for clap to print.
pub fn parse_memory_quantity(s: &str) -> Result<u64, String> {
    longin_crds::quantity::parse_memory(s).map_err(|e| e.to_string())
}

/// Parses `FIRST-LAST`, both ports, FIRST ≤ LAST.
///
/// # Errors
/// A message saying what is wrong, for clap to print.
pub fn parse_port_range(s: &str) -> Result<PortRange, String> {
    let (first, last) = s
        .split_once('-')
        .ok_or("expected FIRST-LAST, e.g. 3100-4000")?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{p:?} is not a port (1-65535)"))
    };
    let (first, last) = (port(first)?, port(last)?);
    if first > last {
        return Err(format!("{first} is above {last}"));
    }
    Ok(PortRange { first, last })
}

impl ServeArgs {
    /// The API settings these arguments ask for.
    #[must_use]
    pub fn api_config(&self) -> ApiConfig {
        let defaults = ApiConfig::default();
        ApiConfig {
            open_registration: self.registration == Registration::Open,
            audit_retention: Duration::from_secs(u64::from(self.api_log_retention_days) * 86_400),
            account_limit: Limit {
                max_failures: self.login_max_failures_per_account,
                ..defaults.account_limit
            },
            client_limit: Limit {
                max_failures: self.login_max_failures_per_client,
                ..defaults.client_limit
            },
            port_range: self.port_range,
            controller_lease: longin_controller::lease_name(&self.instance),
            metrics_interval: self.metrics_interval,
            metrics_retention: Duration::from_secs(u64::from(self.metrics_retention_days) * 86_400),
            metrics_token: self.metrics_token.clone(),
            data_dir: self.store.data_dir.clone(),
            engine: self.engine,
            publish: self.swarm_publish,
            quotas: longin_api::config::QuotaPolicy {
                default: longin_store::quotas::Quota {
                    apps: Some(self.quota_apps),
                    replicas: Some(self.quota_replicas),
                    memory_bytes: Some(self.quota_memory),
                },
                admins_exempt: true,
            },
            ..defaults
        }
    }
}

/// Settings of `admin create-user`.
#[derive(Debug, Clone, Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// 3–32 of a-z, 0-9, '_' and '-'.
    #[arg(long)]
    pub username: String,

    #[arg(long)]
    pub email: String,

    #[arg(long, value_enum, default_value = "user")]
    pub role: RoleArg,
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Admin,
    User,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn a_registry_is_a_host_without_a_scheme() {
        assert_eq!(parse_registry("10.0.0.5:5000/").unwrap(), "10.0.0.5:5000");
        assert_eq!(
            parse_registry("registry.example/team").unwrap(),
            "registry.example/team"
        );
        assert_eq!(parse_registry("localhost").unwrap(), "localhost");
        for bad in [
            "http://10.0.0.5:5000",
            "team",
            "",
            "Reg.Example/UPPER",
            "a b.c",
        ] {
            let err = parse_registry(bad).unwrap_err();
            assert!(err.contains("host[:port][/path]"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_agent_reaches_its_engine_by_socket_or_node_loopback_only() {
        for ok in ["unix:///var/run/docker.sock", "tcp://127.0.0.1:2375"] {
            assert_eq!(parse_agent_docker_host(ok).unwrap(), ok);
        }
        for bad in [
            "unix:///",
            "tcp://10.0.0.5:2375",
            "tcp://127.0.0.1:0",
            "tcp://127.0.0.1:99999",
            "ssh://node",
            "/var/run/docker.sock",
        ] {
            assert!(parse_agent_docker_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn client_options_go_before_or_after_the_subcommand() {
        for args in [
            "--server http://h:1 -o json --owner ada get web",
            "get web --server http://h:1 -o json --owner ada",
            "get --owner ada --output json web --server=http://h:1",
        ] {
            let cli = Cli::try_parse_from(std::iter::once("longin").chain(args.split(' ')))
                .expect("parses");
            assert_eq!(cli.client.server.as_deref(), Some("http://h:1"), "{args:?}");
            assert_eq!(cli.client.output, Some(OutputFormat::Json), "{args:?}");
            assert_eq!(cli.client.owner.as_deref(), Some("ada"), "{args:?}");
            assert!(
                matches!(&cli.command, Command::Get(GetArgs { name: Some(n) }) if n == "web"),
                "{args:?}"
            );
            assert_eq!(cli.client.misuse(&cli.command), None, "{args:?}");
        }
    }

    #[test]
    fn output_and_owner_are_refused_where_they_mean_nothing() {
        let misuse = |args: &[&str], server: Option<&str>| {
            let mut cli =
                Cli::try_parse_from(std::iter::once("longin").chain(args.iter().copied()))
                    .expect("parses");
            // Explicitly, whatever LONGIN_SERVER the tests run with.
            cli.client.server = server.map(str::to_owned);
            cli.client.misuse(&cli.command)
        };
        let describe = misuse(&["describe", "web", "-o", "json"], None).expect("refused");
        assert!(describe.contains("longin get"), "{describe}");
        let backup = misuse(&["backup", "-o", "json"], None).expect("refused");
        assert!(backup.contains("--file"), "{backup}");
        for args in [
            &["migrate", "--owner", "ada"][..],
            &["logout", "--owner", "ada"],
        ] {
            assert!(misuse(args, None).is_some(), "{args:?}");
        }
        for args in [
            &["delete", "web", "--owner", "ada"][..],
            &["logs", "web", "--owner", "ada"],
            &["top", "--owner", "ada"],
            &["apply", "-f", "-", "--owner", "ada"],
        ] {
            assert_eq!(misuse(args, None), None, "{args:?}");
        }
        let login = ["login", "--username", "ada"];
        assert!(misuse(&login, None).expect("refused").contains("--server"));
        assert_eq!(misuse(&login, Some("http://h:1")), None);
        // Servers ignore --server: an exported LONGIN_SERVER is no reason to refuse.
        assert_eq!(misuse(&["serve"], Some("http://h:1")), None);
    }

    #[test]
    fn a_backup_is_written_to_dash_f_and_dash_o_is_no_path() {
        let cli = Cli::try_parse_from(["longin", "backup", "-f", "/tmp/b.tar"]).expect("parses");
        let Command::Backup(backup) = cli.command else {
            panic!("not a backup: {:?}", cli.command);
        };
        assert_eq!(backup.file, Some(PathBuf::from("/tmp/b.tar")));
        assert!(Cli::try_parse_from(["longin", "backup", "-o", "/tmp/b.tar"]).is_err());
    }

    #[test]
    fn only_servers_log_at_info_by_default() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("longin").chain(args.iter().copied()))
                .expect("parses")
                .command
        };
        for server in [&["serve"][..], &["api"], &["controller"]] {
            assert!(parse(server).is_server(), "{server:?}");
        }
        for quiet in [
            &["migrate"][..],
            &["backup"],
            &[
                "admin",
                "create-user",
                "--username",
                "ada",
                "--email",
                "a@b.co",
            ],
            &["get"],
            &["top"],
        ] {
            assert!(!parse(quiet).is_server(), "{quiet:?}");
        }
    }

    #[test]
    fn backup_schedules_parse() {
        assert_eq!(parse_backup_schedule("off"), Ok(BackupSchedule(None)));
        assert_eq!(
            parse_backup_schedule("daily"),
            Ok(BackupSchedule(Some(Duration::from_secs(86_400))))
        );
        assert_eq!(
            parse_backup_schedule("6h"),
            Ok(BackupSchedule(Some(Duration::from_secs(6 * 3600))))
        );
        for bad in ["0m", "weekly", "5s", "400d", ""] {
            assert!(parse_backup_schedule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_range_parses_and_checks_its_bounds() {
        assert_eq!(
            parse_port_range("3100-4000"),
            Ok(PortRange {
                first: 3100,
                last: 4000
            })
        );
        assert_eq!(
            parse_port_range("5000-5000"),
            Ok(PortRange {
                first: 5000,
                last: 5000
            })
        );
        for bad in ["3100", "4000-3100", "0-10", "1-70000", "a-b"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serve_defaults_to_sqlite_in_the_data_dir_on_loopback() {
        // From the definitions, not a parse: a parse would take DATABASE_URL or
        // LONGIN_LISTEN from the environment the tests run in.
        let store = StoreArgs {
            data_dir: PathBuf::from("/tmp/x"),
            database_url: None,
            secrets_key: None,
        };
        assert_eq!(
            store.effective_database_url(),
            "sqlite:///tmp/x/longin.db?mode=rwc"
        );
        assert!(store.uses_embedded_database());
        assert_eq!(store.sqlite_dir(), Some(PathBuf::from("/tmp/x")));
        let elsewhere = StoreArgs {
            database_url: Some("sqlite:///srv/db/longin.db?mode=rwc".to_owned()),
            ..store.clone()
        };
        assert!(!elsewhere.uses_embedded_database());
        assert_eq!(elsewhere.sqlite_dir(), Some(PathBuf::from("/srv/db")));
        let postgres = StoreArgs {
            database_url: Some("postgres://h/db".to_owned()),
            ..store
        };
        assert_eq!(postgres.sqlite_dir(), None);
        let command = <Cli as clap::CommandFactory>::command();
        let serve = command.find_subcommand("serve").expect("serve");
        let listen = serve
            .get_arguments()
            .find(|a| a.get_id() == "listen")
            .expect("--listen");
        assert_eq!(listen.get_default_values(), ["127.0.0.1:3001"]);
    }
}
