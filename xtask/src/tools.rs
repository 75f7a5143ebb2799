//! Cargo tools that CI needs (cargo-deny; cargo-fuzz for `cargo xtask fuzz`), at pinned
//! versions, installed into a cache directory of the project's own that later clones reuse,
//! never into the user's `~/.cargo/bin`:
//!
//! - the directory is `$SECRETS_XTASK_TOOLS` if set (a relative path counts from the workspace
//!   root), else `$XDG_CACHE_HOME/secrets-xtask`, else `~/.cache/secrets-xtask`;
//! - a tool is installed there with
//!   `cargo install --locked --debug --root <dir> <crate>@<version>` (an unoptimised build
//!   takes a third of the time, and the checks it runs take seconds either way)
//!   (binaries in `<dir>/bin`, cargo's install records in `<dir>/.crates.toml` and
//!   `<dir>/.crates2.json`) and run by prepending `<dir>/bin` to `PATH` for the cargo process
//!   that runs it;
//! - a tool that cargo already finds (on `PATH` or in `$CARGO_HOME/bin`) is used instead only
//!   when it reports exactly the pinned version: other versions read `deny.toml` differently
//!   or behave differently, and CI must not depend on what happens to be installed.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{cargo, run};

/// A cargo subcommand installed from crates.io at a pinned version.
pub(crate) struct Tool {
    /// The crate, which is also the binary's name (`cargo-deny`).
    pub(crate) name: &'static str,
    /// The pinned version; it must build with the workspace's toolchain (1.95).
    pub(crate) version: &'static str,
    /// The cargo subcommand it provides (`deny` for `cargo deny`).
    pub(crate) subcommand: &'static str,
    /// How long a first installation takes, for the message printed before it.
    pub(crate) install_time: &'static str,
}

/// cargo-deny 0.20.2: the newest release (rust-version 1.88). An optimised `cargo install` took
/// 3 min 2 s on a loaded 2-core machine, `--debug` 51 s, and the debug build's
/// `deny check bans licenses sources` 1.8 s. (Earlier: `cargo install --locked` took
/// 3 min 2 s on a 2-core build machine with another build running beside it.
pub(crate) const CARGO_DENY: Tool = Tool {
    name: "cargo-deny",
    version: "0.20.2",
    subcommand: "deny",
    install_time: "about 1 minute",
};

/// cargo-fuzz 0.13.2: the newest release; it builds with 1.95 (the install's build took
/// 1 min 5 s on the same machine).
pub(crate) const CARGO_FUZZ: Tool = Tool {
    name: "cargo-fuzz",
    version: "0.13.2",
    subcommand: "fuzz",
    install_time: "about half a minute",
};

/// Where the tools are installed (see the module documentation).
pub(crate) fn tools_dir() -> Result<PathBuf> {
    let non_empty = |name: &str| env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("SECRETS_XTASK_TOOLS") {
        return std::path::absolute(PathBuf::from(dir))
            .context("cannot resolve SECRETS_XTASK_TOOLS");
    }
    // The XDG base directory specification says to ignore relative paths.
    if let Some(cache) = non_empty("XDG_CACHE_HOME").map(PathBuf::from)
        && cache.is_absolute()
    {
        return Ok(cache.join("secrets-xtask"));
    }
    match non_empty("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("secrets-xtask")),
        None => bail!("cannot choose a directory for the cargo tools: set SECRETS_XTASK_TOOLS"),
    }
}

/// A tool ready to run: the `PATH` under which cargo finds it.
pub(crate) struct Ready {
    path: OsString,
}

impl Ready {
    /// A cargo command that finds the tool (cargo looks its subcommands up on `PATH`).
    pub(crate) fn cargo(&self) -> Command {
        let mut cmd = cargo();
        cmd.env("PATH", &self.path);
        cmd
    }

    /// The same through the `cargo` on `PATH` (the rustup proxy), for `cargo +nightly ...`.
    pub(crate) fn rustup_cargo(&self) -> Command {
        let mut cmd = Command::new("cargo");
        cmd.env("PATH", &self.path);
        cmd
    }
}

/// Makes `tool` available at its pinned version: from the tools directory, else from `PATH`,
/// else by installing it into the tools directory.
pub(crate) fn ensure(tool: &Tool) -> Result<Ready> {
    let dir = tools_dir()?;
    let bin = dir.join("bin");
    let with_cache = Ready {
        path: prepend_to_path(&bin)?,
    };
    let unchanged = Ready {
        path: env::var_os("PATH").unwrap_or_default(),
    };
    if version_of(Command::new(bin.join(tool.name))).as_deref() == Some(tool.version) {
        println!("using {} {} from {}", tool.name, tool.version, shown(&bin));
        return check(tool, with_cache, &bin);
    }
    if subcommand_version(tool, &unchanged).as_deref() == Some(tool.version) {
        println!(
            "using {} {} found by cargo (the pinned version)",
            tool.name, tool.version
        );
        return Ok(unchanged);
    }
    println!(
        "installing {} {} into {} (first run only, {})",
        tool.name,
        tool.version,
        shown(&dir),
        tool.install_time
    );
    run(cargo()
        .args(["install", "--locked", "--debug", "--root"])
        .arg(&dir)
        .arg(format!("{}@{}", tool.name, tool.version)))
    .with_context(|| format!("installing {} {}", tool.name, tool.version))?;
    check(tool, with_cache, &bin)
}

/// Confirms that cargo, given the tools directory first on `PATH`, runs the pinned version.
/// (Cargo searches `$CARGO_HOME/bin` before `PATH` when `PATH` does not list it, so another
/// version installed there could win.)
fn check(tool: &Tool, ready: Ready, bin: &Path) -> Result<Ready> {
    match subcommand_version(tool, &ready) {
        Some(v) if v == tool.version => Ok(ready),
        found => bail!(
            "`cargo {}` runs {} {}, not the pinned {} in {}; put $CARGO_HOME/bin on PATH \
             (cargo then searches PATH in order) or remove the other {}",
            tool.subcommand,
            tool.name,
            found.as_deref().unwrap_or("(no version)"),
            tool.version,
            shown(bin),
            tool.name,
        ),
    }
}

fn subcommand_version(tool: &Tool, ready: &Ready) -> Option<String> {
    let mut cmd = ready.cargo();
    cmd.arg(tool.subcommand);
    version_of(cmd)
}

/// The last word of `<cmd> --version` (`cargo-deny 0.20.2` gives `0.20.2`), if it runs.
fn version_of(mut cmd: Command) -> Option<String> {
    let out = cmd
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .map(str::to_owned)
}

fn prepend_to_path(dir: &Path) -> Result<OsString> {
    let current = env::var_os("PATH").unwrap_or_default();
    env::join_paths(std::iter::once(dir.to_owned()).chain(env::split_paths(&current)))
        .with_context(|| format!("cannot put {} on PATH", dir.display()))
}

/// A path with the home directory shown as `~`.
fn shown(path: &Path) -> String {
    match env::var_os("HOME").map(PathBuf::from) {
        Some(home) if !home.as_os_str().is_empty() => match path.strip_prefix(&home) {
            Ok(rest) => Path::new("~").join(rest).display().to_string(),
            Err(_) => path.display().to_string(),
        },
        _ => path.display().to_string(),
    }
}
