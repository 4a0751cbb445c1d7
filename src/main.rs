//! The `longin` binary: parses the command line and runs the command (servers through
//! `server`, the operator commands and the client commands).

use anyhow::Context as _;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use longin::cli::{AdminCommand, Cli, Command, NameArgs};
use longin::client::{ApiClient, commands};
use longin::server::{self, Role, Server};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Servers log at info; client commands only print their results.
    let default_level = if cli.command.is_client() {
        "warn"
    } else {
        "info"
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
        Command::Controller(args) => {
            let store = server::open_store(&args.store).await?;
            let cancel = CancellationToken::new();
            tokio::spawn({
                let cancel = cancel.clone();
                async move {
                    server::shutdown_signal().await;
                    cancel.cancel();
                }
            });
            let bus = server::event_bus(&args).await?;
            // Its own /metrics and /healthz: the reconcile, queue and leader metrics
            // of this process are nowhere else.
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
        Command::Backup(args) => {
            let store = server::open_store(&args.store).await?;
            let output = args
                .output
                .clone()
                .unwrap_or_else(|| longin::backup::default_path(&args.store.data_dir));
            let written = longin::backup::create(&store, &args.store, &output).await;
            store.close().await;
            let manifest = written?;
            println!(
                "backup of the {} store written to {}",
                manifest.backend,
                output.display()
            );
            Ok(())
        }
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
        Command::Login(args) => {
            print!(
                "{}",
                commands::login(&args.server, &args.username, args.password_stdin).await?
            );
            Ok(())
        }
        Command::Logout => {
            print!("{}", commands::logout().await?);
            Ok(())
        }
        Command::Apply(args) => {
            let mut client = ApiClient::from_saved(args.server.as_deref())?;
            print!("{}", commands::apply(&mut client, &args.files).await?);
            Ok(())
        }
        Command::Get(args) => {
            let mut client = ApiClient::from_saved(args.server.as_deref())?;
            print!(
                "{}",
                commands::get(&mut client, args.name.as_deref(), args.output).await?
            );
            Ok(())
        }
        Command::Describe(args) => named(&args, |c, n| Box::pin(commands::describe(c, n))).await,
        Command::Delete(args) => named(&args, |c, n| Box::pin(commands::delete(c, n))).await,
        Command::Stop(args) => named(&args, |c, n| Box::pin(commands::verb(c, n, "stop"))).await,
        Command::Start(args) => named(&args, |c, n| Box::pin(commands::verb(c, n, "start"))).await,
        Command::Restart(args) => {
            named(&args, |c, n| Box::pin(commands::verb(c, n, "restart"))).await
        }
        Command::Logs(args) => {
            let mut client = ApiClient::from_saved(args.server.as_deref())?;
            longin::client::observe::logs(
                &mut client,
                &args.name,
                args.follow,
                usize::try_from(args.tail).unwrap_or(usize::MAX),
                args.replica.map(i64::from),
            )
            .await
        }
        Command::Top(args) => {
            let mut client = ApiClient::from_saved(args.server.as_deref())?;
            print!("{}", longin::client::observe::top(&mut client).await?);
            Ok(())
        }
    }
}

type CommandFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<String>> + 'a>>;

/// Runs a command on one application with the saved session and prints its output.
async fn named(
    args: &NameArgs,
    command: impl for<'a> FnOnce(&'a mut ApiClient, &'a str) -> CommandFuture<'a>,
) -> anyhow::Result<()> {
    let mut client = ApiClient::from_saved(args.server.as_deref())?;
    print!("{}", command(&mut client, &args.name).await?);
    Ok(())
}

async fn serve(args: &longin::cli::ServeArgs, role: Role) -> anyhow::Result<()> {
    let server = Server::build(args, args.api_config(), role).await?;
    let cancel = CancellationToken::new();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            server::shutdown_signal().await;
            cancel.cancel();
        }
    });
    server
        .run(cancel)
        .await
        .context("longin stopped with an error")
}
