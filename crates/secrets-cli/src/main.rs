//! The `secrets` command-line tool. The contract (commands, JSON shapes, exit codes) is used by
//! scripts and is kept stable; see `docs/user-guide.md`.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use secrets::{Config, ProviderKind, Secret, SecretsError, SecretsManager};
use zeroize::Zeroizing;

/// Exit codes of the contract.
mod exit {
    pub(crate) const NOT_FOUND: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const PROVIDER: u8 = 3;
    pub(crate) const CRYPTO: u8 = 4;
}

#[derive(Debug, Parser)]
#[command(
    name = "secrets",
    version,
    about = "Resolve application secrets through env > file > ... providers"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Secrets file to read and write (default: first existing of ~/.<app>/secrets.{json,yaml,yml})
    #[arg(long, global = true, value_name = "PATH")]
    secrets_file: Option<PathBuf>,
    /// Application name: sets ~/.<app>/ and the <APP>_* configuration variables
    #[arg(long, global = true, value_name = "NAME", default_value = secrets::DEFAULT_APP_NAME)]
    app: String,
    /// Prefix of environment variables (PREFIX_KEY)
    #[arg(long, global = true, value_name = "P")]
    env_prefix: Option<String>,
    /// Providers to use, in order (comma-separated: env,file,aws,vault)
    #[arg(long, global = true, value_name = "LIST", value_parser = parse_providers)]
    providers: Option<ProviderList>,
    /// More logs on stderr (-v info, -vv debug, -vvv trace); values are never logged
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// The value of `--providers` (one argument holding a comma-separated list).
#[derive(Debug, Clone)]
struct ProviderList(Vec<ProviderKind>);

fn parse_providers(list: &str) -> Result<ProviderList, String> {
    let kinds = ProviderKind::parse_list(list).map_err(|e| e.to_string())?;
    if kinds.is_empty() {
        return Err("the provider list is empty".to_owned());
    }
    Ok(ProviderList(kinds))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a secret's value on stdout (exit 1 when not found)
    Get {
        /// The key, e.g. HF_TOKEN (the env provider also accepts hf-token)
        key: String,
        /// Printed when no provider has the key (exit 0)
        #[arg(long, value_name = "V")]
        default: Option<String>,
        /// Print {"key","found","value","provider"} as JSON
        #[arg(long)]
        json: bool,
    },
    /// Store a secret in the writable provider (the secrets file)
    Set {
        /// The key
        key: String,
        /// The value; read from stdin when omitted (one trailing newline is dropped).
        /// Prefer stdin: arguments are visible to other users in the process list.
        value: Option<String>,
    },
    /// Remove a secret from the writable provider (exit 1 when it was not there)
    Delete {
        /// The key
        key: String,
    },
    /// Check every provider: configured, available, reachable, latency, error
    Doctor {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Encrypt, decrypt or re-encrypt credentials (stdin to stdout, stored format)
    #[command(subcommand)]
    Crypto(CryptoCommand),
}

#[derive(Debug, Subcommand)]
enum CryptoCommand {
    /// Encrypt the credential on stdin (one trailing newline dropped)
    Encrypt,
    /// Decrypt the stored value on stdin
    Decrypt,
    /// Re-encrypt the stored value on stdin under the current key
    Rotate,
}

/// A failure with the exit code it maps to. Messages never contain secret values.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<SecretsError> for Failure {
    fn from(e: SecretsError) -> Self {
        Self::new(exit::PROVIDER, e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("secrets: error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_max_level(level)
        .with_target(verbosity > 1)
        .init();
}

fn config(global: &GlobalArgs) -> Config {
    let mut config = Config::from_lookup(&global.app, |name| std::env::var(name).ok());
    if let Some(path) = &global.secrets_file {
        config.file_path = Some(path.clone());
    }
    if let Some(prefix) = &global.env_prefix {
        config.env_prefix = Some(prefix.clone());
    }
    if let Some(ProviderList(kinds)) = &global.providers {
        config.providers = Some(kinds.clone());
    }
    // One process, one lookup: caching buys nothing here.
    config.cache_ttl = Duration::ZERO;
    config
}

fn run(cli: Cli) -> Result<u8, Failure> {
    let manager = config(&cli.global)
        .build()
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(exit::PROVIDER, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        match cli.command {
            Command::Get { key, default, json } => get(&manager, &key, default, json).await,
            Command::Set { key, value } => set(&manager, &key, value).await,
            Command::Delete { key } => delete(&manager, &key).await,
            Command::Doctor { json } => doctor(&manager, json).await,
            Command::Crypto(command) => crypto(&cli.global.app, &command),
        }
    })
}

async fn get(
    manager: &SecretsManager,
    key: &str,
    default: Option<String>,
    json: bool,
) -> Result<u8, Failure> {
    let resolved = manager.get_with_source(key).await?;
    let found = resolved.is_some();
    let (value, provider) = match resolved {
        Some(r) => (Some(r.value), Some(r.provider)),
        None => (default.map(Secret::new), None),
    };
    let mut out = io::stdout().lock();
    let written = if json {
        let document = Zeroizing::new(
            serde_json::json!({
                "key": key,
                "found": found,
                "value": value.as_ref().map(Secret::expose),
                "provider": provider,
            })
            .to_string(),
        );
        writeln!(out, "{}", document.as_str())
    } else {
        match &value {
            Some(v) => writeln!(out, "{}", v.expose()),
            None => Ok(()),
        }
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(exit::PROVIDER, format!("cannot write to stdout: {e}")))?;
    if value.is_some() {
        Ok(0)
    } else {
        if !json {
            let names = manager.provider_names().join(", ");
            eprintln!("secrets: key `{key}` not found (providers: {names})");
        }
        Ok(exit::NOT_FOUND)
    }
}

async fn set(manager: &SecretsManager, key: &str, value: Option<String>) -> Result<u8, Failure> {
    let value = match value {
        Some(v) => Secret::new(v),
        None => read_stdin_value()?,
    };
    if value.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            format!("refusing to store an empty value for key `{key}`"),
        ));
    }
    manager.set(key, value).await?;
    if let Some(writer) = manager.writer() {
        eprintln!("secrets: stored `{key}` in provider `{}`", writer.name());
    }
    Ok(0)
}

