//! The command line: clap types only. Each command's behaviour lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use secrets::{AppName, ProviderKind};

#[derive(Debug, Parser)]
#[command(
    name = "secrets",
    version,
    about = "Resolve application secrets through env > file > ... providers"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// Chain options given before the command (`secrets --providers env get K`).
    #[command(flatten)]
    pub(crate) chain: ChainArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Application name: sets ~/.<app>/ and the <APP>_* configuration variables
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        default_value = secrets::DEFAULT_APP_NAME,
        value_parser = parse_app_name,
    )]
    pub(crate) app: AppName,
    /// More logs on stderr (-v info, -vv debug, -vvv trace); values are never logged
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// Options of the commands that resolve or write secrets through the provider chain. They
/// are accepted before the command and after it; after it wins.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct ChainArgs {
    /// Secrets file to read and write (default: first existing of ~/.<app>/secrets.{json,yaml,yml})
    #[arg(long, value_name = "PATH")]
    pub(crate) secrets_file: Option<PathBuf>,
    /// Prefix of environment variables (PREFIX_KEY)
    #[arg(long, value_name = "P")]
    pub(crate) env_prefix: Option<String>,
    /// Providers to use, in order (comma-separated: env,file,aws,vault)
    #[arg(long, value_name = "LIST", value_parser = parse_providers)]
    pub(crate) providers: Option<ProviderList>,
}

impl ChainCommand {
    /// The chain options given after the command.
    pub(crate) fn chain_args(&self) -> &ChainArgs {
        match self {
            Self::Get { chain, .. }
            | Self::Set { chain, .. }
            | Self::Delete { chain, .. }
            | Self::Doctor { chain, .. } => chain,
        }
    }
}

impl ChainArgs {
    /// These options, with `before` (given before the command) filling the gaps.
    pub(crate) fn or(self, before: &ChainArgs) -> ChainArgs {
        ChainArgs {
            secrets_file: self.secrets_file.or_else(|| before.secrets_file.clone()),
            env_prefix: self.env_prefix.or_else(|| before.env_prefix.clone()),
            providers: self.providers.or_else(|| before.providers.clone()),
        }
    }
}

/// The value of `--providers` (one argument holding a comma-separated list).
#[derive(Debug, Clone)]
pub(crate) struct ProviderList(pub(crate) Vec<ProviderKind>);

fn parse_providers(list: &str) -> Result<ProviderList, String> {
    let kinds = ProviderKind::parse_list(list).map_err(|e| e.to_string())?;
    if kinds.is_empty() {
        return Err("the provider list is empty".to_owned());
    }
    Ok(ProviderList(kinds))
}

fn parse_app_name(name: &str) -> Result<AppName, String> {
    AppName::new(name).map_err(|e| e.to_string())
}

/// A key: anything but empty (control characters are allowed, and escaped in messages).
fn parse_key(key: &str) -> Result<String, String> {
    if key.is_empty() {
        Err("the key is empty".to_owned())
    } else {
        Ok(key.to_owned())
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    #[command(flatten)]
    Chain(ChainCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Encrypt, decrypt or re-encrypt credentials (stdin to stdout, stored format)
    #[command(
        subcommand,
        long_about = "Encrypt, decrypt or re-encrypt credentials, from stdin to stdout, in the \
            stored format of the original server (URL-safe base64 of a Fernet token).\n\n\
            The key: the passphrase in $<APP>_CREDENTIAL_KEY (SIMPLETUNER_CREDENTIAL_KEY), \
            else the file ~/.<app>/credential.key, which is generated (mode 0600) when \
            missing; back it up. Previous passphrases for rotation: \
            $<APP>_CREDENTIAL_KEY_PREVIOUS. The provider chain is not used."
    )]
    Crypto(CryptoCommand),
    /// Cloud training providers' configuration (replicate, modal, ...): JSON in and out
    #[command(
        subcommand,
        long_about = "Cloud training providers' configuration (replicate, modal, ...): one JSON \
            object per provider in <state>/cloud/jobs.db, the SimpleTuner server's database.\n\n\
            The state directory: $<APP>_STATE_DIR, else $<APP>_CONFIG_DIR, else the server's \
            default (/workspace/<app>, /notebooks/<app> or ~/.<app>). Every change is recorded \
            in the audit trail <state>/audit.db (key names, never values). webhook_secret is a \
            credential: it is stored encrypted with the credential key (see `secrets crypto`)."
    )]
    Config(ConfigCommand),
    /// The tamper-evident audit trail of configuration and credential changes
    #[command(
        subcommand,
        long_about = "The tamper-evident audit trail <state>/audit.db: an HMAC chain signed with \
            $<APP>_AUDIT_KEY, else the key file <state>/audit.key."
    )]
    Audit(AuditCommand),
}

