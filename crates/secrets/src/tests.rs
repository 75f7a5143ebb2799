//! Facade wiring: configuration, chain building, the blocking API and the global manager.

#[cfg(any(feature = "file", feature = "config"))]
use std::collections::HashMap;
#[cfg(any(feature = "file", feature = "config"))]
use std::ffi::OsString;

use crate::*;

#[cfg(any(feature = "file", feature = "config"))]
fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
    let vars: HashMap<String, OsString> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    move |name| vars.get(name).cloned()
}

#[cfg(feature = "file")]
fn app(name: &str) -> AppName {
    AppName::new(name).unwrap()
}

#[cfg(feature = "file")]
#[test]
fn from_lookup_asks_each_provider_for_its_settings() {
    let c = Config::from_lookup(
        &app("simpletuner"),
        &lookup(&[("SIMPLETUNER_SECRETS_FILE", "/etc/app/secrets.yaml")]),
    )
    .unwrap();
    assert_eq!(
        c.file,
        Some(FileSettings::with_path("/etc/app/secrets.yaml"))
    );
    let c = Config::from_lookup(&app("my-app"), &lookup(&[("MY_APP_SECRETS_FILE", "")])).unwrap();
    assert_eq!(
        c.file,
        Some(FileSettings::default()),
        "empty counts as unset"
    );
}

#[cfg(all(feature = "file", unix))]
#[test]
fn a_non_utf8_setting_is_an_error_naming_the_variable() {
    use std::os::unix::ffi::OsStringExt;
    let bad =
        |name: &str| (name == "SIMPLETUNER_SECRETS_FILE").then(|| OsString::from_vec(vec![0xff]));
    let config = Config::from_lookup(&app("simpletuner"), &bad).unwrap();
    let (kind, error) = &config.unusable[0];
    assert_eq!(*kind, ProviderKind::File);
    assert!(
        error.to_string().contains("SIMPLETUNER_SECRETS_FILE")
            && error.to_string().contains("UTF-8"),
        "{error}"
    );
    // The file provider stays in the chain and fails every lookup with that reason...
    let chain = blocking::SecretsManager::from_config(&config).unwrap();
    let err = chain.get("K").unwrap_err();
    assert!(
        err.to_string().contains("SIMPLETUNER_SECRETS_FILE"),
        "{err}"
    );
    // ...asked for by name it refuses to build, and without it the others work.
    assert!(
        config
            .clone()
            .providers([ProviderKind::File])
            .build()
            .is_err()
    );
    #[cfg(feature = "env")]
    config
        .clone()
        .providers([ProviderKind::Env])
        .build()
        .unwrap();
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
    assert_eq!(
        ProviderKind::all()
            .map(ProviderKind::name)
            .collect::<Vec<_>>(),
        ["env", "file", "aws", "vault"],
        "the default order"
    );
}

#[test]
fn explicitly_requested_providers_must_be_compiled_in_and_the_error_names_the_feature() {
    for kind in ProviderKind::all().filter(|k| !k.is_compiled()) {
        let err = Config::default().providers([kind]).build().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "provider `{0}` is not compiled into this build (enable the `{0}` feature of the `secrets` crate)",
                kind.name()
            )
        );
    }
    // The default list leaves them out instead.
    let m = Config::default().build().unwrap();
    for name in m.provider_names() {
        assert!(name.parse::<ProviderKind>().unwrap().is_compiled());
    }
}

#[test]
fn compiled_providers_follow_the_features() {
    assert_eq!(ProviderKind::Env.is_compiled(), cfg!(feature = "env"));
    assert_eq!(ProviderKind::File.is_compiled(), cfg!(feature = "file"));
    assert_eq!(ProviderKind::Aws.is_compiled(), cfg!(feature = "aws"));
    let status = Config::default().provider_status();
    assert_eq!(status.len(), 4);
    for s in status {
        assert_eq!(s.compiled, s.kind.is_compiled());
        assert!(s.selected);
        assert_eq!(
            s.configured,
            s.compiled && matches!(s.kind, ProviderKind::Env | ProviderKind::File)
        );
    }
}

