//! The provider against moto's real Secrets Manager server (started by `cargo xtask test`;
//! a test that stops the server starts its own). A loopback proxy in front of moto
//! supplements it with the faults moto cannot produce.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{CallCounter, CapturedLogs, Fault, Hostile, HostileServer, OwnMoto, Proxy};
use secrets_aws::{AwsSecretsManagerProvider, AwsSettings};
use secrets_core::{ErrorKind, ManualClock, ProviderError, SecretProvider};

const TTL: Duration = Duration::from_secs(300);
const BACKOFF: Duration = Duration::from_secs(5);

/// A provider with a call counter and a manual clock.
fn provider_with(
    settings: AwsSettings,
) -> (AwsSecretsManagerProvider, CallCounter, Arc<ManualClock>) {
    let calls = CallCounter::default();
    let clock = Arc::new(ManualClock::new());
    let provider =
        AwsSecretsManagerProvider::builder(settings.with_ttl(TTL).with_retry_backoff(BACKOFF))
            .interceptor(calls.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
    (provider, calls, clock)
}

fn expose(found: Option<secrets_core::Secret>) -> Option<String> {
    found.map(|s| s.expose().to_owned())
}

#[tokio::test]
async fn reads_keys_with_one_call_and_missing_keys_are_absent() {
    let admin = common::admin().await;
    let name = common::unique("read");
    common::create(
        &admin,
        &name,
        r#"{"HF_TOKEN": "hf_1", "OTHER": "o", "EMPTY": "", "NULL": null}"#,
    )
    .await;
    let (provider, calls, _clock) = provider_with(common::settings(&name));
    for _ in 0..50 {
        assert_eq!(
            expose(provider.get("HF_TOKEN").await.unwrap()).as_deref(),
            Some("hf_1")
        );
        assert_eq!(
            expose(provider.get("OTHER").await.unwrap()).as_deref(),
            Some("o")
        );
        assert_eq!(
            expose(provider.get("EMPTY").await.unwrap()).as_deref(),
            Some("")
        );
        assert_eq!(provider.get("NULL").await.unwrap(), None);
        assert_eq!(
            provider.get("hf_token").await.unwrap(),
            None,
            "keys match exactly"
        );
        assert_eq!(provider.get("MISSING").await.unwrap(), None);
    }
    assert_eq!(calls.count("GetSecretValue"), 1);
    assert_eq!(provider.fetches(), 1);
    assert_eq!(provider.freshness(), Some(TTL));
}

#[tokio::test]
async fn a_missing_secret_is_not_found_naming_it() {
    let name = common::unique("missing");
    let (provider, calls, _clock) = provider_with(common::settings(&name));
    let e = provider.get("K").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&name) && text.contains("ResourceNotFoundException"),
        "{text}"
    );
    assert!(text.starts_with("provider `aws`: not found"), "{text}");
    // Not retried by the SDK (not transient), and repeated without a call during the backoff.
    assert_eq!(
        provider.get("K").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(calls.count("GetSecretValue"), 1);
    assert_eq!(
        provider.health().await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn non_json_non_object_and_non_string_values_are_distinct_errors() {
    let admin = common::admin().await;
    for (text, kind, words) in [
        ("not json at all", ErrorKind::Malformed, "not valid JSON"),
        ("{\"A\": \"x\"", ErrorKind::Malformed, "ends too early"),
        ("[\"a\", \"b\"]", ErrorKind::Malformed, "JSON but an array"),
        (
            "\"just a string\"",
            ErrorKind::Malformed,
            "JSON but a string",
        ),
    ] {
        let name = common::unique("bad");
        common::create(&admin, &name, text).await;
        let (provider, _calls, _clock) = provider_with(common::settings(&name));
        let e = provider.get("A").await.unwrap_err();
        assert_eq!(e.kind(), kind, "{text}: {e}");
        assert!(e.to_string().contains(words), "{text}: {e}");
        assert!(e.to_string().contains(&name), "{e}");
        assert!(!e.is_transient());
        assert_eq!(provider.health().await.unwrap_err().kind(), kind);
    }
    let name = common::unique("kinds");
    common::create(
        &admin,
        &name,
        r#"{"NUM": 7, "OBJ": {"a": "b"}, "OK": "fine"}"#,
    )
    .await;
    let (provider, _calls, _clock) = provider_with(common::settings(&name));
    let e = provider.get("NUM").await.unwrap_err();
    assert_eq!((e.kind(), e.key()), (ErrorKind::InvalidValue, Some("NUM")));
    assert!(e.to_string().contains("a number"), "{e}");
    let e = provider.get("OBJ").await.unwrap_err();
    assert!(e.to_string().contains("an object"), "{e}");
    assert_eq!(
        expose(provider.get("OK").await.unwrap()).as_deref(),
        Some("fine")
    );
}

#[tokio::test]
async fn a_binary_secret_holding_json_is_read() {
    let admin = common::admin().await;
    let name = common::unique("binary");
    admin
        .create_secret()
        .name(&name)
        .secret_binary(secrets_aws::sdk::primitives::Blob::new(
            br#"{"B": "from-binary"}"#.to_vec(),
        ))
        .send()
        .await
        .unwrap();
    let (provider, _calls, _clock) = provider_with(common::settings(&name));
    assert_eq!(
        expose(provider.get("B").await.unwrap()).as_deref(),
        Some("from-binary")
    );

    let name = common::unique("binary-bad");
    admin
        .create_secret()
        .name(&name)
        .secret_binary(secrets_aws::sdk::primitives::Blob::new(vec![
            0xff, 0xfe, 0x00,
        ]))
        .send()
        .await
        .unwrap();
    let (provider, _calls, _clock) = provider_with(common::settings(&name));
    let e = provider.get("B").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(e.to_string().contains("not UTF-8"), "{e}");
}

#[tokio::test]
async fn version_stages_and_ids_are_honoured() {
    let admin = common::admin().await;
    let name = common::unique("stages");
    let first = common::create(&admin, &name, r#"{"K": "v1"}"#).await;
    common::put(&admin, &name, r#"{"K": "v2"}"#).await;
    let read = |settings: AwsSettings| async move {
        let (provider, _calls, _clock) = provider_with(settings);
        expose(provider.get("K").await.unwrap())
    };
    assert_eq!(read(common::settings(&name)).await.as_deref(), Some("v2"));
    assert_eq!(
        read(common::settings(&name).with_version_stage("AWSPREVIOUS"))
            .await
            .as_deref(),
        Some("v1")
    );
    assert_eq!(
        read(common::settings(&name).with_version_id(&first))
            .await
            .as_deref(),
        Some("v1")
    );
    // A custom stage.
    admin
        .update_secret_version_stage()
        .secret_id(&name)
        .version_stage("CANARY")
        .move_to_version_id(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(common::settings(&name).with_version_stage("CANARY"))
            .await
            .as_deref(),
        Some("v1")
    );
    // A stage nobody carries is "not found", naming the secret.
    let (provider, _calls, _clock) =
        provider_with(common::settings(&name).with_version_stage("NOPE"));
    assert_eq!(
        provider.get("K").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Pinned providers do not write.
    let (provider, _calls, _clock) =
        provider_with(common::settings(&name).with_version_stage("AWSPREVIOUS"));
    assert!(!provider.supports_writes());
    let e = provider.set("K", &"x".into()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReadOnly);
}

#[tokio::test]
async fn after_the_ttl_a_new_value_is_seen_and_refresh_now_forces_a_fetch() {
    let admin = common::admin().await;
    let name = common::unique("ttl");
    common::create(&admin, &name, r#"{"K": "old"}"#).await;
    let (provider, calls, clock) = provider_with(common::settings(&name));
    assert_eq!(
        expose(provider.get("K").await.unwrap()).as_deref(),
        Some("old")
    );
    common::put(&admin, &name, r#"{"K": "new"}"#).await;
    clock.advance(TTL - Duration::from_secs(1));
    assert_eq!(provider.freshness(), Some(Duration::from_secs(1)));
    assert_eq!(
        expose(provider.get("K").await.unwrap()).as_deref(),
        Some("old")
    );
    assert_eq!(calls.count("GetSecretValue"), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(provider.freshness(), Some(Duration::ZERO));
    assert_eq!(
        expose(provider.get("K").await.unwrap()).as_deref(),
        Some("new")
    );
    assert_eq!(calls.count("GetSecretValue"), 2);

    common::put(&admin, &name, r#"{"K": "newer"}"#).await;
    provider.refresh_now().await.unwrap();
    assert_eq!(
        expose(provider.get("K").await.unwrap()).as_deref(),
        Some("newer")
    );
    assert_eq!(calls.count("GetSecretValue"), 3);
}

#[test]
fn thirty_two_concurrent_cold_lookups_make_one_call() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let admin = common::admin().await;
        let name = common::unique("flight");
        let object: serde_json::Map<String, serde_json::Value> = (0..32)
            .map(|i| (format!("K{i}"), serde_json::Value::String(format!("v{i}"))))
            .collect();
        common::create(
            &admin,
            &name,
            &serde_json::Value::Object(object).to_string(),
        )
        .await;
        // Through the counting proxy, so the count is also taken on the wire.
        let proxy = Proxy::start(&common::endpoint());
        let (provider, calls, _clock) =
            provider_with(common::settings_at(&proxy.endpoint(), &name));
        let provider = Arc::new(provider);
        let barrier = Arc::new(tokio::sync::Barrier::new(32));
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let (provider, barrier) = (Arc::clone(&provider), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    expose(provider.get(&format!("K{i}")).await.unwrap())
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), Some(format!("v{i}")));
        }
        assert_eq!(calls.count("GetSecretValue"), 1);
        assert_eq!(proxy.count("GetSecretValue"), 1);
        assert_eq!(proxy.total(), 1);
    });
}

#[tokio::test(flavor = "current_thread")]
async fn a_stopped_server_serves_the_stale_copy_then_recovers() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let port = common::free_port();
    let moto = OwnMoto::start(port);
    let endpoint = moto.endpoint();
    let admin = common::admin_at(&endpoint).await;
    let name = common::unique("outage");
    common::create(&admin, &name, r#"{"K": "before"}"#).await;
    let settings = common::settings_at(&endpoint, &name)
        .with_max_attempts(1)
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(5));
    let (provider, calls, clock) = provider_with(settings);
    assert_eq!(
        expose(provider.get("K").await.unwrap()).as_deref(),
        Some("before")
    );

    moto.stop();
    clock.advance(TTL);
    // The refresh fails (connection refused): the stale copy is served, with a warning.
    assert_eq!(
        expose(provider.get("K").await.unwrap()).as_deref(),
        Some("before")
    );
    assert_eq!(calls.count("GetSecretValue"), 2);
    let text = logs.text();
    assert!(
        text.contains("WARN") && text.contains("serving the last good copy"),
        "{text}"
    );
    assert!(text.contains("cannot connect"), "{text}");
    // During the backoff, no further call.
    assert_eq!(provider.freshness(), Some(BACKOFF));
    for _ in 0..10 {
        assert_eq!(
            expose(provider.get("K").await.unwrap()).as_deref(),
            Some("before")
        );
    }
    assert_eq!(calls.count("GetSecretValue"), 2);
    // health() is a real round trip and says what is wrong.
    let e = provider.health().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");

    // Back on the same port (moto keeps nothing: the secret is set up again, changed).
    let moto = OwnMoto::start(port);
    let admin = common::admin_at(&moto.endpoint()).await;
    common::create(&admin, &name, r#"{"K": "after"}"#).await;
    clock.advance(BACKOFF);
    assert_eq!(
        expose(provider.get("K").await.unwrap()).as_deref(),
        Some("after")
    );
    assert_eq!(provider.freshness(), Some(TTL));
    provider.health().await.unwrap();
}

#[tokio::test]
async fn with_stale_serving_off_an_outage_is_an_error() {
    let admin = common::admin().await;
    let name = common::unique("strict");
    common::create(&admin, &name, r#"{"K": "v"}"#).await;
    let proxy = Proxy::start(&common::endpoint());
    let settings = common::settings_at(&proxy.endpoint(), &name)
        .with_serve_stale(false)
        .with_max_attempts(1);
    let (provider, _calls, clock) = provider_with(settings);
    provider.get("K").await.unwrap();
    proxy.set_fault(Fault::ServerError);
    clock.advance(TTL);
    let e = provider.get("K").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("HTTP 503"), "{e}");
}

#[tokio::test]
async fn injected_faults_map_to_their_kinds() {
    let admin = common::admin().await;
    let name = common::unique("faults");
    common::create(&admin, &name, r#"{"K": "v"}"#).await;
    let proxy = Proxy::start(&common::endpoint());
    // (fault, attempts, kind, words): the retried faults get a generous operation timeout
    // (the SDK's backoff between attempts is up to a second), the hang a short one.
    for (fault, attempts, kind, words) in [
        (
            Fault::Throttle,
            2,
            ErrorKind::Throttled,
            "ThrottlingException",
        ),
        (
            Fault::Deny,
            2,
            ErrorKind::PermissionDenied,
            "AccessDeniedException",
        ),
        (Fault::ServerError, 2, ErrorKind::Unavailable, "HTTP 503"),
        (
            Fault::CutBody,
            1,
            ErrorKind::Unavailable,
            "could not be read",
        ),
        (
            Fault::GarbleBody,
            1,
            ErrorKind::Unavailable,
            "could not be read",
        ),
        (Fault::Hang, 1, ErrorKind::Timeout, "timeout"),
    ] {
        proxy.set_fault(fault);
        let operation_timeout = if fault == Fault::Hang {
            Duration::from_millis(700)
        } else {
            Duration::from_secs(10)
        };
        let settings = common::settings_at(&proxy.endpoint(), &name)
            .with_max_attempts(attempts)
            .with_timeouts(Duration::from_secs(1), operation_timeout);
        let (provider, calls, _clock) = provider_with(settings);
        let e = provider.get("K").await.unwrap_err();
        assert_eq!(e.kind(), kind, "{fault:?}: {e}");
        assert!(e.to_string().contains(words), "{fault:?}: {e}");
        assert_eq!(e.is_transient(), kind != ErrorKind::PermissionDenied);
        let expected_calls = if matches!(fault, Fault::Throttle | Fault::ServerError) {
            2
        } else {
            1
        };
        assert_eq!(
            calls.count("GetSecretValue"),
            expected_calls,
            "{fault:?}: SDK retries"
        );
    }
}

#[tokio::test]
async fn an_endless_or_oversized_answer_is_refused_at_the_response_cap() {
    for behaviour in [Hostile::EndlessChunked, Hostile::HugeContentLength] {
        let server = HostileServer::start(behaviour);
        let settings = common::settings_at(&server.url(), &common::unique("endless"))
            .with_max_attempts(1)
            .with_timeouts(Duration::from_secs(2), Duration::from_secs(20));
        let (provider, _calls, _clock) = provider_with(settings);
        let started = std::time::Instant::now();
        let e = provider.get("K").await.unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{behaviour:?}: {e}");
        let text = e.to_string();
        assert!(
            text.contains("1 MiB (1048576 bytes)") && text.contains("not a Secrets Manager answer"),
            "{behaviour:?}: {text}"
        );
        // Refused at the cap, not at the timeout, and the server could not push much more
        // than the cap (plus what the sockets' buffers hold) before the connection closed.
        assert!(
            elapsed < Duration::from_secs(10),
            "{behaviour:?}: {elapsed:?}"
        );
        assert!(
            server.sent() < 32 * secrets_aws::MAX_RESPONSE_SIZE,
            "{behaviour:?}: the server sent {} bytes",
            server.sent()
        );
    }
    // A declared length over the cap is refused before reading: the message says so.
    let server = HostileServer::start(Hostile::HugeContentLength);
    let (provider, _calls, _clock) = provider_with(
        common::settings_at(&server.url(), &common::unique("declared")).with_max_attempts(1),
    );
    let e = provider.get("K").await.unwrap_err();
    assert!(
        e.to_string()
            .contains("declares a body of 100000000000 bytes"),
        "{e}"
    );
}

#[tokio::test]
async fn the_largest_secrets_moto_stores_pass_under_the_response_cap() {
    let admin = common::admin().await;
    // 64 KiB of JSON as SecretString, and as SecretBinary (base64 in the answer: 4/3 of it).
    let filler = |key: &str| {
        let overhead = format!(r#"{{"{key}": ""}}"#).len();
        format!(
            r#"{{"{key}": "{}"}}"#,
            "x".repeat(secrets_aws::MAX_SECRET_SIZE - overhead)
        )
    };
    let name = common::unique("max-string");
    let text = filler("S");
    assert_eq!(text.len(), secrets_aws::MAX_SECRET_SIZE);
    common::create(&admin, &name, &text).await;
    let (provider, _calls, _clock) = provider_with(common::settings(&name));
    let value = expose(provider.get("S").await.unwrap()).unwrap();
    assert_eq!(value.len(), secrets_aws::MAX_SECRET_SIZE - 9);

    let name = common::unique("max-binary");
    admin
        .create_secret()
        .name(&name)
        .secret_binary(secrets_aws::sdk::primitives::Blob::new(
            filler("B").into_bytes(),
        ))
        .send()
        .await
        .unwrap();
    let (provider, _calls, _clock) = provider_with(common::settings(&name));
    let value = expose(provider.get("B").await.unwrap()).unwrap();
    assert_eq!(value.len(), secrets_aws::MAX_SECRET_SIZE - 9);
}

#[tokio::test]
async fn an_untrusted_tls_certificate_is_reported_as_such() {
    let moto = OwnMoto::start_tls(common::free_port());
    let https = format!("https://127.0.0.1:{}", moto.port);
    let (provider, _calls, _clock) =
        provider_with(common::settings_at(&https, &common::unique("tls")).with_max_attempts(1));
    let e = provider.get("K").await.unwrap_err();
    let text = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Misconfigured, "{text}");
    assert!(!e.is_transient());
    assert!(
        text.contains("TLS certificate failure")
            && text.contains("not issued by an authority this machine trusts"),
        "{text}"
    );
    assert!(!text.contains("cannot connect"), "{text}");

    // Plain HTTP where TLS is expected: a TLS failure too, not a connection failure.
    let plain = common::endpoint().replace("http://", "https://");
    let (provider, _calls, _clock) =
        provider_with(common::settings_at(&plain, &common::unique("tls")).with_max_attempts(1));
    let e = provider.get("K").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Misconfigured, "{e}");
    assert!(e.to_string().contains("TLS handshake"), "{e}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_plain_http_endpoint_on_another_machine_is_warned_about_once_per_provider() {
    const WARNING: &str = "plain http:// on another machine";
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let admin = common::admin().await;
    let name = common::unique("plain");
    common::create(&admin, &name, r#"{"K": "v"}"#).await;
    // moto on a literal loopback address, and through `localhost`: no warning.
    let port = common::endpoint().rsplit(':').next().unwrap().to_owned();
    for endpoint in [common::endpoint(), format!("http://localhost:{port}")] {
        let (provider, _calls, _clock) = provider_with(common::settings_at(&endpoint, &name));
        assert_eq!(
            expose(provider.get("K").await.unwrap()).as_deref(),
            Some("v")
        );
    }
    assert!(!logs.text().contains(WARNING), "{}", logs.text());

    // A host name that is not this machine (it does not resolve; the warning comes before
    // the request is sent), and over HTTPS no warning.
    let quick = |endpoint: &str| {
        common::settings_at(endpoint, &name)
            .with_max_attempts(1)
            .with_timeouts(Duration::from_secs(1), Duration::from_secs(3))
    };
    let (secure, _calls, _clock) = provider_with(quick("https://secrets-host.invalid"));
    secure.get("K").await.unwrap_err();
    assert!(!logs.text().contains(WARNING), "{}", logs.text());
    let (remote, _calls, clock) = provider_with(quick("http://secrets-host.invalid:4566"));
    remote.get("K").await.unwrap_err();
    clock.advance(BACKOFF);
    remote.get("K").await.unwrap_err();
    remote.health().await.unwrap_err();
    let warnings: Vec<String> = logs
        .text()
        .lines()
        .filter(|l| l.contains(WARNING))
        .map(str::to_owned)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains("secrets-host.invalid"),
        "{warnings:?}"
    );
    // Another provider warns again.
    let (other, _calls, _clock) = provider_with(quick("http://secrets-host.invalid:4566"));
    other.get("K").await.unwrap_err();
    assert_eq!(logs.text().matches(WARNING).count(), 2, "{}", logs.text());
}

/// What the SDK's default chain answers when it finds no credentials anywhere.
#[derive(Debug)]
struct NoCredentials;

impl secrets_aws::sdk::config::ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no credentials here",
            ),
        ))
    }
}

