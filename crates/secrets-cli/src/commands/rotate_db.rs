//! `secrets crypto rotate-db`: re-encrypt every stored credential under the current key, in
//! one transaction (interrupted, nothing changes), and scrub the old copies.

use secrets::AppName;

use crate::failure::Failure;
use crate::output::write_stdout;
use crate::state::{credential_store, finish_maintenance};

pub(crate) fn run(app: &AppName) -> Result<u8, Failure> {
    let report = match credential_store(app)? {
        Some(store) => store.rotate_to_current_key()?,
        None => return Ok(0),
    };
    write_stdout(&format!(
        "re-encrypted {} credential row(s) and {} configuration secret(s) under the current key; encrypted {} plaintext row(s) and {} plaintext secret(s); {} row(s) were already current\n",
        report.credentials_rotated,
        report.config_secrets_rotated,
        report.credentials_encrypted,
        report.config_secrets_encrypted,
        report.credentials_unchanged
    ))?;
    finish_maintenance(&report)
}
