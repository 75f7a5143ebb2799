//! `secrets config get|set|update|delete|list`: cloud training providers' configuration,
//! JSON in and out.

use secrets::AppName;
use secrets::config::{
    CREDENTIAL_KEYS, CloudProviderConfig, ConfigStore, StoreError, StoreSettings, looks_encrypted,
};
use serde_json::{Map, Value};

use crate::cli::ConfigCommand;
use crate::escape;
use crate::failure::{Failure, exit};
use crate::input::read_stdin_text;
use crate::output::write_stdout;
use crate::state;

pub(crate) fn run(app: &AppName, command: &ConfigCommand) -> Result<u8, Failure> {
    let settings = state::settings(app)?;
    match command {
        ConfigCommand::Migrate { to, json } => {
            super::config_migrate::run(app, settings, to.as_deref(), *json)
        }
        ConfigCommand::Get { provider, reveal } => {
            // Reading creates nothing: no database yet means no configuration.
            let config = match reader(&settings)? {
                Some(store) => store.get(provider)?,
                None => CloudProviderConfig::default(),
            };
            warn_about_plaintext(provider, &config);
            print_config(config, *reveal)?;
            Ok(0)
        }
        ConfigCommand::List { json } => {
            let providers = match reader(&settings)? {
                Some(store) => store.list()?,
                None => Vec::new(),
            };
            if *json {
                print_json(&Value::from(providers))?;
            } else if !providers.is_empty() {
                // A name the original stored may hold control characters: shown escaped,
                // so it cannot forge or hide lines.
                let lines: Vec<String> = providers.iter().map(|p| escape::key(p)).collect();
                write_stdout(&format!("{}\n", lines.join("\n")))?;
            }
            Ok(0)
        }
        ConfigCommand::Set {
            provider,
            json,
            create_key,
            reveal,
        } => {
            let config = read_object(json.as_deref())?;
            let store = writer(&settings, *create_key)?;
            let saved = store.save(provider, config);
            say_if_key_created(&store);
            saved.map_err(|e| state::hint_create_key(e, *create_key))?;
            print_config(store.get(provider)?, *reveal)?;
            Ok(0)
        }
        ConfigCommand::Update {
            provider,
            json,
            create_key,
            reveal,
        } => {
            let updates = read_object(json.as_deref())?;
            let store = writer(&settings, *create_key)?;
            let stored = store.update(provider, updates);
            say_if_key_created(&store);
            print_config(
                stored.map_err(|e| state::hint_create_key(e, *create_key))?,
                *reveal,
            )?;
            Ok(0)
        }
        ConfigCommand::Delete { provider } => {
            let deleted =
                state::store_exists(&settings) && writer(&settings, false)?.delete(provider)?;
            if deleted {
                Ok(0)
            } else {
                eprintln!(
                    "secrets: provider `{}` has no configuration",
                    escape::key(provider)
                );
                Ok(exit::NOT_FOUND)
            }
        }
    }
}

/// A store for reading: opened read-only (nothing created, migrated or written, so it
/// works on a read-only database), no audit trail, the key never needed.
/// `None` when nothing was ever stored (no `jobs.db`; a PostgreSQL database without the
/// store's tables).
fn reader(settings: &StoreSettings) -> Result<Option<ConfigStore>, Failure> {
    if !state::store_exists(settings) {
        return Ok(None);
    }
    match ConfigStore::builder_at(settings.jobs_location())
        .read_only()
        .open()
    {
        Ok(store) => Ok(Some(store)),
        Err(StoreError::Uninitialized { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The application's store, audited, acting as the user running the command. A credential
/// key is created only with `--create-key`.
fn writer(settings: &StoreSettings, create_key: bool) -> Result<ConfigStore, Failure> {
    Ok(ConfigStore::open_with(settings, create_key)?.acting_as(state::actor()))
}

/// A new credential key is said loudly, naming its file.
fn say_if_key_created(store: &ConfigStore) {
    if let Some(path) = store.generated_key_file() {
        eprintln!(
            "secrets: warning: generated a new credential key in {} (mode 0600). Back it up \
             together with the database: without it, the stored credentials cannot be decrypted.",
            path.display()
        );
    }
}

/// The value shown for a credential field unless `--reveal` is given.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Prints a configuration, its credential fields redacted unless `reveal`.
fn print_config(config: CloudProviderConfig, reveal: bool) -> Result<(), Failure> {
    let mut map = config.into_map();
    if !reveal {
        for key in CREDENTIAL_KEYS {
            if let Some(value) = map.get_mut(*key)
                && !value.is_null()
                && value.as_str() != Some("")
            {
                *value = Value::String(REDACTED.to_owned());
            }
        }
    }
    print_json(&Value::Object(map))
}

/// The JSON object given as an argument, else on stdin.
fn read_object(argument: Option<&str>) -> Result<Map<String, Value>, Failure> {
    let input = match argument {
        Some(text) => secrets::Secret::new(text),
        None => read_stdin_text(exit::USAGE)?,
    };
    // serde_json's messages give a position, never the text (which may hold a secret).
    match serde_json::from_str::<Value>(input.expose()) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::new(
            exit::USAGE,
            "the configuration must be a JSON object ({\"key\": value, ...})",
        )),
        Err(e) => Err(Failure::new(
            exit::USAGE,
            format!("the configuration is not valid JSON: {e}"),
        )),
    }
}

fn print_json(value: &Value) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(exit::PROVIDER, format!("cannot format JSON: {e}")))?;
    text.push('\n');
    write_stdout(&text)
}

/// The original stored credentials in plaintext; say so (without the value).
fn warn_about_plaintext(provider: &str, config: &CloudProviderConfig) {
    for key in CREDENTIAL_KEYS {
        if let Some(Value::String(stored)) = config.get(*key)
            && !stored.is_empty()
            && !looks_encrypted(stored)
        {
            eprintln!(
                "secrets: warning: `{key}` of provider `{}` is stored in plaintext; run `secrets crypto migrate-db`",
                escape::key(provider)
            );
        }
    }
}
