//! The `longin` binary: parses the command line and runs the command (servers through
//! `server`, the operator commands and the client commands).

use anyhow::Context as _;
use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser as _};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use longin::cli::{
    AdminCommand, BackupArgs, Cli, ClientOptions, Command, RolloutCommand, ServeArgs, TokenCommand,
};
use longin::client::{ApiClient, commands, observe, rollout, source, tokens};
use longin::server::{self, Role, Server};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(misuse) = cli.client.misuse(&cli.command) {
        Cli::command()
            .error(ErrorKind::ArgumentConflict, misuse)
            .exit();
    }
    // Servers log at info; every other command prints its results and only warnings.
    let default_level = if cli.command.is_server() {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LONGIN_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(&args, Role::All).await,
        Command::Api(args) => serve(&args, Role::ApiOnly).await,
        Command::Controller(args) => controller(&args).await,
        Command::Agent(args) => longin::agent::run(&args, cancelled_on_shutdown_signal()).await,
        Command::Backup(args) => backup(&args).await,
        Command::Restore(args) => {
            let manifest = longin::backup::restore(&args.file, &args.store).await?;
            // Migrations of a newer version than the backup's run now, not at start.
            let store = server::open_store(&args.store).await?;
            store.close().await;
            println!(
                "restored the {} backup of {} into {}; start `longin serve` on it",
                manifest.backend,
                manifest.created_at,
                args.store.data_dir.display()
            );
            Ok(())
        }
        Command::Migrate(args) => {
            let store = server::open_store(&args).await?;
            store.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::CreateUser(args),
        } => {
            let password = longin::admin::read_password()?;
            let store = server::open_store(&args.store).await?;
            let created = longin::admin::create_user(&store, &args, password).await;
            store.close().await;
            let user = created?;
            println!(
                "created {} {} (id {})",
                user.role.as_str(),
                user.username,
                user.id
            );
            Ok(())
        }
        command => client_command(&cli.client, command).await,
    }
}

/// `longin controller`: the controller, with its own /metrics and /healthz.
async fn controller(args: &ServeArgs) -> anyhow::Result<()> {
    let store = server::open_store(&args.store).await?;
    let cancel = cancelled_on_shutdown_signal();
    let bus = server::event_bus(args).await?;
    // Its own /metrics and /healthz: the reconcile, queue and leader metrics of this
    // process are nowhere else.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %args.listen, "controller metrics on /metrics");
    let router = longin_api::prometheus::standalone_router(
        args.store.data_dir.clone(),
        args.metrics_token.clone(),
    );
    let http = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(cancel.clone().cancelled_owned())
            .into_future(),
    );
    longin_controller::run(store.clone(), bus, args.controller_config(), cancel).await;
    if let Ok(Err(err)) = http.await {
        tracing::warn!(error = %err, "controller metrics server failed");
    }
    store.close().await;
    Ok(())
}

/// `longin backup`: one tar file of the store and the data dir's keys.
async fn backup(args: &BackupArgs) -> anyhow::Result<()> {
    let store = server::open_store(&args.store).await?;
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| longin::backup::default_path(&args.store.data_dir));
    let written = longin::backup::create(&store, &args.store, &file).await;
    store.close().await;
    let manifest = written?;
    println!(
        "backup of the {} store written to {}",
        manifest.backend,
        file.display()
    );
    Ok(())
}

/// The client commands: each talks to the server of the saved session and prints
/// what it answered.
async fn client_command(options: &ClientOptions, command: Command) -> anyhow::Result<()> {
    let saved = || {
        anyhow::Ok(
            ApiClient::from_saved(options.server.as_deref())?.acting_for(options.owner.clone()),
        )
    };
    let output = match command {
        Command::Login(args) => {
            let server = options
                .server
                .as_deref()
                .context("login needs --server URL (or LONGIN_SERVER)")?;
            commands::login(server, &args.username, args.password_stdin).await?
        }
        Command::Logout => commands::logout().await?,
        Command::Logs(args) => {
            return observe::logs(
                &mut saved()?,
                &args.name,
                args.follow,
                usize::try_from(args.tail).unwrap_or(usize::MAX),
                args.replica.map(i64::from),
            )
            .await;
        }
        Command::Apply(args) => commands::apply(&mut saved()?, &args.files).await?,
        Command::Get(args) => {
            commands::get(&mut saved()?, args.name.as_deref(), options.output).await?
        }
        Command::Describe(args) => commands::describe(&mut saved()?, &args.name).await?,
        Command::Delete(args) => commands::delete(&mut saved()?, &args.name).await?,
        Command::Stop(args) => commands::verb(&mut saved()?, &args.name, "stop").await?,
        Command::Start(args) => commands::verb(&mut saved()?, &args.name, "start").await?,
        Command::Restart(args) => commands::verb(&mut saved()?, &args.name, "restart").await?,
        Command::Top => observe::top(&mut saved()?).await?,
        Command::Nodes => observe::nodes(&mut saved()?, options.output).await?,
        Command::Rollout { command } => match command {
            RolloutCommand::History(args) => rollout::history(&mut saved()?, &args.name).await?,
            RolloutCommand::Undo(args) => {
                rollout::undo(&mut saved()?, &args.name, args.to_revision).await?
            }
            RolloutCommand::Status(args) => {
                rollout::status(&mut saved()?, &args.name, args.revision, args.timeout).await?
            }
        },
        Command::Redeploy(args) => rollout::redeploy(&mut saved()?, &args.name).await?,
        Command::Webhook(args) => rollout::webhook(&mut saved()?, &args.name, args.rotate).await?,
        Command::GitToken(args) => source::git_token(&mut saved()?, &args.name, args.clear).await?,
        Command::DeployKey(args) => {
            source::deploy_key(&mut saved()?, &args.name, args.rotate).await?
        }
        Command::Token { command } => match command {
            TokenCommand::Create(args) => {
                tokens::create(&mut saved()?, &args.name, args.expires_in_days).await?
            }
            TokenCommand::List => tokens::list(&mut saved()?).await?,
            TokenCommand::Revoke(args) => tokens::revoke(&mut saved()?, &args.name).await?,
        },
        Command::Kubeconfig(args) => {
            longin::client::kubeconfig::write(&mut saved()?, &args).await?
        }
        other => anyhow::bail!("{other:?} is not a client command"),
    };
    print!("{output}");
    Ok(())
}

async fn serve(args: &ServeArgs, role: Role) -> anyhow::Result<()> {
    let server = Server::build(args, args.api_config(), role).await?;
    let cancel = cancelled_on_shutdown_signal();
    server
        .run(cancel)
        .await
        .context("longin stopped with an error")
}

/// A token cancelled when the process is asked to stop (SIGTERM, Ctrl-C).
fn cancelled_on_shutdown_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            server::shutdown_signal().await;
            cancel.cancel();
        }
    });
    cancel
}
