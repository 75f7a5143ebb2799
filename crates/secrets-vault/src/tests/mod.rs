//! Unit tests: settings, the renewal rule, and fault injection through an in-process fake
//! server (the behaviour against a real OpenBao server is tested in `tests/tests/vault_*.rs`).

#[path = "../../tests/support/fake.rs"]
#[allow(dead_code)] // shared with tests/no_leaks.rs, which uses other parts
mod fake;

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use private_fs::AppName;
use secrets_core::{ErrorKind, ManualClock, ProviderError, Secret, SecretProvider};
use serde_json::json;

use crate::auth::{Lease, Step, next_step};
use crate::settings::parse_duration;
use crate::{AppRole, KvVersion, SecretIdSource, VaultAuth, VaultProvider, VaultSettings};
use fake::{Answer, FakeVault, Seen};

const TOKEN: &str = "s.TOKEN-SENTINEL-4b1d";
const ROLE_ID: &str = "ROLE-ID-SENTINEL-77aa";
const SECRET_ID: &str = "SECRET-ID-SENTINEL-90cc";
const VALUE: &str = "VALUE-SENTINEL-13ef";

fn lookup_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let map: HashMap<String, OsString> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    move |name| map.get(name).cloned()
}

fn settings_from(vars: &[(&str, &str)]) -> Result<Option<VaultSettings>, ProviderError> {
    VaultSettings::from_lookup(&AppName::default(), &lookup_of(vars))
}

// ---------------------------------------------------------------- settings

#[test]
fn no_address_means_not_configured() {
    assert!(settings_from(&[]).unwrap().is_none());
    assert!(
        settings_from(&[("VAULT_ADDR", ""), ("VAULT_TOKEN", "t")])
            .unwrap()
            .is_none()
    );
}

#[test]
fn defaults_follow_the_original_and_the_app_name() {
    let s = settings_from(&[
        ("VAULT_ADDR", "http://127.0.0.1:8200"),
        ("VAULT_TOKEN", TOKEN),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(s.mount, "secret");
    assert_eq!(s.path, "simpletuner");
    assert!(matches!(&s.auth, Some(VaultAuth::Token(t)) if t.expose() == TOKEN));
    assert_eq!(s.connect_timeout, Duration::from_secs(2));
    assert_eq!(s.timeout, Duration::from_secs(5));
    assert_eq!(s.refresh.ttl, Duration::from_secs(300));
    assert_eq!((s.kv_version, s.secret_version), (None, None));

    let app = AppName::new("my-app").unwrap();
    let s = VaultSettings::from_lookup(
        &app,
        &lookup_of(&[
            ("VAULT_ADDR", "https://vault.example:8200/"),
            ("MY_APP_VAULT_MOUNT", "kv1"),
            ("MY_APP_VAULT_KV_VERSION", "1"),
            ("MY_APP_VAULT_CACHE_TTL", "5m"),
            ("VAULT_NAMESPACE", "team/a"),
            ("VAULT_CACERT", "/nonexistent/ca.pem"),
            ("VAULT_SKIP_VERIFY", "false"),
            ("VAULT_CLIENT_TIMEOUT", "1500ms"),
            // The default app's variables do not apply to another app.
            ("SIMPLETUNER_VAULT_PATH", "other"),
        ]),
    )
    .unwrap()
    .unwrap();
    assert_eq!(s.path, "my-app");
    assert_eq!(s.mount, "kv1");
    assert_eq!(s.kv_version, Some(KvVersion::V1));
    assert_eq!(s.refresh.ttl, Duration::from_secs(300));
    assert_eq!(s.namespace.as_deref(), Some("team/a"));
    assert_eq!(
        s.ca_cert.as_deref(),
        Some(std::path::Path::new("/nonexistent/ca.pem"))
    );
    assert!(!s.skip_verify);
    assert_eq!(s.timeout, Duration::from_millis(1500));
    assert!(
        s.auth.is_none(),
        "no token, no AppRole: configured but not available"
    );
    // A CA file that cannot be read is an error naming it when the provider is built.
    let error = VaultProvider::new(s.clone()).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    let provider = VaultProvider::new(VaultSettings { ca_cert: None, ..s }).unwrap();
    assert!(!provider.is_available());
}

#[test]
fn approle_wins_over_a_token_and_takes_its_mount_and_secret_id_file() {
    let s = settings_from(&[
        ("VAULT_ADDR", "http://127.0.0.1:8200"),
        ("VAULT_TOKEN", TOKEN),
        ("VAULT_ROLE_ID", ROLE_ID),
        ("VAULT_SECRET_ID_FILE", "/run/secret-id"),
        ("SIMPLETUNER_VAULT_APPROLE_MOUNT", "auth-ci"),
        ("SIMPLETUNER_VAULT_SECRET_VERSION", "3"),
    ])
    .unwrap()
    .unwrap();
    let Some(VaultAuth::AppRole(approle)) = &s.auth else {
        panic!("expected AppRole: {s:?}")
    };
    assert_eq!(approle.role_id.expose(), ROLE_ID);
    assert_eq!(approle.mount, "auth-ci");
    assert!(
        matches!(&approle.secret_id, Some(SecretIdSource::File(p)) if p.to_str() == Some("/run/secret-id"))
    );
    assert_eq!(s.secret_version, Some(3));
}

#[test]
fn bad_variables_are_errors_naming_them_without_quoting_credentials() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("VAULT_ADDR", "ftp://h")], "VAULT_ADDR"),
        (&[("VAULT_ADDR", "not a url")], "VAULT_ADDR"),
        (
            &[("VAULT_ADDR", "https://user:pa55w0rd-SENTINEL@h:8200")],
            "VAULT_ADDR",
        ),
        (
            &[
                ("VAULT_ADDR", "http://h"),
                ("VAULT_SKIP_VERIFY", "yes please"),
            ],
            "VAULT_SKIP_VERIFY",
        ),
        (
            &[("VAULT_ADDR", "http://h"), ("VAULT_CLIENT_TIMEOUT", "0")],
            "VAULT_CLIENT_TIMEOUT",
        ),
        (
            &[("VAULT_ADDR", "http://h"), ("VAULT_CLIENT_TIMEOUT", "soon")],
            "VAULT_CLIENT_TIMEOUT",
        ),
        (
            &[("VAULT_ADDR", "http://h"), ("VAULT_SECRET_ID", SECRET_ID)],
            "VAULT_SECRET_ID",
        ),
        (
            &[
                ("VAULT_ADDR", "http://h"),
                ("VAULT_ROLE_ID", ROLE_ID),
                ("VAULT_SECRET_ID", SECRET_ID),
                ("VAULT_SECRET_ID_FILE", "/x"),
            ],
            "VAULT_SECRET_ID_FILE",
        ),
        (
            &[
                ("VAULT_ADDR", "http://h"),
                ("SIMPLETUNER_VAULT_KV_VERSION", "3"),
            ],
            "SIMPLETUNER_VAULT_KV_VERSION",
        ),
        (
            &[
                ("VAULT_ADDR", "http://h"),
                ("SIMPLETUNER_VAULT_SECRET_VERSION", "0"),
            ],
            "SIMPLETUNER_VAULT_SECRET_VERSION",
        ),
        (
            &[
                ("VAULT_ADDR", "http://h"),
                ("SIMPLETUNER_VAULT_CACHE_TTL", "forever"),
            ],
            "SIMPLETUNER_VAULT_CACHE_TTL",
        ),
    ];
    for (vars, variable) in cases {
        let error = settings_from(vars).unwrap_err();
        let text = error.to_string();
        assert_eq!(error.kind(), ErrorKind::Misconfigured, "{text}");
        assert!(text.contains(variable), "{variable}: {text}");
        for secret in ["pa55w0rd-SENTINEL", SECRET_ID, ROLE_ID] {
            assert!(!text.contains(secret), "{text}");
            assert!(!format!("{error:?}").contains(secret));
        }
    }
    // Paths that climb or are empty are refused before any request.
    for (mount, path) in [
        ("secret", "a/../b"),
        ("", "x"),
        ("secret", "//"),
        ("se\ncret", "x"),
    ] {
        let settings = VaultSettings::new("http://127.0.0.1:1")
            .token("t")
            .mount(mount)
            .path(path);
        let error = VaultProvider::new(settings).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Misconfigured, "{error}");
    }
}

