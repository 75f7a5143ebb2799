//! `secrets crypto encrypt|decrypt|rotate`: stdin to stdout. Uses the credential key only,
//! never the provider chain.

use secrets::AppName;
use secrets::crypto::{CryptoError, KeyLoader, KeyOrigin};
use zeroize::Zeroizing;

use crate::cli::CryptoCommand;
use crate::failure::{Failure, exit};
use crate::input::read_stdin_text;
use crate::output::{say, write_stdout};

fn failure(e: CryptoError) -> Failure {
    Failure::new(exit::CRYPTO, e.to_string())
}

pub(crate) fn run(app: &AppName, command: &CryptoCommand) -> Result<u8, Failure> {
    let input = read_stdin_text(exit::CRYPTO)?;
    // Only encryption may start a new key: one made now cannot decrypt anything.
    let create = matches!(command, CryptoCommand::Encrypt);
    let keyring = KeyLoader::new(app)
        .create_if_missing(create)
        .load()
        .map_err(failure)?;
    if let KeyOrigin::Generated(path) = &keyring.origin {
        say(&format!(
            "secrets: generated a new credential key in {} (mode 0600). Back it up together \
             with the data it protects: without it, stored credentials cannot be decrypted.",
            path.display()
        ));
    }
    let cipher = keyring.cipher().map_err(failure)?;
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
