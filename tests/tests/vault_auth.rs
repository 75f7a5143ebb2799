//! Authentication against the real OpenBao server: AppRole login, token renewal (on an
//! injected clock, and once in real time with a token of a few seconds), a new login after
//! the token is revoked, and a revoked given token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::vault::{self, unique};
use secrets::vault::{AppRole, VaultProvider, VaultSettings};
use secrets::{ErrorKind, ManualClock, SecretProvider};
use serde_json::json;

async fn value(provider: &VaultProvider, key: &str) -> String {
    provider
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("the key is there")
        .expose()
        .to_owned()
}

/// A secret at a fresh path and a policy that may read it; the path and the policy.
fn readable_secret(admin: &vault::Admin) -> (String, String) {
    let path = unique("auth");
    admin.put_v2("secret", &path, json!({"HF_TOKEN": "hf_auth"}));
    let policy = admin.policy_for(&format!("secret/data/{path}"), &["read"]);
    (path, policy)
}

#[tokio::test]
async fn approle_logs_in_and_reads_with_a_secret_id_or_a_secret_id_file() {
    let admin = vault::shared();
    let (path, policy) = readable_secret(&admin);
    let (role_id, secret_id) = admin.approle(&[&policy], json!({"token_ttl": "1h"}));
    let p = VaultProvider::new(
        VaultSettings::new(admin.addr.clone())
            .approle(AppRole::new(role_id.clone(), secret_id.clone()))
            .path(&path),
    )
    .unwrap();
    assert_eq!(value(&p, "HF_TOKEN").await, "hf_auth");
    assert_eq!(p.stats().logins, 1);
    p.health().await.unwrap();
    assert_eq!(p.stats().logins, 1, "health reuses the token");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret-id");
    std::fs::write(&file, format!("  {secret_id}\n")).unwrap();
    let from_file = VaultProvider::new(
        VaultSettings::new(admin.addr.clone())
            .approle(AppRole::with_secret_id_file(role_id.clone(), &file))
            .path(&path),
    )
    .unwrap();
    assert_eq!(value(&from_file, "HF_TOKEN").await, "hf_auth");

    // A wrong secret ID is permission denied, saying AppRole, quoting neither ID.
    let wrong = VaultProvider::new(
        VaultSettings::new(admin.addr.clone())
            .approle(AppRole::new(role_id.clone(), "not-the-secret-id"))
            .path(&path),
    )
    .unwrap();
    let error = wrong.get("HF_TOKEN").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    assert!(
        error.to_string().contains("AppRole login refused"),
        "{error}"
    );
    assert!(!error.to_string().contains(&role_id));
    assert!(!error.to_string().contains("not-the-secret-id"));
}

/// On an injected clock: the provider renews the AppRole token at two thirds of its TTL
/// (the real server accepts the renewal), and logs in again once it is revoked.
#[tokio::test]
async fn renewal_at_two_thirds_and_a_new_login_after_revocation() {
    let admin = vault::shared();
    let (path, policy) = readable_secret(&admin);
    let (role_id, secret_id) = admin.approle(
        &[&policy],
        json!({"token_ttl": "1h", "token_max_ttl": "24h"}),
    );
    let clock = Arc::new(ManualClock::new());
    let p = VaultProvider::with_clock(
        VaultSettings::new(admin.addr.clone())
            .approle(AppRole::new(role_id, secret_id))
            .path(&path)
            .cache_ttl(Duration::from_secs(300)),
        clock.clone(),
    )
    .unwrap();
    assert_eq!(value(&p, "HF_TOKEN").await, "hf_auth");
    clock.advance(Duration::from_secs(2399));
    p.invalidate();
    value(&p, "HF_TOKEN").await;
    assert_eq!(p.stats().renewals, 0, "not yet at 2400 s of 3600 s");
    clock.advance(Duration::from_secs(1));
    p.invalidate();
    assert_eq!(value(&p, "HF_TOKEN").await, "hf_auth");
    let stats = p.stats();
    assert_eq!((stats.renewals, stats.logins), (1, 1), "{stats:?}");

    // Every token AppRole issued is revoked: the next read is refused, the provider logs in
    // once more and the read succeeds.
    admin.revoke_approle_tokens();
    clock.advance(Duration::from_secs(300));
    assert_eq!(value(&p, "HF_TOKEN").await, "hf_auth");
    let stats = p.stats();
    // Three reads before; then the refused one and its retry.
    assert_eq!((stats.logins, stats.secret_reads), (2, 5), "{stats:?}");
}

/// In real time: a role whose tokens live 2 s (at most 4 s). Reading every 100 ms for
/// 5 s, every read succeeds: the token is renewed, and replaced by a new login when the
/// maximum TTL caps the renewals.
#[tokio::test]
async fn a_token_of_a_few_seconds_is_renewed_then_replaced_in_real_time() {
    let admin = vault::shared();
    let (path, policy) = readable_secret(&admin);
    let (role_id, secret_id) = admin.approle(
        &[&policy],
        json!({"token_ttl": "2s", "token_max_ttl": "4s"}),
    );
    let p = VaultProvider::new(
        VaultSettings::new(admin.addr.clone())
            .approle(AppRole::new(role_id, secret_id))
            .path(&path)
            .cache_ttl(Duration::ZERO),
    )
    .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        assert_eq!(value(&p, "HF_TOKEN").await, "hf_auth");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = p.stats();
    assert!(stats.renewals >= 1, "{stats:?}");
    assert!(stats.logins >= 2, "{stats:?}");
    assert!(stats.secret_reads >= 30, "{stats:?}");
}

