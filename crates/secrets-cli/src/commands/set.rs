//! `secrets set KEY [VALUE]` (the value from stdin when omitted).

use secrets::{Secret, SecretsManager};

use crate::failure::{Failure, exit};
use crate::input::read_stdin_value;

pub(crate) async fn run(
    manager: &SecretsManager,
    key: &str,
    value: Option<String>,
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
    manager.set(key, value).await?;
    if let Some(writer) = manager.writer() {
        eprintln!("secrets: stored `{key}` in provider `{}`", writer.name());
    }
    Ok(0)
}
