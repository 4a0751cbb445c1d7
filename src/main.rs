//! The `longin` binary: parses the command line and dispatches.

use anyhow::Context as _;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use longin::cli::{AdminCommand, Cli, Command};
use longin::server::{self, Role, Server};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LONGIN_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
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
    }
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