#[tokio::test]
async fn missing_credentials_and_region_are_misconfigured() {
    let name = common::unique("config");
    let no_region = AwsSecretsManagerProvider::builder(
        AwsSettings::new(&name).with_endpoint_url(common::endpoint()),
    )
    .sdk_config(secrets_aws::sdk::SdkConfig::builder().build())
    .build()
    .unwrap();
    let e = no_region.get("K").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Misconfigured, "{e}");
    assert!(e.to_string().contains("no AWS region"), "{e}");

    let no_credentials = AwsSecretsManagerProvider::builder(common::settings(&name))
        .sdk_config(
            secrets_aws::sdk::SdkConfig::builder()
                .credentials_provider(secrets_aws::sdk::config::SharedCredentialsProvider::new(
                    NoCredentials,
                ))
                .build(),
        )
        .build()
        .unwrap();
    let e = no_credentials.get("K").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Misconfigured, "{e}");
    assert!(e.to_string().contains("no AWS credentials found"), "{e}");

    let no_provider = AwsSecretsManagerProvider::builder(common::settings(&name))
        .sdk_config(secrets_aws::sdk::SdkConfig::builder().build())
        .build()
        .unwrap();
    let e = no_provider.get("K").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Misconfigured, "{e}");
    assert!(e.to_string().contains("no AWS credentials provider"), "{e}");
}

