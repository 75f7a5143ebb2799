//! `secrets config get|set|update|delete|list`: cloud training providers' configuration,
//! JSON in and out.

use secrets::AppName;
use secrets::config::{
    CREDENTIAL_KEYS, CloudProviderConfig, ConfigStore, StoreSettings, looks_encrypted,
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
        ConfigCommand::Get { provider } => {
            // Reading creates nothing: no database yet means no configuration.
            let config = match state::store_exists(&settings) {
                true => reader(&settings)?.get(provider)?,
                false => CloudProviderConfig::default(),
            };
            warn_about_plaintext(provider, &config);
            print_json(&Value::Object(config.into_map()))?;
            Ok(0)
        }
        ConfigCommand::List { json } => {
            let providers = match state::store_exists(&settings) {
                true => reader(&settings)?.list()?,
                false => Vec::new(),
            };
            if *json {
                print_json(&Value::from(providers))?;
            } else if !providers.is_empty() {
                write_stdout(&format!("{}\n", providers.join("\n")))?;
            }
            Ok(0)
        }
        ConfigCommand::Set { provider, json } => {
            let config = read_object(json.as_deref())?;
            let store = writer(&settings)?;
            store.save(provider, config)?;
            print_json(&Value::Object(store.get(provider)?.into_map()))?;
            Ok(0)
        }
        ConfigCommand::Update { provider, json } => {
            let updates = read_object(json.as_deref())?;
            let stored = writer(&settings)?.update(provider, updates)?;
            print_json(&Value::Object(stored.into_map()))?;
            Ok(0)
        }
        ConfigCommand::Delete { provider } => {
            let deleted = state::store_exists(&settings) && writer(&settings)?.delete(provider)?;
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

/// A store for reading: no audit trail (nothing to record), the key never needed.
fn reader(settings: &StoreSettings) -> Result<ConfigStore, Failure> {
    Ok(ConfigStore::builder_at(settings.jobs_location()).open()?)
}

/// The application's store, audited, acting as the user running the command.
fn writer(settings: &StoreSettings) -> Result<ConfigStore, Failure> {
    Ok(ConfigStore::open(settings)?.acting_as(state::actor()))
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
