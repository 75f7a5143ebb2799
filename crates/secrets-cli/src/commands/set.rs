//! `secrets set KEY [VALUE]` (the value from stdin when omitted).

use secrets::{Secret, SecretsManager};

use crate::failure::{Failure, exit};
use crate::input::read_stdin_value;

pub(crate) async fn run(
    manager: &SecretsManager,
    key: &str,
    value: Option<String>,
    provider: Option<&str>,
) -> Result<u8, Failure> {
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
        eprintln!("secrets: stored `{key}` in provider `{name}`");
    }
    Ok(0)
}
