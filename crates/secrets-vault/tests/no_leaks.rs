//! No token, secret ID, role ID or value reaches an error, its `Debug`, or a log line at
//! TRACE, whatever a hostile server answers. Alone in its test binary: tracing's per-thread
//! subscribers can miss events while other tests register the same call sites concurrently.

#[path = "support/fake.rs"]
#[allow(dead_code)] // shared with the unit tests, which use other parts
mod fake;

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fake::{Answer, FakeVault};
use secrets_core::{ErrorKind, ManualClock, ProviderError, Secret, SecretProvider};
use secrets_vault::{AppRole, VaultProvider, VaultSettings};
use serde_json::json;

const TOKEN: &str = "s.TOKEN-SENTINEL-4b1d";
const ROLE_ID: &str = "ROLE-ID-SENTINEL-77aa";
const SECRET_ID: &str = "SECRET-ID-SENTINEL-90cc";
const VALUE: &str = "VALUE-SENTINEL-13ef";

/// Every log line at TRACE.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A hostile server that puts the token, the secret ID and a value into every answer it can,
/// through every failure path; none of them may reach an error, its Debug or a log line.
#[tokio::test]
async fn no_token_secret_id_or_value_reaches_errors_or_logs_at_trace() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let echo = json!({"errors": [TOKEN, SECRET_ID, ROLE_ID, VALUE], "data": {"data": {"K": 5, "V": VALUE}}});
    let statuses = [400u16, 401, 403, 404, 405, 412, 429, 500, 503, 200];
    let mut errors: Vec<ProviderError> = Vec::new();
    for status in statuses {
        for phase in ["login", "mount", "read", "renew", "write"] {
            let echo = echo.clone();
            let server = FakeVault::start(move |seen| {
                let hit = match phase {
                    "login" => seen.path().ends_with("/login"),
                    "mount" => seen.path().starts_with("/v1/sys/internal"),
                    "read" => seen.path() == "/v1/secret/data/app" && seen.method == "GET",
                    "renew" => seen.path().ends_with("renew-self"),
                    _ => seen.method == "POST" && seen.path() == "/v1/secret/data/app",
                };
                if hit {
                    return Answer::json(status, echo.clone());
                }
                match seen.path() {
                    p if p.ends_with("/login") => Answer::json(
                        200,
                        json!({"auth": {"client_token": TOKEN, "lease_duration": 30, "renewable": true}}),
                    ),
                    p if p.starts_with("/v1/sys/internal") => Answer::json(
                        200,
                        json!({"data": {"type": "kv", "options": {"version": "2"}}}),
                    ),
                    "/v1/secret/data/app" => Answer::json(
                        200,
                        json!({"data": {"data": {"V": VALUE, "K": 5}, "metadata": {"version": 1}}}),
                    ),
                    _ => Answer::json(status, echo.clone()),
                }
            });
            let clock = Arc::new(ManualClock::new());
            let settings = VaultSettings::new(server.url())
                .approle(AppRole::new(ROLE_ID, SECRET_ID))
                .path("app")
                .cache_ttl(Duration::ZERO);
            let provider = VaultProvider::with_clock(settings, clock.clone()).unwrap();
            for key in ["V", "K"] {
                if let Err(e) = provider.get(key).await {
                    errors.push(e);
                }
            }
            clock.advance(Duration::from_secs(25));
            if let Err(e) = provider.get("V").await {
                errors.push(e);
            }
            if let Err(e) = provider.set("NEW", &Secret::new(VALUE)).await {
                errors.push(e);
            }
            if let Err(e) = provider.delete("V").await {
                errors.push(e);
            }
            if let Err(e) = provider.health().await {
                errors.push(e);
            }
            tracing::debug!(provider = ?provider, "provider after the run");
        }
    }
    assert!(
        errors.len() > 40,
        "the hostile server provoked errors: {}",
        errors.len()
    );
    let mut kinds: Vec<ErrorKind> = errors.iter().map(ProviderError::kind).collect();
    kinds.dedup();
    let logs = logs.text();
    assert!(logs.contains("TRACE"), "TRACE lines were captured");
    for error in &errors {
        for text in [error.to_string(), format!("{error:?}")] {
            for secret in [TOKEN, SECRET_ID, ROLE_ID, VALUE] {
                assert!(!text.contains(secret), "{secret} in error: {text}");
            }
        }
    }
    for secret in [TOKEN, SECRET_ID, ROLE_ID, VALUE] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}