fn crypto(app: &str, command: &CryptoCommand) -> Result<u8, Failure> {
    use secrets::crypto::{ExposeSecret, KeyLoader};
    let crypto_failure =
        |e: secrets::crypto::CryptoError| Failure::new(exit::CRYPTO, e.to_string());
    let input = read_stdin_value()?;
    let cipher = KeyLoader::new(app)
        .load()
        .and_then(|keyring| keyring.cipher())
        .map_err(crypto_failure)?;
    let output = match command {
        CryptoCommand::Encrypt => Zeroizing::new(cipher.encrypt(input.expose())),
        CryptoCommand::Decrypt => {
            let plain = cipher.decrypt(input.expose()).map_err(crypto_failure)?;
            Zeroizing::new(plain.expose_secret().to_owned())
        }
        CryptoCommand::Rotate => {
            Zeroizing::new(cipher.rotate(input.expose()).map_err(crypto_failure)?)
        }
    };
    let mut out = io::stdout().lock();
    writeln!(out, "{}", output.as_str())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(exit::PROVIDER, format!("cannot write to stdout: {e}")))?;
    Ok(0)
}

fn read_stdin_value() -> Result<Secret, Failure> {
    let mut buffer = Zeroizing::new(String::new());
    io::stdin().read_to_string(&mut buffer).map_err(|e| {
        Failure::new(
            exit::USAGE,
            format!("cannot read the value from stdin: {e}"),
        )
    })?;
    let value = buffer
        .strip_suffix('\n')
        .map(|v| v.strip_suffix('\r').unwrap_or(v))
        .unwrap_or(&buffer);
    Ok(Secret::new(value))
}

async fn delete(manager: &SecretsManager, key: &str) -> Result<u8, Failure> {
    if manager.delete(key).await? {
        Ok(0)
    } else {
        eprintln!("secrets: key `{key}` was not in the writable provider");
        Ok(exit::NOT_FOUND)
    }
}

/// One row of the doctor report.
struct DoctorRow {
    name: String,
    configured: bool,
    available: bool,
    reachable: bool,
    latency: Option<Duration>,
    error: Option<String>,
}

async fn doctor(manager: &SecretsManager, json: bool) -> Result<u8, Failure> {
    let mut rows: Vec<DoctorRow> = manager
        .health_report()
        .await
        .into_iter()
        .map(|h| DoctorRow {
            name: h.provider,
            configured: true,
            available: h.available,
            reachable: h.reachable,
            latency: Some(h.latency),
            error: h.error,
        })
        .collect();
    for kind in ProviderKind::ALL {
        if !rows.iter().any(|r| r.name == kind.name()) {
            let why = if kind.is_compiled() {
                "not configured or not selected"
            } else {
                "not compiled into this build"
            };
            rows.push(DoctorRow {
                name: kind.name().to_owned(),
                configured: false,
                available: false,
                reachable: false,
                latency: None,
                error: Some(why.to_owned()),
            });
        }
    }
    let writer = manager.writer().map(|w| w.name().to_owned());
    // A provider that is not available (say, no secrets file) is skipped by lookups, so only
    // an available provider that fails its round trip makes the chain unhealthy.
    let healthy = rows.iter().all(|r| !r.available || r.reachable);
    if json {
        let providers: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "configured": r.configured,
                    "available": r.available,
                    "reachable": r.reachable,
                    "latency_ms": r.latency.map(|l| l.as_secs_f64() * 1000.0),
                    "error": r.error,
                })
            })
            .collect();
        let document =
            serde_json::json!({ "providers": providers, "writer": writer, "healthy": healthy });
        println!("{document}");
    } else {
        println!(
            "{:<8} {:<10} {:<9} {:<9} {:>10}  ERROR",
            "PROVIDER", "CONFIGURED", "AVAILABLE", "REACHABLE", "LATENCY"
        );
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        for r in &rows {
            let latency = r.latency.map_or_else(
                || "-".to_owned(),
                |l| format!("{:.2} ms", l.as_secs_f64() * 1000.0),
            );
            println!(
                "{:<8} {:<10} {:<9} {:<9} {:>10}  {}",
                r.name,
                yes_no(r.configured),
                yes_no(r.available),
                yes_no(r.reachable),
                latency,
                r.error.as_deref().unwrap_or("-"),
            );
        }
        println!("writes go to: {}", writer.as_deref().unwrap_or("(none)"));
    }
    Ok(if healthy { 0 } else { exit::PROVIDER })
}