#[tokio::test]
async fn writes_change_one_key_and_keep_everything_else() {
    let admin = common::admin().await;
    let name = common::unique("write");
    common::create(
        &admin,
        &name,
        r#"{"KEEP": "k", "NUM": 7, "NESTED": {"a": [1, 2]}}"#,
    )
    .await;
    let (provider, calls, _clock) = provider_with(common::settings(&name));
    assert_eq!(provider.get("NEW").await.unwrap(), None);
    provider.set("NEW", &"n1".into()).await.unwrap();
    // The write invalidated the copy: the next lookup sees it.
    assert_eq!(
        expose(provider.get("NEW").await.unwrap()).as_deref(),
        Some("n1")
    );
    provider.set("NEW", &"n2".into()).await.unwrap();
    assert!(provider.delete("KEEP").await.unwrap());
    assert!(!provider.delete("KEEP").await.unwrap());
    assert_eq!(
        common::current_json(&admin, &name).await,
        serde_json::json!({"NUM": 7, "NESTED": {"a": [1, 2]}, "NEW": "n2"})
    );
    // Setting the same value again, or deleting a missing key, writes nothing.
    let versions = common::version_count(&admin, &name).await;
    provider.set("NEW", &"n2".into()).await.unwrap();
    assert!(!provider.delete("ABSENT").await.unwrap());
    assert_eq!(common::version_count(&admin, &name).await, versions);
    assert_eq!(calls.count("PutSecretValue"), 3);
}