#[cfg(feature = "aws")]
#[test]
fn aws_is_configured_by_its_secret_name_and_joins_the_chain_after_file() {
    use std::collections::HashMap;
    use std::ffi::OsString;

    let app = AppName::new("myapp").unwrap();
    let none = Config::from_lookup(&app, &|_| None).unwrap();
    assert!(none.aws.is_none());
    let vars: HashMap<&str, OsString> = [
        ("MYAPP_AWS_SECRET_NAME", OsString::from("prod/myapp")),
        ("MYAPP_AWS_VERSION_STAGE", OsString::from("AWSPREVIOUS")),
    ]
    .into_iter()
    .collect();
    let config = Config::from_lookup(&app, &|name| vars.get(name).cloned()).unwrap();
    let settings = config.aws.clone().unwrap();
    assert_eq!(settings.secret_name, "prod/myapp");
    assert_eq!(
        settings.version,
        crate::aws::VersionSelector::Stage("AWSPREVIOUS".into())
    );
    let status = config.provider_status();
    assert!(
        status
            .iter()
            .any(|s| s.kind == ProviderKind::Aws && s.configured)
    );
    // Building makes no network call: the SDK client is created on first use.
    let manager = config.providers([ProviderKind::Aws]).build().unwrap();
    assert_eq!(manager.provider_names(), ["aws"]);
    // A pinned stage cannot take writes.
    assert!(manager.writer().is_none_or(|w| w.name() != "aws"));
    let mut bad = Config::new(app).aws(AwsSettings::new(""));
    bad.providers = Some(vec![ProviderKind::Aws]);
    assert!(matches!(bad.build().unwrap_err(), ConfigError::Provider(_)));
}

#[cfg(feature = "env")]
#[test]
fn a_provider_requested_without_settings_is_not_configured() {
    let mut config = Config::default().providers([ProviderKind::Env]);
    config.env = None;
    assert!(matches!(
        config.build().unwrap_err(),
        ConfigError::NotConfigured(ProviderKind::Env)
    ));
}

#[cfg(all(feature = "env", feature = "file"))]
#[test]
fn the_default_chain_is_env_then_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = Config::new(app("t"))
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
        &Config::new(app("t"))
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
        &Config::new(app("t"))
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
    let a = global().unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &global().unwrap()));
    assert_eq!(a.provider_names(), ["first"]);
    reset_global();
    let b = global().unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(
        b.provider_names(),
        SecretsManager::from_env().unwrap().provider_names()
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

#[cfg(feature = "vault")]
#[test]
fn vault_is_configured_by_its_address_and_joins_the_default_chain_last() {
    use std::ffi::OsString;
    let lookup_of = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    };
    let vault_status = |c: &Config| {
        c.provider_status()
            .into_iter()
            .find(|s| s.kind == ProviderKind::Vault)
            .unwrap()
    };
    let c = Config::from_lookup(&AppName::default(), &lookup_of(&[])).unwrap();
    assert!(c.vault.is_none());
    assert!(!vault_status(&c).configured && vault_status(&c).compiled);
    assert!(!c.build().unwrap().provider_names().contains(&"vault"));

    let c = Config::from_lookup(
        &AppName::default(),
        &lookup_of(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "s.facade-test"),
            ("SIMPLETUNER_VAULT_PATH", "team/app"),
        ]),
    )
    .unwrap();
    let settings = c.vault.as_ref().unwrap();
    assert_eq!(
        (settings.mount.as_str(), settings.path.as_str()),
        ("secret", "team/app")
    );
    assert!(vault_status(&c).configured);
    let manager = c.build().unwrap();
    assert_eq!(manager.provider_names().last(), Some(&"vault"));
    assert!(!format!("{c:?}").contains("s.facade-test"));

    // A bad Vault variable makes Vault unusable, not the whole configuration.
    let c = Config::from_lookup(
        &AppName::default(),
        &lookup_of(&[("VAULT_ADDR", "http://h"), ("VAULT_SKIP_VERIFY", "maybe")]),
    )
    .unwrap();
    let (kind, err) = &c.unusable[0];
    assert_eq!(*kind, ProviderKind::Vault);
    assert!(err.to_string().contains("VAULT_SKIP_VERIFY"), "{err}");
    assert!(vault_status(&c).configured);
}

