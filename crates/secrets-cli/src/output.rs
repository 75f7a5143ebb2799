//! Every write to stdout and stderr goes through here. On stdout: one write and a flush, and
//! a closed pipe ends the program quietly (exit 0) instead of a panic. On stderr: messages
//! for a person; a full disk or a closed pipe there must not turn a finished command into a
//! crash (`eprintln!` panics on both), so failures to write them are ignored.

use std::io::{self, Write};

use crate::failure::{Failure, exit};

/// Writes `text` to stdout and flushes it.
pub(crate) fn write_stdout(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Failure::closed_pipe()),
        Err(e) => Err(Failure::new(
            exit::PROVIDER,
            format!("cannot write to stdout: {e}"),
        )),
    }
}

/// Writes a line for a person to stderr; errors are ignored (see the module documentation).
pub(crate) fn say(line: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
    let _ = err.flush();
}

/// Writes a prompt (no line break) to stderr; errors are ignored.
pub(crate) fn prompt(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}
