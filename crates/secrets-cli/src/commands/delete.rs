//! `secrets delete KEY`.

use secrets::SecretsManager;

use crate::failure::{Failure, exit};

pub(crate) async fn run(manager: &SecretsManager, key: &str) -> Result<u8, Failure> {
    if manager.delete(key).await? {
        Ok(0)
    } else {
        eprintln!("secrets: key `{key}` was not in the writable provider");
        Ok(exit::NOT_FOUND)
    }
}