#[cfg(feature = "config")]
#[test]
fn the_config_feature_is_the_cloud_provider_store() {
    use crate::config::{ConfigStore, CostLimit, StoreSettings};

    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::in_dir(dir.path());
    let store = ConfigStore::builder(&settings.jobs_db).open().unwrap();
    let limit = CostLimit {
        enabled: true,
        amount: 10.0,
        ..CostLimit::default()
    };
    store.set_cost_limit("replicate", limit).unwrap();
    assert_eq!(store.cost_limit("replicate").unwrap(), limit);
    assert!(settings.jobs_db.ends_with("cloud/jobs.db"));
}

/// `<APP>_DATABASE_URL` picks the store; a PostgreSQL URL in a build without `postgres` is an
/// error naming the variable and the feature, never a silent fallback to the SQLite files
/// (replicas would each write their own).
#[cfg(feature = "config")]
#[test]
fn the_database_url_variable_selects_the_store() {
    use crate::config::{ConfigStore, StoreError, StoreLocation, StoreSettings};

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let url = "postgres://app:SENTINEL-pw@127.0.0.1:1/db?sslmode=disable";
    let vars = lookup(&[
        ("SIMPLETUNER_STATE_DIR", state),
        ("SIMPLETUNER_DATABASE_URL", url),
        ("SIMPLETUNER_AUDIT_KEY", "a test audit key"),
    ]);
    let settings = StoreSettings::from_lookup(&AppName::default(), &vars).unwrap();
    assert!(matches!(
        settings.jobs_location(),
        StoreLocation::Postgres(_)
    ));
    assert!(!format!("{settings:?}").contains("SENTINEL"));
    let e = ConfigStore::open(&settings).unwrap_err();
    assert!(!e.to_string().contains("SENTINEL"), "{e}");
    #[cfg(not(feature = "postgres"))]
    {
        assert!(matches!(e, StoreError::BackendNotCompiled { .. }), "{e}");
        assert!(
            e.to_string().contains("SIMPLETUNER_DATABASE_URL")
                && e.to_string().contains("`postgres`"),
            "{e}"
        );
        assert!(
            !settings.jobs_db.exists(),
            "no SQLite file was created instead"
        );
    }
    #[cfg(feature = "postgres")]
    assert!(e.is_transient(), "nobody listens on port 1: {e}");
    // Unset (or empty), the SQLite files; another scheme is refused naming the variable.
    let empty = lookup(&[
        ("SIMPLETUNER_STATE_DIR", state),
        ("SIMPLETUNER_DATABASE_URL", ""),
    ]);
    let settings = StoreSettings::from_lookup(&AppName::default(), &empty).unwrap();
    assert_eq!(
        settings.jobs_location(),
        StoreLocation::Sqlite(settings.jobs_db.clone())
    );
    let mysql = lookup(&[("SIMPLETUNER_DATABASE_URL", "mysql://u:SENTINEL@h/x")]);
    let e = StoreSettings::from_lookup(&AppName::default(), &mysql).unwrap_err();
    assert!(matches!(e, StoreError::InvalidDatabaseUrl { .. }), "{e}");
    assert!(
        e.to_string().starts_with("SIMPLETUNER_DATABASE_URL: "),
        "{e}"
    );
    assert!(!e.to_string().contains("SENTINEL"));
}
