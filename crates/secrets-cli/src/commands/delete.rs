//! `secrets delete KEY`.

use secrets::SecretsManager;

use crate::escape;
use crate::failure::{Failure, exit};

pub(crate) async fn run(
    manager: &SecretsManager,
    key: &str,
    provider: Option<&str>,
) -> Result<u8, Failure> {
    let existed = match provider {
        Some(name) => manager.delete_in(name, key).await?,
        None => manager.delete(key).await?,
    };
    if existed {
        Ok(0)
    } else {
        eprintln!(
            "secrets: key `{}` was not in the writable provider",
            escape::key(key)
        );
        Ok(exit::NOT_FOUND)
    }
}
