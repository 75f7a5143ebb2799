//! `secrets crypto encrypt|decrypt|rotate`: stdin to stdout. Uses the credential key only,
//! never the provider chain.

use secrets::AppName;
use secrets::crypto::{CryptoError, KeyLoader};
use zeroize::Zeroizing;

use crate::cli::CryptoCommand;
use crate::failure::{Failure, exit};
use crate::input::read_stdin_value;
use crate::output::write_stdout;

fn failure(e: CryptoError) -> Failure {
    Failure::new(exit::CRYPTO, e.to_string())
}

pub(crate) fn run(app: &AppName, command: &CryptoCommand) -> Result<u8, Failure> {
    let input = read_stdin_value()?;
    let cipher = KeyLoader::new(app)
        .load()
        .and_then(|keyring| keyring.cipher())
        .map_err(failure)?;
    let output = match command {
        CryptoCommand::Encrypt => Zeroizing::new(cipher.encrypt(input.expose())),
        CryptoCommand::Decrypt => Zeroizing::new(
            cipher
                .decrypt(input.expose())
                .map_err(failure)?
                .expose()
                .to_owned(),
        ),
        CryptoCommand::Rotate => Zeroizing::new(cipher.rotate(input.expose()).map_err(failure)?),
    };
    let mut line = Zeroizing::new(String::with_capacity(output.len() + 1));
    line.push_str(&output);
    line.push('\n');
    write_stdout(&line)?;
    Ok(0)
}
