//! Reading a value from stdin.

use std::io::{self, Read};

use secrets::Secret;
use zeroize::Zeroizing;

use crate::failure::{Failure, exit};

/// The whole of stdin as one value, without one trailing newline (`\n` or `\r\n`).
pub(crate) fn read_stdin_value() -> Result<Secret, Failure> {
    let mut buffer = Zeroizing::new(String::new());
    io::stdin().read_to_string(&mut buffer).map_err(|e| {
        Failure::new(
            exit::USAGE,
            format!("cannot read the value from stdin: {e}"),
        )
    })?;
    let value = buffer
        .strip_suffix('\n')
        .map(|v| v.strip_suffix('\r').unwrap_or(v))
        .unwrap_or(&buffer);
    Ok(Secret::new(value))
}
