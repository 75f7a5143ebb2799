//! Reading a value from stdin: piped or redirected as is (bounded), typed on a terminal
//! without echo.

use std::io::{self, IsTerminal, Read};

use secrets::Secret;
use zeroize::{Zeroize, Zeroizing};

use crate::escape;
use crate::failure::{Failure, exit};
use crate::output::{prompt, say};

/// Largest value accepted on stdin: a secret, not a file to archive (and a bound keeps
/// `secrets set K < /dev/zero` from eating the memory).
const MAX_INPUT_BYTES: usize = 1 << 20;

/// The whole of stdin as bytes (at most [`MAX_INPUT_BYTES`]), without one trailing newline
/// (`\n` or `\r\n`). The buffer grows by copying into wiped buffers, so no stray copy of the
/// value is left behind.
pub(crate) fn read_stdin_bytes() -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut buffer = Zeroizing::new(Vec::with_capacity(4096));
    let mut chunk = [0u8; 8192];
    let mut stdin = io::stdin().lock();
    let result = loop {
        let n = match stdin.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                break Err(Failure::new(
                    exit::USAGE,
                    format!("cannot read the value from stdin: {e}"),
                ));
            }
        };
        if buffer.len() + n > MAX_INPUT_BYTES {
            break Err(Failure::new(
                exit::USAGE,
                format!(
                    "the input on stdin is larger than {} KiB",
                    MAX_INPUT_BYTES / 1024
                ),
            ));
        }
        if buffer.len() + n > buffer.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity((buffer.len() + n) * 2));
            bigger.extend_from_slice(&buffer);
            buffer = bigger;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    chunk.zeroize();
    result?;
    if buffer.ends_with(b"\n") {
        buffer.pop();
        if buffer.ends_with(b"\r") {
            buffer.pop();
        }
    }
    Ok(buffer)
}

/// Bytes as text; `code` is the exit code when they are not UTF-8.
fn text_of(mut bytes: Zeroizing<Vec<u8>>, code: u8, what: &str) -> Result<Secret, Failure> {
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Secret::new(text)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(Failure::new(code, format!("{what} is not valid UTF-8")))
        }
    }
}

/// Stdin as text; `code` is the exit code when it is not UTF-8.
pub(crate) fn read_stdin_text(code: u8) -> Result<Secret, Failure> {
    text_of(read_stdin_bytes()?, code, "the input on stdin")
}

/// The value to store for `key`: typed without echo after a prompt on stderr when stdin is
/// a terminal, otherwise all of stdin.
pub(crate) fn read_value(key: &str) -> Result<Secret, Failure> {
    if !io::stdin().is_terminal() {
        return read_stdin_text(exit::USAGE);
    }
    let typed = read_hidden(&format!(
        "Value for `{}` (input hidden; Ctrl-C cancels): ",
        escape::key(key)
    ));
    say("");
    match typed {
        Ok(Some(bytes)) => text_of(bytes, exit::USAGE, "the typed value"),
        Ok(None) => Err(Failure::new(exit::USAGE, "cancelled; nothing was stored")),
        Err(e) => Err(Failure::new(
            exit::USAGE,
            format!("cannot read the value from the terminal: {e}"),
        )),
    }
}

/// Shows `prompt_text`, then reads one line typed on the terminal on stdin with echo off;
/// `None` when cancelled (Ctrl-C).
///
/// The terminal runs in non-canonical mode without signals while reading, so Ctrl-C arrives
/// as a byte and is handled here: the terminal settings are always restored (a SIGINT would
/// kill the process with echo still off). Backspace and Ctrl-U edit the line; Enter or
/// Ctrl-D ends it.
fn read_hidden(prompt_text: &str) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    // Echo goes off before the prompt shows: whatever is typed after the prompt is hidden
    // and kept (switching modes discards type-ahead, which must not be the real input).
    #[cfg(unix)]
    let _raw = RawInput::new()?;
    prompt(prompt_text);
    let mut line = Zeroizing::new(Vec::with_capacity(256));
    let mut stdin = io::stdin().lock();
    let mut byte = [0u8; 1];
    loop {
        if stdin.read(&mut byte)? == 0 {
            return Ok(Some(line));
        }
        match byte[0] {
            b'\r' | b'\n' | 0x04 => return Ok(Some(line)),
            0x03 => return Ok(None),
            0x7f | 0x08 => {
                // Remove the last character, not just its last byte.
                while let Some(b) = line.pop() {
                    if b & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 => line.clear(),
            b if line.len() < MAX_INPUT_BYTES => {
                if line.len() == line.capacity() {
                    let mut bigger = Zeroizing::new(Vec::with_capacity(line.len() * 2));
                    bigger.extend_from_slice(&line);
                    line = bigger;
                }
                line.push(b);
            }
            _ => {}
        }
    }
}

/// The terminal on stdin without echo, line editing or signal keys, until dropped.
#[cfg(unix)]
struct RawInput {
    saved: rustix::termios::Termios,
}

#[cfg(unix)]
impl RawInput {
    fn new() -> io::Result<Self> {
        use rustix::termios::{
            LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr,
        };
        let stdin = io::stdin();
        let saved = tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.local_modes
            .remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
        raw.special_codes[SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[SpecialCodeIndex::VTIME] = 0;
        tcsetattr(&stdin, OptionalActions::Flush, &raw)?;
        Ok(Self { saved })
    }
}

#[cfg(unix)]
impl Drop for RawInput {
    fn drop(&mut self) {
        use rustix::termios::{OptionalActions, tcsetattr};
        let _ = tcsetattr(io::stdin(), OptionalActions::Now, &self.saved);
    }
}
