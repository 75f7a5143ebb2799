//! `secrets set KEY [VALUE]` (the value from stdin when omitted).

use secrets::{Location, Secret, SecretsManager};

use crate::escape;
use crate::failure::{Failure, exit};
use crate::input::read_value;

pub(crate) async fn run(
    manager: &SecretsManager,
    key: &str,
    value: Option<String>,
    provider: Option<&str>,
) -> Result<u8, Failure> {
    let shown = escape::key(key);
    let value = match value {
        Some(v) => Secret::new(v),
        None => read_value(key)?,
    };
    if value.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            format!("refusing to store an empty value for key `{shown}`"),
        ));
    }
    let written_to = match provider {
        Some(name) => {
            manager.set_in(name, key, value).await?;
            Some(name.to_owned())
        }
        None => {
            manager.set(key, value).await?;
            manager.writer().map(|w| w.name().to_owned())
        }
    };
    if let Some(name) = written_to {
        eprintln!("secrets: stored `{shown}` in provider `{name}`");
        warn_if_shadowed(manager, key, &name).await;
    }
    Ok(0)
}

/// Says so when a provider earlier in the chain still answers for `key`, so the value just
/// written is not what lookups return.
async fn warn_if_shadowed(manager: &SecretsManager, key: &str, written_to: &str) {
    let Ok(Some(found)) = manager.get_with_source(key).await else {
        return;
    };
    if found.provider == written_to {
        return;
    }
    let location = manager
        .lookup_locations(key)
        .into_iter()
        .find(|(provider, _)| *provider == found.provider)
        .and_then(|(_, location)| location);
    let where_ = match location {
        Some(Location::Variable(name)) => format!(" (variable ${name})"),
        Some(other) => format!(" ({other})"),
        None => String::new(),
    };
    eprintln!(
        "secrets: note: provider `{}`{where_} also has `{}` and comes first in the chain; \
         lookups still return that value",
        found.provider,
        escape::key(key)
    );
}