#[tokio::test]
async fn writes_keep_a_binary_secret_binary_and_start_an_empty_secret() {
    let admin = common::admin().await;
    let name = common::unique("write-binary");
    admin
        .create_secret()
        .name(&name)
        .secret_binary(secrets_aws::sdk::primitives::Blob::new(
            br#"{"A": "a"}"#.to_vec(),
        ))
        .send()
        .await
        .unwrap();
    let (provider, _calls, _clock) = provider_with(common::settings(&name));
    provider.set("B", &"b".into()).await.unwrap();
    let out = admin
        .get_secret_value()
        .secret_id(&name)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    assert!(out.secret_string.is_none());
    let json: serde_json::Value =
        serde_json::from_slice(out.secret_binary.unwrap().as_ref()).unwrap();
    assert_eq!(json, serde_json::json!({"A": "a", "B": "b"}));

    // A secret created without any value.
    let name = common::unique("write-empty");
    admin.create_secret().name(&name).send().await.unwrap();
    let (provider, _calls, _clock) = provider_with(common::settings(&name));
    provider.set("FIRST", &"1".into()).await.unwrap();
    assert_eq!(
        common::current_json(&admin, &name).await,
        serde_json::json!({"FIRST": "1"})
    );
}

#[tokio::test]
async fn writes_refuse_what_they_cannot_do_safely() {
    let admin = common::admin().await;
    // No such secret: not created behind the user's back.
    let name = common::unique("write-missing");
    let (provider, _calls, _clock) = provider_with(common::settings(&name));
    let e = provider.set("K", &"v".into()).await.unwrap_err();
    assert_eq!((e.kind(), e.key()), (ErrorKind::NotFound, Some("K")));
    assert!(e.to_string().contains("create it first"), "{e}");
    // A value that is not an object is not replaced.
    let name = common::unique("write-bad");
    common::create(&admin, &name, "[1, 2, 3]").await;
    let (provider, _calls, _clock) = provider_with(common::settings(&name));
    let e = provider.set("K", &"v".into()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed, "{e}");
    assert_eq!(common::current_text(&admin, &name).await, "[1, 2, 3]");
    assert_eq!(common::version_count(&admin, &name).await, 1);
    // Larger than Secrets Manager stores.
    let name = common::unique("write-big");
    common::create(&admin, &name, "{}").await;
    let (provider, _calls, _clock) = provider_with(common::settings(&name));
    let e = provider
        .set("BIG", &"x".repeat(70_000).into())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue, "{e}");
    assert_eq!(common::version_count(&admin, &name).await, 1);
}