#[test]
fn durations_parse_in_the_usual_units() {
    assert_eq!(parse_duration("300"), Some(Duration::from_secs(300)));
    assert_eq!(parse_duration(" 5s "), Some(Duration::from_secs(5)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    for bad in ["", "s", "1.5s", "-1", "5 s", "1d"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn debug_output_shows_no_credentials() {
    let settings = VaultSettings::new("http://127.0.0.1:8200")
        .approle(AppRole::new(ROLE_ID, SECRET_ID))
        .namespace("ns");
    let provider = VaultProvider::new(settings.clone()).unwrap();
    let token = VaultSettings::new("http://127.0.0.1:8200").token(TOKEN);
    let mut explicit = VaultSettings::new("http://127.0.0.1:8200").token(TOKEN);
    explicit.address = "https://admin:pa55w0rd-SENTINEL@vault:8200".to_owned();
    for text in [
        format!("{settings:?}"),
        format!("{provider:?}"),
        format!("{token:?}"),
        format!("{explicit:?}"),
        format!("{:?}", VaultProvider::new(token.clone()).unwrap()),
    ] {
        for secret in [TOKEN, ROLE_ID, SECRET_ID, "pa55w0rd-SENTINEL"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("127.0.0.1:8200") || text.contains("vault:8200"),
            "{text}"
        );
    }
}

#[test]
fn only_literal_loopback_addresses_and_localhost_count_as_loopback() {
    for (address, loopback) in [
        ("http://127.0.0.1:8200", true),
        ("http://127.1", true),
        ("http://127.255.3.4:80", true),
        ("http://[::1]:8200", true),
        ("http://localhost:8200", true),
        ("http://LocalHost", true),
        // Names that only look like loopback reach another machine: the token crosses the
        // network unencrypted, so they get the warning.
        ("http://127.attacker.example", false),
        ("http://127.0.0.1.nip.io:8200", false),
        ("http://localhost.attacker.example", false),
        ("http://128.0.0.1", false),
        ("http://[::2]", false),
        ("http://vault.internal:8200", false),
    ] {
        let url = reqwest::Url::parse(address).unwrap();
        assert_eq!(crate::http::is_loopback(&url), loopback, "{address}");
    }
}

/// Runs `work` on a thread of its own and returns its result; fails the test when it is not
/// done within `limit` (a read that hangs must fail the test, not stall it).
fn finishes_within<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(work());
    });
    result
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still running after {limit:?}: it hangs"))
}

/// Files that are not regular files, or not usable, and what the error must say.
fn unusable_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, &'static str)> {
    let fifo = dir.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let zero = dir.join("zero");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
    let huge = dir.join("huge");
    std::fs::write(&huge, vec![b'a'; 5 << 20]).unwrap();
    vec![
        (fifo, "a FIFO"),
        (zero, "a device"),
        (dir.join("subdir"), "a directory"),
        (dangling, "does not exist"),
        (dir.join("missing"), "does not exist"),
        (huge, "larger than"),
    ]
}