#[tokio::test]
async fn a_given_token_is_renewed_and_once_revoked_is_permission_denied() {
    let admin = vault::shared();
    let (path, policy) = readable_secret(&admin);
    let token = admin.token(&[&policy], json!({"ttl": "1h", "renewable": true}));
    let clock = Arc::new(ManualClock::new());
    let p = VaultProvider::with_clock(
        VaultSettings::new(admin.addr.clone())
            .token(token.clone())
            .path(&path),
        clock.clone(),
    )
    .unwrap();
    assert_eq!(value(&p, "HF_TOKEN").await, "hf_auth");
    assert_eq!(p.stats().token_lookups, 1, "the TTL is learnt once");
    clock.advance(Duration::from_secs(2400));
    p.invalidate();
    value(&p, "HF_TOKEN").await;
    assert_eq!(p.stats().renewals, 1);

    admin.revoke(&token);
    p.invalidate();
    let error = p.get("HF_TOKEN").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    assert!(!error.to_string().contains(&token));
    assert_eq!(p.stats().logins, 0, "a given token cannot log in again");
    let error = p.health().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
}

/// A policy that denies the path: the token fresh from the login is refused, which is the
/// error (no second login, no loop, no v1 retry).
#[tokio::test]
async fn approle_with_a_denying_policy_fails_without_a_second_login() {
    let admin = vault::shared();
    let path = unique("deny-approle");
    admin.put_v2("secret", &path, json!({"HF_TOKEN": "x"}));
    let other = admin.policy_for(&format!("secret/data/{}", unique("elsewhere")), &["read"]);
    let (role_id, secret_id) = admin.approle(&[&other], json!({"token_ttl": "1h"}));
    let p = VaultProvider::new(
        VaultSettings::new(admin.addr.clone())
            .approle(AppRole::new(role_id, secret_id))
            .path(&path),
    )
    .unwrap();
    let error = p.get("HF_TOKEN").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    let stats = p.stats();
    assert_eq!((stats.logins, stats.secret_reads), (1, 1), "{stats:?}");
}

/// A role whose policies refuse the read, with a secret ID good for 3 logins. Lookups
/// refreshing every 5 s (the snapshot's backoff) for a minute log in twice, at first and
/// once the 30 s pause after the refusal is over, not at every refresh (which used the
/// secret ID up within the minute); the token the second login replaced was revoked, so one
/// token of the role is alive.
#[tokio::test]
async fn a_refused_approle_logs_in_again_only_after_a_pause_and_revokes_what_it_replaces() {
    let admin = vault::shared();
    let path = unique("deny-refresh");
    admin.put_v2("secret", &path, json!({"HF_TOKEN": "x"}));
    let other = admin.policy_for(&format!("secret/data/{}", unique("elsewhere")), &["read"]);
    let role = admin.approle_role(
        &[&other],
        json!({"token_ttl": "1h", "secret_id_num_uses": 3}),
    );
    let clock = Arc::new(ManualClock::new());
    let p = VaultProvider::with_clock(
        VaultSettings::new(admin.addr.clone())
            .approle(AppRole::new(role.role_id.clone(), role.secret_id.clone()))
            .path(&path),
        clock.clone(),
    )
    .unwrap();
    for _ in 0..=12 {
        let before = p.stats().logins;
        let error = p.get("HF_TOKEN").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
        assert!(
            !error.to_string().contains("AppRole login refused"),
            "the secret ID was used up: {error}"
        );
        assert!(p.stats().logins - before <= 1, "{:?}", p.stats());
        clock.advance(Duration::from_secs(5));
    }
    let stats = p.stats();
    assert_eq!((stats.logins, stats.revocations), (2, 1), "{stats:?}");
    assert_eq!(admin.live_tokens_of_role(&role.role), 1);
}

/// A token the server no longer knows (revoked, as an expired one is) is said to be invalid
/// or expired, not "the policies grant nothing under the mount"; a valid token without the
/// `default` policy, which may not look itself up, still reads.
#[tokio::test]
async fn an_unknown_token_is_invalid_or_expired_and_one_without_default_policy_still_reads() {
    let admin = vault::shared();
    let (path, policy) = readable_secret(&admin);
    let revoked = admin.token(&[&policy], json!({"ttl": "1h"}));
    admin.revoke(&revoked);
    for token in [revoked.as_str(), "s.never-issued"] {
        let p = VaultProvider::new(
            VaultSettings::new(admin.addr.clone())
                .token(token)
                .path(&path),
        )
        .unwrap();
        let error = p.get("HF_TOKEN").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
        let text = error.to_string();
        assert!(text.contains("invalid or expired"), "{text}");
        assert!(!text.contains("policies grant nothing"), "{text}");
        assert!(!text.contains(token), "{text}");
    }

    let bare = admin.token(&[&policy], json!({"ttl": "1h", "no_default_policy": true}));
    let p = VaultProvider::new(
        VaultSettings::new(admin.addr.clone())
            .token(bare)
            .path(&path),
    )
    .unwrap();
    assert_eq!(value(&p, "HF_TOKEN").await, "hf_auth");
}
