//! `secrets completions SHELL`: a completion script on stdout.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::failure::Failure;
use crate::output::write_stdout;

pub(crate) fn run(shell: clap_complete::Shell) -> Result<u8, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "secrets", &mut script);
    write_stdout(&String::from_utf8_lossy(&script))?;
    Ok(0)
}