#[test]
fn a_secret_id_file_that_is_not_a_small_regular_file_is_an_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("subdir")).unwrap();
    let mut cases = unusable_files(dir.path());
    let empty = dir.path().join("empty");
    std::fs::write(&empty, " \n").unwrap();
    let latin1 = dir.path().join("latin1");
    std::fs::write(&latin1, b"caf\xe9").unwrap();
    cases.extend([(empty, "empty"), (latin1, "not UTF-8")]);
    let script = Script::new(3600, vec![Ok(3600)]);
    let server = serve(&script);
    for (path, says) in cases {
        let settings = VaultSettings::new(server.url())
            .approle(AppRole::with_secret_id_file(ROLE_ID, &path))
            .path("app");
        let provider = VaultProvider::new(settings).unwrap();
        let error = finishes_within(Duration::from_secs(5), move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(provider.get("KEY"))
        })
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains(says), "{}: {text}", path.display());
        assert!(text.contains("VAULT_SECRET_ID_FILE"), "{text}");
        assert!(text.contains(&*path.to_string_lossy()), "{text}");
    }
    assert_eq!(
        server.count("/v1/auth/approle/login"),
        0,
        "no login was tried"
    );
}

#[test]
fn a_ca_file_that_is_not_a_small_regular_file_is_an_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("subdir")).unwrap();
    for (path, says) in unusable_files(dir.path()) {
        let settings = VaultSettings::new("https://127.0.0.1:8200")
            .token(TOKEN)
            .ca_cert(&path);
        let error = finishes_within(Duration::from_secs(5), move || {
            VaultProvider::new(settings).unwrap_err()
        });
        let text = error.to_string();
        assert_eq!(error.kind(), ErrorKind::Misconfigured, "{text}");
        assert!(text.contains(says), "{}: {text}", path.display());
        assert!(text.contains("VAULT_CACERT"), "{text}");
        assert!(text.contains(&*path.to_string_lossy()), "{text}");
    }
}

// ---------------------------------------------------------------- the renewal rule

fn lease(ttl: u64, renewable: bool) -> Lease {
    Lease {
        token: Secret::new(TOKEN),
        ttl: Duration::from_secs(ttl),
        renewable,
        since: Duration::from_secs(1000),
        full_ttl: Duration::from_secs(ttl),
        exhausted: false,
    }
}

#[test]
fn tokens_are_renewed_at_two_thirds_of_their_ttl() {
    let at = |secs: u64| Duration::from_secs(1000 + secs);
    let l = lease(300, true);
    assert_eq!(next_step(Some(&l), at(0), true), Step::Use);
    assert_eq!(next_step(Some(&l), at(199), true), Step::Use);
    assert_eq!(next_step(Some(&l), at(200), true), Step::Renew);
    assert_eq!(next_step(Some(&l), at(400), false), Step::Renew);
    // Not renewable (or renewal exhausted): AppRole logs in again; a given token is kept.
    let fixed = lease(300, false);
    assert_eq!(next_step(Some(&fixed), at(200), true), Step::Login);
    assert_eq!(next_step(Some(&fixed), at(200), false), Step::Use);
    let exhausted = Lease {
        exhausted: true,
        ..lease(300, true)
    };
    assert_eq!(next_step(Some(&exhausted), at(199), true), Step::Use);
    assert_eq!(next_step(Some(&exhausted), at(200), true), Step::Login);
    // A token without expiry (root) is never renewed.
    assert_eq!(
        next_step(Some(&lease(0, true)), at(1_000_000), true),
        Step::Use
    );
    // Nothing yet: AppRole logs in, a given token is looked up.
    assert_eq!(next_step(None, at(0), true), Step::Login);
    assert_eq!(next_step(None, at(0), false), Step::Lookup);
}

// ---------------------------------------------------------------- a scripted server

/// A small KV v2 server: AppRole login, renew-self and lookup-self with scripted TTLs, the
/// mount lookup, and reads of `secret/data/app`.
struct Script {
    login_ttl: u64,
    /// TTLs the successive renewals grant (the last one repeats); `None`: renewal fails (500).
    /// What the successive renewals answer (the last one repeats): `Ok(ttl)` or `Err(status)`.
    renew_ttls: Mutex<Vec<Result<u64, u16>>>,
    logins: AtomicUsize,
    /// Reads are answered 403 while set.
    deny_reads: std::sync::atomic::AtomicBool,
}

