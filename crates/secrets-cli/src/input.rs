//! Reading a value from stdin: piped or redirected as is, typed on a terminal without echo.

use std::io::{self, BufRead, IsTerminal, Read, Write};

use secrets::Secret;
use zeroize::Zeroizing;

use crate::escape;
use crate::failure::{Failure, exit};

/// The whole of stdin as bytes, without one trailing newline (`\n` or `\r\n`).
pub(crate) fn read_stdin_bytes() -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut buffer = Zeroizing::new(Vec::new());
    io::stdin().read_to_end(&mut buffer).map_err(|e| {
        Failure::new(
            exit::USAGE,
            format!("cannot read the value from stdin: {e}"),
        )
    })?;
    if buffer.ends_with(b"\n") {
        buffer.pop();
        if buffer.ends_with(b"\r") {
            buffer.pop();
        }
    }
    Ok(buffer)
}

/// Stdin as text; `code` is the exit code when it is not UTF-8.
pub(crate) fn read_stdin_text(code: u8) -> Result<Secret, Failure> {
    let mut bytes = read_stdin_bytes()?;
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Secret::new(text)),
        Err(e) => {
            zeroize::Zeroize::zeroize(&mut e.into_bytes());
            Err(Failure::new(code, "the input on stdin is not valid UTF-8"))
        }
    }
}

/// The value to store for `key`: typed without echo after a prompt on stderr when stdin is
/// a terminal, otherwise all of stdin.
pub(crate) fn read_value(key: &str) -> Result<Secret, Failure> {
    if !io::stdin().is_terminal() {
        return read_stdin_text(exit::USAGE);
    }
    eprint!("Value for `{}` (input hidden): ", escape::key(key));
    let _ = io::stderr().flush();
    let line = read_line_hidden().map_err(|e| {
        Failure::new(
            exit::USAGE,
            format!("cannot read the value from the terminal: {e}"),
        )
    })?;
    eprintln!();
    Ok(line)
}

/// One line from the terminal on stdin with echo off; echo is restored afterwards, also
/// when reading fails.
fn read_line_hidden() -> io::Result<Secret> {
    #[cfg(unix)]
    let _echo = EchoOff::new()?;
    let mut line = Zeroizing::new(String::new());
    io::stdin().lock().read_line(&mut line)?;
    let value = line
        .strip_suffix('\n')
        .map(|v| v.strip_suffix('\r').unwrap_or(v))
        .unwrap_or(&line);
    Ok(Secret::new(value))
}

/// Turns the terminal's echo off until dropped.
#[cfg(unix)]
struct EchoOff {
    saved: rustix::termios::Termios,
}

#[cfg(unix)]
impl EchoOff {
    fn new() -> io::Result<Self> {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let stdin = io::stdin();
        let saved = tcgetattr(&stdin)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        // Keep ECHONL so the user sees that Enter was taken.
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(&stdin, OptionalActions::Flush, &quiet)?;
        Ok(Self { saved })
    }
}

#[cfg(unix)]
impl Drop for EchoOff {
    fn drop(&mut self) {
        use rustix::termios::{OptionalActions, tcsetattr};
        let _ = tcsetattr(io::stdin(), OptionalActions::Now, &self.saved);
    }
}