/// The commands that go through the provider chain.
#[derive(Debug, Subcommand)]
pub(crate) enum ChainCommand {
    /// Print a secret's value on stdout (exit 1 when not found)
    Get {
        /// The key, e.g. HF_TOKEN (the env provider also accepts hf-token)
        #[arg(value_parser = parse_key)]
        key: String,
        /// Printed when no provider has the key (exit 0)
        #[arg(long, value_name = "V")]
        default: Option<String>,
        /// Print {"key","found","value","provider"} as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Store a secret in the writable provider (the secrets file)
    Set {
        /// The key
        #[arg(value_parser = parse_key)]
        key: String,
        /// The value; when omitted, typed without echo on a terminal, or read from stdin
        /// (one trailing newline dropped). Prefer these: arguments are visible to other users
        /// in the process list.
        value: Option<String>,
        /// Write to this provider of the chain instead of the default writer (the file)
        #[arg(long, value_name = "NAME")]
        provider: Option<String>,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Remove a secret from the writable provider (exit 1 when it was not there)
    Delete {
        /// The key
        #[arg(value_parser = parse_key)]
        key: String,
        /// Delete from this provider of the chain instead of the default writer (the file)
        #[arg(long, value_name = "NAME")]
        provider: Option<String>,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Check every provider: configured, available, reachable, latency, error
    Doctor {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        chain: ChainArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CryptoCommand {
    /// Encrypt the credential on stdin (one trailing newline dropped)
    Encrypt,
    /// Decrypt the stored value on stdin
    Decrypt,
    /// Re-encrypt the stored value on stdin under the current key
    Rotate,
    /// Encrypt every credential the server stored in plaintext in <state>/cloud/jobs.db, in
    /// one transaction, and scrub the old copies from the database files
    MigrateDb,
    /// Re-encrypt every credential in <state>/cloud/jobs.db under the current key, in one
    /// transaction (previous keys: $<APP>_CREDENTIAL_KEY_PREVIOUS)
    RotateDb,
}

/// `secrets config ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print a provider's configuration as a JSON object ({} when it has none)
    Get {
        /// The cloud provider, e.g. replicate
        provider: String,
        /// Print credential fields (webhook_secret) as stored instead of [REDACTED]
        #[arg(long)]
        reveal: bool,
    },
    /// Replace a provider's configuration with a JSON object
    Set {
        /// The cloud provider
        provider: String,
        /// The JSON object; read from stdin when omitted. Prefer stdin when it holds a
        /// credential (webhook_secret): arguments are visible to other users in the process list.
        json: Option<String>,
        /// Create a credential key when there is none and a credential must be encrypted
        /// (refused when the database holds credentials encrypted under another key)
        #[arg(long)]
        create_key: bool,
        /// Print credential fields as stored instead of [REDACTED]
        #[arg(long)]
        reveal: bool,
    },
    /// Merge a JSON object into a provider's configuration (each key given replaces the
    /// stored one); prints the result
    Update {
        /// The cloud provider
        provider: String,
        /// The JSON object; read from stdin when omitted (prefer stdin for credentials)
        json: Option<String>,
        /// Create a credential key when there is none and a credential must be encrypted
        /// (refused when the database holds credentials encrypted under another key)
        #[arg(long)]
        create_key: bool,
        /// Print credential fields as stored instead of [REDACTED]
        #[arg(long)]
        reveal: bool,
    },
    /// Delete a provider's configuration (exit 1 when it had none)
    Delete {
        /// The cloud provider
        provider: String,
    },
    /// List the providers that have a configuration
    List {
        /// Print a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Copy the SQLite store (configuration, credentials, audit chain) to PostgreSQL
    #[command(
        long_about = "Copy the SQLite store under the state directory (<state>/cloud/jobs.db: \
            every provider configuration and credential, as stored, so encrypted values stay \
            the same ciphertext; <state>/audit.db: the audit chain with its ids, hashes and row \
            MACs) to a PostgreSQL database, for several server replicas sharing one store.\n\n\
            All or nothing, in one transaction. Rows the database already holds are left \
            alone, so running it twice copies nothing the second time; a row that differs \
            there (changed after an earlier copy) stops the copy with nothing written. The \
            source chain is verified before the copy and the copied chain after it, with the \
            audit key ($<APP>_AUDIT_KEY, else <state>/audit.key): every replica needs that \
            same key. Exit 0 copied, 1 no SQLite store, 3 refused or failed, 4 key problem."
    )]
    Migrate {
        /// The target: postgres://USER@HOST:PORT/DBNAME?sslmode=verify-full (default:
        /// $<APP>_DATABASE_URL; prefer the variable when the URL holds a password:
        /// arguments are visible to other users in the process list)
        #[arg(long, value_name = "URL")]
        to: Option<String>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
}

/// `secrets audit ...`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// List entries, newest first
    List {
        /// Print a JSON array of entries
        #[arg(long)]
        json: bool,
        /// Only this event type (repeatable), e.g. provider.configured
        #[arg(long = "event-type", value_name = "TYPE")]
        event_types: Vec<String>,
        /// Only this actor: a user id, or a user name
        #[arg(long, value_name = "ID|NAME")]
        actor: Option<String>,
        /// Only this kind of target, e.g. provider
        #[arg(long, value_name = "TYPE")]
        target_type: Option<String>,
        /// Only this target, e.g. replicate
        #[arg(long, value_name = "ID")]
        target_id: Option<String>,
        /// Only entries at or after this time (ISO-8601, e.g. 2026-01-31 or 2026-01-31T12:00:00Z)
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// At most this many entries
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Skip this many of the newest entries
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// Check the chain: exit 0 when intact, 3 when broken (naming the first bad row)
    Verify {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
}