/// Puts `text` from a thread of its own (with its own runtime), so an interceptor can make a
/// concurrent write happen at an exact point of the provider's write.
fn write_now(endpoint: String, name: String, text: &'static str) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let admin = common::admin_at(&endpoint).await;
                common::put(&admin, &name, text).await;
            })
    })
    .join()
    .unwrap();
}

/// Calls `action` just before requests of `operation` whose body mentions `needle` are
/// signed: on the `nth` such request only, or on every one (`nth == 0`).
struct Before {
    operation: &'static str,
    needle: &'static str,
    nth: usize,
    seen: std::sync::atomic::AtomicUsize,
    action: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Before {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Before")
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

impl secrets_aws::sdk::config::Intercept for Before {
    fn name(&self) -> &'static str {
        "tests::Before"
    }

    fn read_before_signing(
        &self,
        context: &secrets_aws::sdk::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &secrets_aws::sdk::config::RuntimeComponents,
        _cfg: &mut secrets_aws::sdk::config::ConfigBag,
    ) -> Result<(), secrets_aws::sdk::error::BoxError> {
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or("");
        let body = request
            .body()
            .bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        if target.ends_with(self.operation) && body.contains(self.needle) {
            let n = self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if self.nth == 0 || n == self.nth {
                (self.action)();
            }
        }
        Ok(())
    }
}

/// A provider whose compare-and-swap of AWSCURRENT is preceded by another writer's put, on
/// the `nth` swap or on every one (`nth == 0`).
fn raced_provider(name: &str, nth: usize) -> AwsSecretsManagerProvider {
    let (endpoint, secret) = (common::endpoint(), name.to_owned());
    let counter = std::sync::atomic::AtomicUsize::new(0);
    AwsSecretsManagerProvider::builder(common::settings(name))
        .interceptor(Before {
            operation: "UpdateSecretVersionStage",
            needle: "AWSCURRENT",
            nth,
            seen: Default::default(),
            action: Box::new(move || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let text: &'static str = match n {
                    0 => r#"{"A": "a", "OTHER": "o"}"#,
                    1 => r#"{"A": "a", "OTHER": "o1"}"#,
                    _ => r#"{"A": "a", "OTHER": "o2"}"#,
                };
                write_now(endpoint.clone(), secret.clone(), text);
            }),
        })
        .build()
        .unwrap()
}

