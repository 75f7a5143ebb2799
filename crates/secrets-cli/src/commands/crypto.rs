//! `secrets crypto encrypt|decrypt|rotate`: stdin to stdout. Uses the credential key only,
//! never the provider chain. (`migrate-db` and `rotate-db` have modules of their own.)

use secrets::AppName;
use secrets::crypto::{CredentialCipher, CryptoError, KeyLoader, KeyOrigin};
use zeroize::Zeroizing;

use crate::cli::CryptoCommand;
use crate::failure::{Failure, exit};
use crate::input::read_stdin_text;
use crate::output::{say, write_stdout};

fn failure(e: CryptoError) -> Failure {
    Failure::new(exit::CRYPTO, e.to_string())
}

/// What a stream command does to its input.
type Transform = fn(&CredentialCipher, &str) -> Result<Zeroizing<String>, CryptoError>;

pub(crate) fn run(app: &AppName, command: &CryptoCommand) -> Result<u8, Failure> {
    let transform: Transform = match command {
        // The database commands read no stdin.
        CryptoCommand::MigrateDb => return super::migrate_db::run(app),
        CryptoCommand::RotateDb => return super::rotate_db::run(app),
        CryptoCommand::Encrypt => |cipher, input| Ok(Zeroizing::new(cipher.encrypt(input))),
        CryptoCommand::Decrypt => {
            |cipher, input| Ok(Zeroizing::new(cipher.decrypt(input)?.expose().to_owned()))
        }
        CryptoCommand::Rotate => |cipher, input| Ok(Zeroizing::new(cipher.rotate(input)?)),
    };
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
    let output = transform(&cipher, input.expose()).map_err(failure)?;
    let mut line = Zeroizing::new(String::with_capacity(output.len() + 1));
    line.push_str(&output);
    line.push('\n');
    write_stdout(&line)?;
    Ok(0)
}
