//! `secrets crypto migrate-db`: encrypt the credentials the original server stored in
//! plaintext, in one transaction, and scrub the old copies from the database files.

use secrets::AppName;

use crate::failure::Failure;
use crate::output::write_stdout;
use crate::state::{credential_store, finish_maintenance};

pub(crate) fn run(app: &AppName) -> Result<u8, Failure> {
    let report = match credential_store(app)? {
        Some(store) => store.encrypt_plaintext()?,
        None => return Ok(0),
    };
    write_stdout(&format!(
        "encrypted {} plaintext credential row(s) and {} configuration secret(s); {} row(s) were already encrypted\n",
        report.credentials_encrypted, report.config_secrets_encrypted, report.credentials_unchanged
    ))?;
    finish_maintenance(&report)
}