#[test]
fn a_write_racing_another_is_applied_again_on_top_of_it() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let admin = common::admin().await;
        let name = common::unique("race");
        common::create(&admin, &name, r#"{"A": "a"}"#).await;
        let provider = raced_provider(&name, 1);
        provider.set("MINE", &"m".into()).await.unwrap();
        assert_eq!(
            common::current_json(&admin, &name).await,
            serde_json::json!({"A": "a", "OTHER": "o", "MINE": "m"})
        );
    });
}

#[test]
fn a_write_that_keeps_losing_the_race_is_a_conflict_and_nothing_of_it_is_current() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let admin = common::admin().await;
        let name = common::unique("conflict");
        common::create(&admin, &name, r#"{"A": "a"}"#).await;
        let provider = raced_provider(&name, 0);
        let e = provider.set("MINE", &"m".into()).await.unwrap_err();
        assert_eq!(
            (e.kind(), e.key()),
            (ErrorKind::Conflict, Some("MINE")),
            "{e}"
        );
        assert!(e.to_string().contains("3 times"), "{e}");
        assert_eq!(
            common::current_json(&admin, &name).await,
            serde_json::json!({"A": "a", "OTHER": "o2"})
        );
    });
}

#[test]
fn concurrent_writers_of_different_keys_lose_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let admin = common::admin().await;
        let name = common::unique("writers");
        common::create(&admin, &name, "{}").await;
        let tasks: Vec<_> = (0..3)
            .map(|writer| {
                // Separate providers: separate processes as far as locking goes.
                let provider = AwsSecretsManagerProvider::new(common::settings(&name)).unwrap();
                tokio::spawn(async move {
                    let mut conflicts = 0;
                    for i in 0..6 {
                        let key = format!("W{writer}-{i}");
                        loop {
                            match provider.set(&key, &"v".into()).await {
                                Ok(()) => break,
                                Err(e) if e.kind() == ErrorKind::Conflict => conflicts += 1,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                    conflicts
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let object = common::current_json(&admin, &name).await;
        let keys: Vec<&String> = object.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 18, "{keys:?}");
    });
}

#[tokio::test(flavor = "current_thread")]
async fn no_value_reaches_logs_errors_or_debug_output_on_any_path() {
    const SENTINEL: &str = "SENTINEL-aws-9b1e-never-shown";
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let admin = common::admin().await;
    let mut shown: Vec<String> = Vec::new();
    let describe = |e: ProviderError| {
        format!(
            "{e} {e:?} {:?}",
            std::error::Error::source(&e).map(ToString::to_string)
        )
    };

    // A good secret: reads, a write (its request body is the secret), Debug of everything.
    let name = common::unique("sentinel");
    common::create(
        &admin,
        &name,
        &format!(r#"{{"GOOD": "{SENTINEL}", "NUM": 1}}"#),
    )
    .await;
    let proxy = Proxy::start(&common::endpoint());
    let (provider, _calls, clock) =
        provider_with(common::settings_at(&proxy.endpoint(), &name).with_max_attempts(1));
    let value = provider.get("GOOD").await.unwrap().unwrap();
    assert_eq!(value.expose(), SENTINEL);
    shown.push(describe(provider.get("NUM").await.unwrap_err()));
    provider.set("WRITTEN", &SENTINEL.into()).await.unwrap();
    provider
        .set("GOOD", &format!("{SENTINEL}-2").into())
        .await
        .unwrap();
    provider.delete("WRITTEN").await.unwrap();
    assert!(provider.get("GOOD").await.unwrap().is_some());
    // A caller's SDK configuration, without stalled-stream protection (one of the SDK's
    // wrappers of request bodies).
    let unprotected = AwsSecretsManagerProvider::builder(common::settings(&name))
        .sdk_config(
            secrets_aws::sdk::SdkConfig::builder()
                .credentials_provider(secrets_aws::sdk::config::SharedCredentialsProvider::new(
                    secrets_aws::sdk::config::Credentials::new(
                        "testing", "testing", None, None, "t",
                    ),
                ))
                .stalled_stream_protection(
                    secrets_aws::sdk::config::StalledStreamProtectionConfig::disabled(),
                )
                .build(),
        )
        .build()
        .unwrap();
    unprotected
        .set("UNPROTECTED", &SENTINEL.into())
        .await
        .unwrap();
    // Answers that fail to parse while holding the secret.
    for fault in [Fault::GarbleBody, Fault::CutBody] {
        proxy.set_fault(fault);
        clock.advance(TTL + BACKOFF);
        // The stale copy is served; the refresh's error is logged.
        provider.get("GOOD").await.unwrap();
        shown.push(describe(provider.health().await.unwrap_err()));
    }
    proxy.set_fault(Fault::None);
    let debug_of_provider = format!("{provider:?}");

    // Wrong JSON, non-object, non-string value, missing secret: each error path.
    for text in [
        format!("{{\"A\": \"{SENTINEL}\",, }}"),
        format!("{{\"A\": \"{SENTINEL}\""),
        format!("\"{SENTINEL}\""),
        format!("[\"{SENTINEL}\"]"),
        format!("{{\"A\": [\"{SENTINEL}\"]}}"),
        format!("{{\"A\": {{\"{SENTINEL}\": \"{SENTINEL}\"}}}}"),
    ] {
        let name = common::unique("sentinel-bad");
        common::create(&admin, &name, &text).await;
        let (provider, _calls, _clock) = provider_with(common::settings(&name));
        shown.push(describe(provider.get("A").await.unwrap_err()));
        // Objects with a non-string value are healthy and writable; the others are not.
        if let Err(e) = provider.health().await {
            shown.push(describe(e));
        }
        if let Err(e) = provider.set("B", &SENTINEL.into()).await {
            shown.push(describe(e));
        }
        shown.push(format!("{provider:?}"));
    }
    let (missing, _calls, _clock) =
        provider_with(common::settings(&common::unique("sentinel-missing")));
    shown.push(describe(missing.get("A").await.unwrap_err()));
    shown.push(describe(
        missing.set("A", &SENTINEL.into()).await.unwrap_err(),
    ));

    // A stopped server, during a read and during a write.
    let moto = OwnMoto::start(common::free_port());
    let endpoint = moto.endpoint();
    let own_admin = common::admin_at(&endpoint).await;
    let name = common::unique("sentinel-down");
    common::create(&own_admin, &name, &format!(r#"{{"A": "{SENTINEL}"}}"#)).await;
    let (down, _calls, clock) =
        provider_with(common::settings_at(&endpoint, &name).with_max_attempts(1));
    down.get("A").await.unwrap();
    moto.stop();
    clock.advance(TTL);
    assert_eq!(down.get("A").await.unwrap().unwrap().expose(), SENTINEL);
    shown.push(describe(down.set("A", &SENTINEL.into()).await.unwrap_err()));
    shown.push(describe(down.health().await.unwrap_err()));
    shown.push(format!("{down:?} {debug_of_provider} {value:?}"));

    let text = logs.text();
    assert!(text.contains("TRACE"), "TRACE logging was captured");
    assert!(
        text.contains("transmitting request"),
        "the SDK's request log was captured"
    );
    assert!(text.contains("serving the last good copy"), "{text}");
    assert!(!text.contains(SENTINEL), "a value reached the logs");
    for s in shown {
        assert!(!s.contains(SENTINEL), "leaked: {s}");
    }
}
