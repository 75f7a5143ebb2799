//! Against the real OpenBao server, at TRACE level: a token, a role ID, a secret ID and a
//! value, each a planted sentinel, go through every path that can be provoked (reads, writes,
//! health, refusals, a revoked token, a wrong secret ID, a server that is gone); none may
//! appear in a log line, an error, or `Debug` output. Alone in its test binary so that
//! tracing sees every event.

use std::sync::Arc;
use std::time::Duration;

use integration_tests::CapturedLogs;
use integration_tests::vault::{self, unique};
use secrets::vault::{AppRole, VaultProvider, VaultSettings};
use secrets::{Secret, SecretProvider, SecretsManager};
use serde_json::json;

const VALUE: &str = "VALUESENTINEL-3c7f";
const WRITTEN: &str = "WRITTENSENTINEL-8e4d";

#[tokio::test]
async fn no_credential_or_value_reaches_logs_errors_or_debug_at_trace() {
    // Unique per run: the server refuses a token ID or role ID it has seen.
    let (token, role_id, secret_id) = (
        unique("TOKENSENTINEL"),
        unique("ROLEIDSENTINEL"),
        unique("SECRETIDSENTINEL"),
    );
    let (token, role_id, secret_id) = (token.as_str(), role_id.as_str(), secret_id.as_str());
    let admin = vault::shared();
    let path = unique("leaks");
    admin.put_v2("secret", &path, json!({"HF_TOKEN": VALUE, "PORT": 8080}));
    let policy = admin.policy_for(
        &format!("secret/data/{path}"),
        &["read", "create", "update"],
    );
    // Tokens and AppRole credentials with chosen (sentinel) values.
    let issued = admin.token(&[&policy], json!({"id": token, "ttl": "1h"}));
    assert_eq!(issued, token);
    let role = admin
        .approle_role(&[&policy], json!({"token_ttl": "1h"}))
        .role;
    admin.ok(
        "POST",
        &format!("/v1/auth/approle/role/{role}/role-id"),
        Some(&json!({"role_id": role_id})),
    );
    admin.ok(
        "POST",
        &format!("/v1/auth/approle/role/{role}/custom-secret-id"),
        Some(&json!({"secret_id": secret_id})),
    );

    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let mut texts: Vec<String> = Vec::new();
    let base = || {
        VaultSettings::new(admin.addr.clone())
            .path(&path)
            .cache_ttl(Duration::ZERO)
    };

    // Good credentials: reads, a write, health, through a manager too.
    for settings in [
        base().token(token),
        base().approle(AppRole::new(role_id, secret_id)),
    ] {
        texts.push(format!("{settings:?}"));
        let provider = Arc::new(VaultProvider::new(settings).unwrap());
        assert_eq!(
            provider.get("HF_TOKEN").await.unwrap().unwrap().expose(),
            VALUE
        );
        provider
            .set("WRITTEN", &Secret::new(WRITTEN))
            .await
            .unwrap();
        provider.health().await.unwrap();
        let error = provider.get("PORT").await.unwrap_err();
        texts.push(format!("{error} {error:?}"));
        let manager = SecretsManager::builder().provider(provider.clone()).build();
        assert_eq!(
            manager.get("WRITTEN").await.unwrap().unwrap().expose(),
            WRITTEN
        );
        if let Err(e) = manager.get("PORT").await {
            texts.push(format!("{e} {e:?}"));
        }
        texts.push(format!("{provider:?} {manager:?}"));
    }

    // Bad credentials and a gone token: every error path that can be provoked.
    let wrong_secret = Arc::new(
        VaultProvider::new(base().approle(AppRole::new(role_id, format!("{secret_id}-wrong"))))
            .unwrap(),
    );
    let unknown_token = Arc::new(VaultProvider::new(base().token(format!("{token}x"))).unwrap());
    admin.revoke(token);
    let revoked = Arc::new(VaultProvider::new(base().token(token)).unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = Arc::new(
        VaultProvider::new(
            VaultSettings::new(format!("http://127.0.0.1:{port}"))
                .token(token)
                .path(&path),
        )
        .unwrap(),
    );
    for provider in [wrong_secret, unknown_token, revoked, gone] {
        let mut errors = Vec::new();
        errors.push(provider.get("HF_TOKEN").await.unwrap_err());
        errors.push(provider.set("X", &Secret::new(WRITTEN)).await.unwrap_err());
        errors.push(provider.delete("HF_TOKEN").await.unwrap_err());
        errors.push(provider.health().await.unwrap_err());
        let manager = SecretsManager::builder().provider(provider.clone()).build();
        let chain_error = manager.get("HF_TOKEN").await.unwrap_err();
        texts.push(format!("{chain_error} {chain_error:?}"));
        for e in errors {
            texts.push(format!("{e} {e:?}"));
        }
        texts.push(format!("{provider:?}"));
    }

    let logs = logs.text();
    assert!(logs.contains("TRACE"), "TRACE lines were captured");
    assert!(logs.contains("logged in with AppRole"), "{logs}");
    for sentinel in [token, role_id, secret_id, VALUE, WRITTEN] {
        assert!(!logs.contains(sentinel), "{sentinel} in the logs");
        for text in &texts {
            assert!(!text.contains(sentinel), "{sentinel} in: {text}");
        }
    }
}