impl Script {
    fn new(login_ttl: u64, renew_ttls: Vec<Result<u64, u16>>) -> Arc<Self> {
        Arc::new(Self {
            login_ttl,
            renew_ttls: Mutex::new(renew_ttls),
            logins: AtomicUsize::new(0),
            deny_reads: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn answer(&self, seen: &Seen) -> Answer {
        match seen.path() {
            "/v1/auth/approle/login" => {
                let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
                Answer::json(
                    200,
                    json!({"auth": {"client_token": format!("s.login-{n}"), "lease_duration": self.login_ttl, "renewable": true}}),
                )
            }
            "/v1/auth/token/renew-self" => {
                let mut ttls = self
                    .renew_ttls
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let ttl = if ttls.len() > 1 {
                    ttls.remove(0)
                } else {
                    ttls.first().copied().unwrap_or(Err(500))
                };
                match ttl {
                    Ok(ttl) => Answer::json(
                        200,
                        json!({"auth": {"client_token": seen.header("x-vault-token").unwrap_or_default(), "lease_duration": ttl, "renewable": true}}),
                    ),
                    Err(status) => Answer::json(status, json!({"errors": ["renewal failed"]})),
                }
            }
            "/v1/auth/token/lookup-self" => Answer::json(
                200,
                json!({"data": {"ttl": 30, "creation_ttl": 30, "renewable": true, "id": seen.header("x-vault-token")}}),
            ),
            "/v1/sys/internal/ui/mounts/secret" => Answer::json(
                200,
                json!({"data": {"type": "kv", "options": {"version": "2"}}}),
            ),
            "/v1/auth/token/revoke-self" => {
                Answer::Raw(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n".to_vec())
            }
            "/v1/secret/data/app" if self.deny_reads.load(Ordering::SeqCst) => {
                Answer::json(403, json!({"errors": ["permission denied"]}))
            }
            "/v1/secret/data/app" => Answer::json(
                200,
                json!({"data": {"data": {"KEY": VALUE}, "metadata": {"version": 1}}}),
            ),
            _ => Answer::json(404, json!({"errors": []})),
        }
    }
}

fn serve(script: &Arc<Script>) -> FakeVault {
    let script = Arc::clone(script);
    FakeVault::start(move |seen| script.answer(seen))
}

fn approle_provider(server: &FakeVault, clock: &Arc<ManualClock>) -> VaultProvider {
    // TTL zero: every lookup reads, so every lookup goes through the token check.
    let settings = VaultSettings::new(server.url())
        .approle(AppRole::new(ROLE_ID, SECRET_ID))
        .path("app")
        .cache_ttl(Duration::ZERO);
    VaultProvider::with_clock(settings, clock.clone()).unwrap()
}

async fn read_key(provider: &VaultProvider) -> String {
    provider
        .get("KEY")
        .await
        .unwrap()
        .unwrap()
        .expose()
        .to_owned()
}

#[tokio::test]
async fn approle_tokens_are_renewed_then_replaced_when_the_max_ttl_caps_them() {
    // Login grants 30 s; the first renewal 30 s, the second only 10 s (max TTL reached).
    let script = Script::new(30, vec![Ok(30), Ok(10)]);
    let server = serve(&script);
    let clock = Arc::new(ManualClock::new());
    let provider = approle_provider(&server, &clock);

    assert_eq!(read_key(&provider).await, VALUE);
    assert_eq!(provider.stats().logins, 1);
    let login = &server.seen()[0];
    let sent: serde_json::Value = serde_json::from_slice(&login.body).unwrap();
    assert_eq!(sent, json!({"role_id": ROLE_ID, "secret_id": SECRET_ID}));
    assert_eq!(login.header("x-vault-token"), None, "login sends no token");
    clock.advance(Duration::from_secs(19));
    read_key(&provider).await;
    assert_eq!(
        provider.stats().renewals,
        0,
        "renewal is due at 20 s, not before"
    );
    clock.advance(Duration::from_secs(1));
    read_key(&provider).await;
    assert_eq!(provider.stats().renewals, 1);
    // The renewed token is good for 30 s from now; the next renewal is due in 20 s.
    clock.advance(Duration::from_secs(20));
    read_key(&provider).await;
    assert_eq!(provider.stats().renewals, 2);
    let lease = provider.inner_auth_lease().await;
    assert!(
        lease.exhausted,
        "a renewal granting less than the full TTL is capped"
    );
    assert_eq!(lease.ttl, Duration::from_secs(10));
    // Two thirds of the 10 s left: a new login instead of a useless renewal.
    clock.advance(Duration::from_secs(6));
    read_key(&provider).await;
    assert_eq!((provider.stats().logins, provider.stats().renewals), (1, 2));
    clock.advance(Duration::from_secs(1));
    read_key(&provider).await;
    assert_eq!((provider.stats().logins, provider.stats().renewals), (2, 2));
    // The token the login replaced (valid 3 s more) was revoked, with itself.
    assert_eq!(revoked_tokens(&server), ["s.login-1"]);
    // Every read carried the token the server issued last.
    let reads: Vec<Seen> = server
        .seen()
        .into_iter()
        .filter(|s| s.path() == "/v1/secret/data/app")
        .collect();
    assert_eq!(
        reads.last().unwrap().header("x-vault-token"),
        Some("s.login-2")
    );
    assert_eq!(
        reads.first().unwrap().header("x-vault-token"),
        Some("s.login-1")
    );
}

#[tokio::test]
async fn a_failed_renewal_makes_approle_log_in_again() {
    let script = Script::new(30, vec![Err(500)]);
    let server = serve(&script);
    let clock = Arc::new(ManualClock::new());
    let provider = approle_provider(&server, &clock);
    read_key(&provider).await;
    clock.advance(Duration::from_secs(20));
    assert_eq!(read_key(&provider).await, VALUE);
    let stats = provider.stats();
    assert_eq!((stats.renewals, stats.logins), (1, 2));
    // The replaced token, still valid for 10 s, was revoked.
    assert_eq!(stats.revocations, 1);
    assert_eq!(revoked_tokens(&server), ["s.login-1"]);
}

/// The tokens the server was asked to revoke (`revoke-self`), in order.
fn revoked_tokens(server: &FakeVault) -> Vec<String> {
    server
        .seen()
        .iter()
        .filter(|s| s.path() == "/v1/auth/token/revoke-self")
        .map(|s| s.header("x-vault-token").unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_given_token_is_looked_up_once_renewed_and_kept_when_renewal_fails() {
    for (failure, renewals_after) in [(500u16, 3u64), (403, 2)] {
        let script = Script::new(30, vec![Ok(30), Err(failure)]);
        let server = serve(&script);
        let clock = Arc::new(ManualClock::new());
        let settings = VaultSettings::new(server.url())
            .token(TOKEN)
            .path("app")
            .cache_ttl(Duration::ZERO);
        let provider = VaultProvider::with_clock(settings, clock.clone()).unwrap();
        read_key(&provider).await;
        read_key(&provider).await;
        assert_eq!(provider.stats().token_lookups, 1);
        clock.advance(Duration::from_secs(20));
        read_key(&provider).await;
        assert_eq!(provider.stats().renewals, 1);
        clock.advance(Duration::from_secs(20));
        // Renewal fails: the token is still used (until the server refuses it).
        assert_eq!(read_key(&provider).await, VALUE);
        clock.advance(Duration::from_secs(5));
        read_key(&provider).await;
        // A transient failure (500) is tried again before the next request; a refusal (403)
        // is final.
        let stats = provider.stats();
        assert_eq!(
            (stats.renewals, stats.logins),
            (renewals_after, 0),
            "HTTP {failure}"
        );
    }
}

#[tokio::test]
async fn when_renewal_and_login_both_fail_transiently_a_valid_token_is_kept() {
    let script = Script::new(30, vec![Err(503)]);
    let server = {
        let script = Arc::clone(&script);
        let logins_allowed = AtomicUsize::new(1);
        FakeVault::start(move |seen| {
            if seen.path() == "/v1/auth/approle/login"
                && logins_allowed
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_err()
            {
                return Answer::json(503, json!({"errors": ["Vault is sealed"]}));
            }
            script.answer(seen)
        })
    };
    let clock = Arc::new(ManualClock::new());
    let provider = approle_provider(&server, &clock);
    read_key(&provider).await;
    clock.advance(Duration::from_secs(20));
    assert_eq!(
        read_key(&provider).await,
        VALUE,
        "the 30 s token is still good"
    );
    let stats = provider.stats();
    assert_eq!((stats.renewals, stats.logins), (1, 2), "{stats:?}");
    // Once it has expired, the refresh fails (no token): the last copy is served meanwhile,
    // and the server is asked again after the backoff.
    clock.advance(Duration::from_secs(11));
    assert_eq!(read_key(&provider).await, VALUE);
    assert_eq!(provider.freshness(), Some(Duration::from_secs(5)));
    assert_eq!(provider.stats().logins, 3);
}

#[tokio::test]
async fn hostile_lease_durations_do_not_overflow() {
    let script = Script::new(u64::MAX, vec![Ok(u64::MAX)]);
    let server = serve(&script);
    let clock = Arc::new(ManualClock::new());
    let provider = approle_provider(&server, &clock);
    read_key(&provider).await;
    clock.advance(Duration::from_secs(1_000_000));
    assert_eq!(read_key(&provider).await, VALUE);
    assert_eq!(provider.stats().renewals, 0);
}

/// AppRole whose policies refuse the read: the token fresh from the first login is refused,
/// so no lookup logs in a second time, and refreshes (every 5 s, the snapshot's backoff) log
/// in again only after a pause (30 s, then doubling); every token a login replaces is
/// revoked. Before, every refresh logged in again, using up a secret ID with
/// `secret_id_num_uses` within a minute and leaving a live token per login.
#[tokio::test]
async fn a_refused_fresh_login_pauses_new_logins_and_replaced_tokens_are_revoked() {
    let script = Script::new(3600, vec![Ok(3600)]);
    script.deny_reads.store(true, Ordering::SeqCst);
    let server = serve(&script);
    let clock = Arc::new(ManualClock::new());
    let provider = approle_provider(&server, &clock);
    let refused_lookup = || async {
        let before = provider.stats().logins;
        let error = provider.get("KEY").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
        assert_eq!(error.key(), Some("KEY"));
        let logins = provider.stats().logins - before;
        assert!(logins <= 1, "{logins} logins in one lookup");
    };
    let step = Duration::from_secs(5);

    refused_lookup().await;
    let stats = provider.stats();
    assert_eq!((stats.logins, stats.secret_reads), (1, 1), "{stats:?}");
    // No KV v1 retry, no "absent".
    assert_eq!(server.count("/v1/secret/app"), 0);
    for _ in 0..5 {
        clock.advance(step);
        refused_lookup().await;
    }
    let stats = provider.stats();
    assert_eq!((stats.logins, stats.secret_reads), (1, 6), "{stats:?}");
    // 30 s after the refusal: one new login, which replaces (and revokes) the refused token
    // and is refused too.
    clock.advance(step);
    refused_lookup().await;
    let stats = provider.stats();
    assert_eq!((stats.logins, stats.secret_reads), (2, 8), "{stats:?}");
    assert_eq!(revoked_tokens(&server), ["s.login-1"]);
    // Then the pause is 60 s.
    for _ in 0..11 {
        clock.advance(step);
        refused_lookup().await;
    }
    assert_eq!(provider.stats().logins, 2);
    clock.advance(step);
    refused_lookup().await;
    assert_eq!(provider.stats().logins, 3);
    assert_eq!(revoked_tokens(&server), ["s.login-1", "s.login-2"]);
    // Once the policy allows the read, the current token reads, without another login.
    script.deny_reads.store(false, Ordering::SeqCst);
    clock.advance(step);
    assert_eq!(read_key(&provider).await, VALUE);
    let stats = provider.stats();
    assert_eq!((stats.logins, stats.revocations), (3, 2), "{stats:?}");
}

// ---------------------------------------------------------------- detection and errors

fn token_provider(server: &FakeVault, clock: &Arc<ManualClock>) -> VaultProvider {
    let settings = VaultSettings::new(server.url()).token(TOKEN).path("app");
    VaultProvider::with_clock(settings, clock.clone()).unwrap()
}

/// A server whose lookup-self works and whose other answers come from `answer`.
fn server_with(answer: impl Fn(&Seen) -> Option<Answer> + Send + Sync + 'static) -> FakeVault {
    FakeVault::start(move |seen| {
        if let Some(a) = answer(seen) {
            return a;
        }
        match seen.path() {
            "/v1/auth/token/lookup-self" => {
                Answer::json(200, json!({"data": {"ttl": 0, "renewable": false}}))
            }
            "/v1/sys/internal/ui/mounts/secret" => Answer::json(
                200,
                json!({"data": {"type": "kv", "options": {"version": "2"}}}),
            ),
            _ => Answer::json(404, json!({"errors": []})),
        }
    })
}

#[tokio::test]
async fn a_refused_mount_lookup_is_permission_denied_and_no_read_is_tried() {
    let server = server_with(|seen| {
        (seen.path() == "/v1/sys/internal/ui/mounts/secret").then(|| {
            Answer::json(
                403,
                json!({"errors": ["preflight capability check returned 403"]}),
            )
        })
    });
    let clock = Arc::new(ManualClock::new());
    let provider = token_provider(&server, &clock);
    let error = provider.get("KEY").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    assert!(error.to_string().contains("mount `secret`"), "{error}");
    assert_eq!(provider.stats().secret_reads, 0);
    assert_eq!(provider.kv_version(), None, "nothing was learnt");
}

#[tokio::test]
async fn an_expired_token_is_said_to_be_invalid_or_expired() {
    // What OpenBao answers an expired or revoked token, whatever the path.
    let server = FakeVault::start(|_| Answer::json(403, json!({"errors": ["permission denied"]})));
    let clock = Arc::new(ManualClock::new());
    let provider = token_provider(&server, &clock);
    let error = provider.get("KEY").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    let text = error.to_string();
    assert!(text.contains("invalid or expired"), "{text}");
    assert!(text.contains("look itself up"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    assert_eq!(provider.stats().secret_reads, 0);
}

#[tokio::test]
async fn a_sealed_server_is_unavailable_and_detection_is_asked_again_later() {
    let sealed = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = Arc::clone(&sealed);
    let server = server_with(move |seen| {
        (flag.load(Ordering::SeqCst) && seen.path().starts_with("/v1/sys/internal"))
            .then(|| Answer::json(503, json!({"errors": ["Vault is sealed"]})))
    });
    let clock = Arc::new(ManualClock::new());
    let provider = token_provider(&server, &clock);
    let error = provider.get("KEY").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.to_string().contains("sealed"), "{error}");
    assert!(error.is_transient());
    assert_eq!(provider.stats().secret_reads, 0, "no guess at the version");
    sealed.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(5));
    assert_eq!(provider.get("KEY").await.unwrap(), None);
    assert_eq!(provider.kv_version(), Some(KvVersion::V2));
    assert_eq!(provider.stats().mount_lookups, 2);
}

#[tokio::test]
async fn without_the_mount_lookup_the_v1_path_answer_tells_the_version() {
    // An older server: no mount lookup; the v1 location of a v2 mount answers with a warning.
    let server = server_with(|seen| match seen.path() {
        "/v1/sys/internal/ui/mounts/secret" => {
            Some(Answer::json(404, json!({"errors": ["unsupported path"]})))
        }
        "/v1/secret/app" => Some(Answer::json(
            404,
            json!({"data": null, "warnings": ["Invalid path for a versioned K/V secrets engine."]}),
        )),
        "/v1/secret/data/app" => Some(Answer::json(
            200,
            json!({"data": {"data": {"KEY": VALUE}, "metadata": {"version": 2}}}),
        )),
        _ => None,
    });
    let clock = Arc::new(ManualClock::new());
    let provider = token_provider(&server, &clock);
    assert_eq!(provider.get("KEY").await.unwrap().unwrap().expose(), VALUE);
    assert_eq!(provider.kv_version(), Some(KvVersion::V2));
}

/// A KV version set to the other one than the mount's: checked against the mount lookup,
/// or (on a server without it) the v1 location's answer, or at last the shape of the answers
/// themselves; always a misconfiguration naming the mount and the setting, never "absent" or
/// a write to the wrong place.
#[tokio::test]
async fn a_configured_kv_version_is_checked_against_the_mount() {
    /// A KV v1 mount `secret`, answering v2-shaped requests as KV v1 does: `data/app` is a
    /// path of its own, empty or (`filled`) holding what a v2-shaped write put there. With
    /// or without the mount lookup; the v1 location refused or not.
    fn kv1_server(mount_lookup: bool, probe_refused: bool, filled: bool) -> FakeVault {
        FakeVault::start(move |seen| match (seen.method.as_str(), seen.path()) {
            (_, "/v1/auth/token/lookup-self") => {
                Answer::json(200, json!({"data": {"ttl": 0, "renewable": false}}))
            }
            (_, "/v1/sys/internal/ui/mounts/secret") if mount_lookup => Answer::json(
                200,
                json!({"data": {"type": "kv", "options": {"version": "1"}}}),
            ),
            (_, "/v1/sys/internal/ui/mounts/secret") => {
                Answer::json(404, json!({"errors": ["unsupported path"]}))
            }
            (_, "/v1/secret/app") if probe_refused => {
                Answer::json(403, json!({"errors": ["permission denied"]}))
            }
            ("GET", "/v1/secret/app") => Answer::json(
                200,
                json!({"data": {"KEY": VALUE}, "lease_duration": 2764800}),
            ),
            ("GET", "/v1/secret/data/app") if filled => Answer::json(
                200,
                json!({"data": {"data": {"KEY": VALUE}, "options": {"cas": 0}}}),
            ),
            ("POST", "/v1/secret/data/app") => {
                Answer::Raw(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n".to_vec())
            }
            _ => Answer::json(404, json!({"errors": []})),
        })
    }
    let app = AppName::default();
    let configured = |server: &FakeVault, version: &str| {
        let settings = VaultSettings::from_lookup(
            &app,
            &lookup_of(&[
                ("VAULT_ADDR", &server.url()),
                ("VAULT_TOKEN", TOKEN),
                ("SIMPLETUNER_VAULT_PATH", "app"),
                ("SIMPLETUNER_VAULT_KV_VERSION", version),
            ]),
        )
        .unwrap()
        .unwrap();
        VaultProvider::new(settings).unwrap()
    };
    let misconfigured = |error: ProviderError, says: &str| {
        let text = error.to_string();
        assert_eq!(error.kind(), ErrorKind::Misconfigured, "{text}");
        for needle in ["mount `secret`", "SIMPLETUNER_VAULT_KV_VERSION", says] {
            assert!(text.contains(needle), "expected `{needle}` in: {text}");
        }
        assert!(!text.contains(VALUE) && !text.contains(TOKEN), "{text}");
    };

    // The mount lookup, or else the v1 location, says KV v1: nothing is read or written at
    // `secret/data/app`.
    for mount_lookup in [true, false] {
        let server = kv1_server(mount_lookup, false, false);
        let provider = configured(&server, "2");
        misconfigured(provider.get("KEY").await.unwrap_err(), "is KV v1");
        misconfigured(
            provider.set("KEY", &Secret::new("x")).await.unwrap_err(),
            "is KV v1",
        );
        assert_eq!(server.count("/v1/secret/data/app"), 0, "{mount_lookup}");
        assert_eq!(provider.kv_version(), None);
    }
    // The server cannot say (no mount lookup, the v1 location refused): the configured
    // version is used, and a v1-shaped answer to a v2 read or write is the error.
    let server = kv1_server(false, true, false);
    misconfigured(
        configured(&server, "2")
            .set("KEY", &Secret::new("x"))
            .await
            .unwrap_err(),
        "answered a KV v2 write like a KV v1 mount",
    );
    let server = kv1_server(false, true, true);
    misconfigured(
        configured(&server, "2").get("KEY").await.unwrap_err(),
        "answered a KV v2 read like a KV v1 mount",
    );

    // The reverse: KV v1 configured on a v2 mount, whose v1 location answers with a warning.
    let kv2 = server_with(|seen| match seen.path() {
        "/v1/sys/internal/ui/mounts/secret" => {
            Some(Answer::json(404, json!({"errors": ["unsupported path"]})))
        }
        "/v1/secret/app" => Some(Answer::json(
            404,
            json!({"data": null, "warnings": ["Invalid path for a versioned K/V secrets engine."]}),
        )),
        _ => None,
    });
    let provider = configured(&kv2, "1");
    misconfigured(provider.get("KEY").await.unwrap_err(), "is KV v2");
    misconfigured(
        provider.set("KEY", &Secret::new("x")).await.unwrap_err(),
        "is KV v2",
    );
    assert!(
        kv2.seen().iter().all(|s| s.method == "GET"),
        "nothing written"
    );
    // Set with the builder, the message names the builder method.
    let provider = VaultProvider::new(
        VaultSettings::new(kv2.url())
            .token(TOKEN)
            .path("app")
            .kv_version(KvVersion::V1),
    )
    .unwrap();
    let error = provider.get("KEY").await.unwrap_err();
    assert!(
        error.to_string().contains("VaultSettings::kv_version"),
        "{error}"
    );
}

/// Each status or broken answer of a read, and the kind it must give.
#[tokio::test]
async fn statuses_and_broken_answers_map_to_distinct_kinds() {
    let huge = format!(
        "{{\"data\":{{\"data\":{{\"K\":\"{}\"}}}}}}",
        "x".repeat(9 << 20)
    );
    let cases: Vec<(Answer, ErrorKind, &str)> = vec![
        (
            Answer::json(403, json!({"errors": ["permission denied"]})),
            ErrorKind::PermissionDenied,
            "permission denied",
        ),
        (
            Answer::json(429, json!({"errors": ["rate limit"]})),
            ErrorKind::Throttled,
            "HTTP 429",
        ),
        (
            Answer::json(503, json!({"errors": ["Vault is sealed"]})),
            ErrorKind::Unavailable,
            "sealed",
        ),
        (
            Answer::json(500, json!({"errors": [VALUE]})),
            ErrorKind::Unavailable,
            "HTTP 500",
        ),
        (
            Answer::json(502, json!({})),
            ErrorKind::Unavailable,
            "HTTP 502",
        ),
        (Answer::json(504, json!({})), ErrorKind::Timeout, "HTTP 504"),
        (
            Answer::json(404, json!({"errors": ["no handler for route"]})),
            ErrorKind::NotFound,
            "does not exist",
        ),
        (
            Answer::json(404, json!({"errors": ["namespace not found"]})),
            ErrorKind::NotFound,
            "namespace",
        ),
        (
            Answer::json(307, json!({})),
            ErrorKind::Unavailable,
            "redirect",
        ),
        (
            Answer::Json(200, format!("{{\"data\": {{\"data\": {{\"K\": \"{VALUE}\"")),
            ErrorKind::Malformed,
            "ends early",
        ),
        (
            Answer::Json(200, format!("<html>{VALUE}</html>")),
            ErrorKind::Malformed,
            "not valid JSON",
        ),
        (
            Answer::json(200, json!({"data": {"data": [VALUE]}})),
            ErrorKind::Malformed,
            "not an object",
        ),
        (
            Answer::json(200, json!({"nothing": VALUE})),
            ErrorKind::Malformed,
            "no `data`",
        ),
        (Answer::Json(200, huge), ErrorKind::Malformed, "larger than"),
        (
            Answer::Raw(b"garbage that is not HTTP\r\n\r\n".to_vec()),
            ErrorKind::Unavailable,
            "request failed",
        ),
        (
            Answer::Hang(Duration::from_secs(3)),
            ErrorKind::Timeout,
            "no complete answer within",
        ),
    ];
    for (answer, kind, says) in cases {
        let answer = Mutex::new(Some(answer));
        let server = server_with(move |seen| {
            (seen.path() == "/v1/secret/data/app").then(|| {
                answer
                    .lock()
                    .unwrap()
                    .take()
                    .unwrap_or(Answer::json(500, json!({})))
            })
        });
        let settings = VaultSettings::new(server.url())
            .token(TOKEN)
            .path("app")
            .timeouts(Duration::from_secs(2), Duration::from_millis(700));
        let provider = VaultProvider::new(settings).unwrap();
        let error = provider.get("K").await.unwrap_err();
        let text = error.to_string();
        assert_eq!(error.kind(), kind, "{text}");
        assert!(text.contains(says), "expected `{says}` in: {text}");
        assert!(!text.contains(VALUE) && !text.contains(TOKEN), "{text}");
        assert!(!format!("{error:?}").contains(VALUE));
    }
}

#[tokio::test]
async fn one_deadline_covers_every_request_of_a_lookup_a_write_and_a_health_check() {
    // Every answer takes 600 ms: any single request fits in the 1 s timeout, but a first
    // lookup makes three (token lookup, mount lookup, read), a health check two and a write
    // four.
    let server = FakeVault::start(|seen| {
        std::thread::sleep(Duration::from_millis(600));
        match (seen.method.as_str(), seen.path()) {
            (_, "/v1/auth/token/lookup-self") => {
                Answer::json(200, json!({"data": {"ttl": 0, "renewable": false}}))
            }
            (_, "/v1/sys/internal/ui/mounts/secret") => Answer::json(
                200,
                json!({"data": {"type": "kv", "options": {"version": "2"}}}),
            ),
            (_, "/v1/sys/health") => Answer::json(200, json!({"sealed": false})),
            ("GET", "/v1/secret/data/app") => Answer::json(
                200,
                json!({"data": {"data": {"KEY": VALUE}, "metadata": {"version": 1}}}),
            ),
            ("POST", "/v1/secret/data/app") => Answer::json(200, json!({"data": {"version": 2}})),
            _ => Answer::json(404, json!({"errors": []})),
        }
    });
    let limit = Duration::from_secs(1);
    let fresh = || {
        VaultProvider::new(
            VaultSettings::new(server.url())
                .token(TOKEN)
                .path("app")
                .timeouts(Duration::from_secs(2), limit),
        )
        .unwrap()
    };
    for operation in ["lookup", "health check", "write"] {
        let provider = fresh();
        let started = std::time::Instant::now();
        let error = match operation {
            "lookup" => provider.get("KEY").await.map(drop),
            "health check" => provider.health().await,
            _ => provider.set("KEY", &Secret::new("new")).await,
        }
        .unwrap_err();
        let took = started.elapsed();
        assert_eq!(error.kind(), ErrorKind::Timeout, "{operation}: {error}");
        assert!(
            error.to_string().contains(&format!("for the {operation}")),
            "{error}"
        );
        assert!(
            took < limit + Duration::from_millis(400),
            "{operation} took {took:?}"
        );
    }
}

#[tokio::test]
async fn transport_failures_say_connect_timeout_or_tls() {
    // Nothing listens: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider =
        VaultProvider::new(VaultSettings::new(format!("http://127.0.0.1:{port}")).token(TOKEN))
            .unwrap();
    let error = provider.get("K").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.to_string().contains("cannot connect"), "{error}");

    // HTTPS to a server that speaks plain HTTP: a TLS failure, said so.
    let server = server_with(|_| None);
    let https = server.url().replace("http://", "https://");
    let provider = VaultProvider::new(VaultSettings::new(https).token(TOKEN)).unwrap();
    let error = provider.get("K").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.to_string().contains("TLS"), "{error}");
}

#[tokio::test]
async fn non_string_values_are_invalid_for_their_key_only() {
    let server = server_with(|seen| {
        (seen.path() == "/v1/secret/data/app").then(|| {
            Answer::json(
                200,
                json!({"data": {"data": {"GOOD": VALUE, "PORT": 8080, "NESTED": {"a": VALUE}}}}),
            )
        })
    });
    let clock = Arc::new(ManualClock::new());
    let provider = token_provider(&server, &clock);
    assert_eq!(provider.get("GOOD").await.unwrap().unwrap().expose(), VALUE);
    for (key, kind) in [("PORT", "a number"), ("NESTED", "an object")] {
        let error = provider.get(key).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidValue);
        assert_eq!(error.key(), Some(key));
        assert!(error.to_string().contains(kind), "{error}");
        assert!(!error.to_string().contains(VALUE));
    }
    assert_eq!(provider.get("MISSING").await.unwrap(), None);
    assert_eq!(
        provider.stats().secret_reads,
        1,
        "one read serves every key"
    );
}

#[tokio::test]
async fn the_namespace_header_is_sent_on_every_request() {
    let server = server_with(|_| None);
    let settings = VaultSettings::new(server.url())
        .approle(AppRole::new(ROLE_ID, SECRET_ID))
        .namespace("team-a/")
        .path("app");
    let provider = VaultProvider::new(settings).unwrap();
    // Login is refused by this server (404 with errors []): still, the header went out.
    let _ = provider.get("K").await;
    let seen = server.seen();
    assert!(!seen.is_empty());
    for request in seen {
        assert_eq!(
            request.header("x-vault-namespace"),
            Some("team-a"),
            "{request:?}"
        );
    }
}

impl VaultProvider {
    /// The auth state, for the renewal tests.
    async fn inner_auth_lease(&self) -> Lease {
        self.auth_for_tests().lease().await.expect("a lease")
    }
}
