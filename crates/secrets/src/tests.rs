//! Facade wiring: configuration, chain building, the blocking API and the global manager.

use std::collections::HashMap;

use crate::*;

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.get(name).cloned()
}

#[test]
fn from_lookup_reads_the_original_variables() {
    let c = Config::from_lookup(
        "simpletuner",
        lookup(&[
            ("SIMPLETUNER_SECRETS_FILE", "/etc/app/secrets.yaml"),
            ("SIMPLETUNER_AWS_SECRET_NAME", "prod/app"),
            ("AWS_REGION", "eu-west-1"),
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "s.sentinel"),
            ("SIMPLETUNER_VAULT_PATH", ""),
        ]),
    );
    assert_eq!(
        c.file_path.as_deref(),
        Some("/etc/app/secrets.yaml".as_ref())
    );
    assert_eq!(c.aws_secret_name.as_deref(), Some("prod/app"));
    assert_eq!(c.aws_region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.vault_url.as_deref(), Some("http://127.0.0.1:8200"));
    assert_eq!(c.vault_path, None, "empty variables count as unset");
    assert!(
        !format!("{c:?}").contains("sentinel"),
        "the token is redacted"
    );

    let c = Config::from_lookup(
        "my-app",
        lookup(&[
            ("MY_APP_SECRETS_FILE", "x.json"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_REGION", "other"),
        ]),
    );
    assert_eq!(c.file_path.as_deref(), Some("x.json".as_ref()));
    assert_eq!(c.aws_region.as_deref(), Some("us-east-1"));
}

#[test]
fn provider_lists_parse_and_reject_unknown_names() {
    assert_eq!(
        ProviderKind::parse_list("env, FILE,env").unwrap(),
        [ProviderKind::Env, ProviderKind::File]
    );
    let err = ProviderKind::parse_list("env,ldap").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown provider `ldap` (expected one of env, file, aws, vault)"
    );
}

#[test]
fn explicitly_requested_providers_must_be_compiled_in() {
    let err = Config::new("t")
        .providers([ProviderKind::Aws])
        .build()
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::NotCompiled(ProviderKind::Aws)),
        "{err}"
    );
    // The default list skips them instead.
    Config::new("t").aws_secret_name("x").build().unwrap();
}

#[cfg(all(feature = "env", feature = "file"))]
#[test]
fn the_default_chain_is_env_then_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = Config::new("t")
        .file_path(dir.path().join("s.json"))
        .build()
        .unwrap();
    assert_eq!(m.provider_names(), ["env", "file"]);
    assert_eq!(m.writer().unwrap().name(), "file");
}

#[cfg(all(feature = "env", feature = "file"))]
#[test]
fn writes_fall_back_to_the_file_when_the_chain_has_no_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let m = blocking::SecretsManager::from_config(
        &Config::new("t")
            .file_path(&path)
            .providers([ProviderKind::Env]),
    )
    .unwrap();
    assert_eq!(m.inner().provider_names(), ["env"]);
    m.set("FALLBACK_KEY", "v").unwrap();
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("FALLBACK_KEY")
    );
}

#[cfg(feature = "file")]
#[test]
fn blocking_api_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let m = blocking::SecretsManager::from_config(
        &Config::new("t")
            .file_path(dir.path().join("s.yaml"))
            .providers([ProviderKind::File]),
    )
    .unwrap();
    assert!(m.hf_token().unwrap().is_none());
    m.set(HF_TOKEN, "hf_1").unwrap();
    m.set_replicate_token("r8_1").unwrap();
    assert_eq!(m.hf_token().unwrap().unwrap().expose(), "hf_1");
    assert_eq!(m.replicate_token().unwrap().unwrap().expose(), "r8_1");
    assert_eq!(m.get_or("nope", "d").unwrap().expose(), "d");
    assert_eq!(
        m.get_with_source(HF_TOKEN).unwrap().unwrap().provider,
        "file"
    );
    assert!(m.delete(HF_TOKEN).unwrap());
    assert!(m.get(HF_TOKEN).unwrap().is_none());
    assert!(m.webhook_secret().unwrap().is_none());
    // One found value (REPLICATE_API_TOKEN) and three remembered misses.
    assert_eq!(m.clear_cache(), 4);
}

#[tokio::test]
async fn blocking_api_inside_a_runtime_does_not_panic() {
    let inner = SecretsManager::builder()
        .provider(std::sync::Arc::new(MemoryProvider::new("m").with("K", "v")))
        .build();
    let m = blocking::SecretsManager::new(std::sync::Arc::new(inner)).unwrap();
    assert_eq!(m.get("K").unwrap().unwrap().expose(), "v");
    drop(tokio::task::spawn_blocking(move || drop(m)).await);
}

#[test]
fn the_global_manager_is_shared_and_resettable() {
    set_global(
        SecretsManager::builder()
            .provider(std::sync::Arc::new(MemoryProvider::new("first")))
            .build(),
    );
    let a = global();
    assert!(std::sync::Arc::ptr_eq(&a, &global()));
    assert_eq!(a.provider_names(), ["first"]);
    reset_global();
    let b = global();
    assert!(!std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(
        b.provider_names(),
        SecretsManager::from_env().provider_names()
    );
}

#[cfg(feature = "cache")]
#[test]
fn the_cache_feature_exposes_ttl_cache_and_its_macro() {
    #[cache::cached(ttl = 10)]
    fn doubled(x: u32) -> u32 {
        x * 2
    }
    assert_eq!(doubled(4), 8);
    assert_eq!(doubled_cache().len(), 1);
    let c: cache::TtlCache<String, u32> = cache::TtlCache::new(10);
    c.insert("a".into(), 1);
    assert_eq!(c.get("a"), Some(1));
}

#[test]
fn the_manager_reports_cache_statistics() {
    let m = SecretsManager::builder()
        .provider(std::sync::Arc::new(MemoryProvider::new("m").with("K", "v")))
        .build();
    let m = blocking::SecretsManager::new(std::sync::Arc::new(m)).unwrap();
    m.get("K").unwrap();
    m.get("K").unwrap();
    let stats = m.inner().cache_stats();
    assert_eq!((stats.hits, stats.loads), (1, 1));
}
