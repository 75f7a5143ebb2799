//! The `secrets` command-line tool. The contract (commands, JSON shapes, exit codes) is used by
//! scripts and is kept stable; see `docs/user-guide.md`.

mod chain;
mod cli;
mod commands;
mod escape;
mod failure;
mod input;
mod metrics_report;
mod output;
mod state;

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;

use secrets::{Config, SecretsManager};

use crate::cli::{ChainCommand, Cli, Command};
use crate::failure::{Failure, exit};
use crate::output::say;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(Failure {
            code,
            message: Some(message),
        }) => {
            say(&format!("secrets: error: {message}"));
            ExitCode::from(code)
        }
        Err(Failure {
            code,
            message: None,
        }) => ExitCode::from(code),
    }
}

fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    // A one-shot command: no timestamps; colours only for a terminal.
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_max_level(level)
        .with_target(verbosity > 1)
        .with_ansi(io::stderr().is_terminal())
        .without_time()
        .init();
}

fn run(cli: Cli) -> Result<u8, Failure> {
    let app = cli.global.app;
    // Strict permissions (`<APP>_STRICT_PERMISSIONS=1`) apply to every file check of this
    // process, also those of components that can only log what they find.
    let permissions = secrets::PermissionPolicy::from_lookup(&app, &|name| std::env::var_os(name))
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    secrets::set_process_policy(permissions);
    match cli.command {
        // Only the commands that use the provider chain build it: `crypto` works whatever
        // the chain options say (`secrets --providers aws crypto encrypt`).
        Command::Crypto(command) => commands::crypto::run(&app, &command),
        Command::Config(command) => commands::config::run(&app, &command),
        Command::Audit(command) => commands::audit::run(&app, &command),
        Command::Completions { shell } => commands::completions::run(shell),
        Command::Chain(command) => {
            let args = command.chain_args().clone().or(&cli.chain);
            let config = chain::config(&app, &args)?;
            let manager = chain::manager(&config)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    Failure::new(exit::PROVIDER, format!("cannot start the runtime: {e}"))
                })?;
            runtime.block_on(run_chain(&config, &manager, command))
        }
    }
}

async fn run_chain(
    config: &Config,
    manager: &SecretsManager,
    command: ChainCommand,
) -> Result<u8, Failure> {
    match command {
        ChainCommand::Get {
            key, default, json, ..
        } => commands::get::run(manager, &key, default, json).await,
        ChainCommand::Set {
            key,
            value,
            provider,
            ..
        } => commands::set::run(manager, &key, value, provider.as_deref()).await,
        ChainCommand::Delete { key, provider, .. } => {
            commands::delete::run(manager, &key, provider.as_deref()).await
        }
        ChainCommand::Doctor { json, .. } => commands::doctor::run(config, manager, json).await,
    }
}
