//! Every write to stdout goes through here: one write and a flush, and a closed pipe ends
//! the program quietly (exit 0) instead of a panic.

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
