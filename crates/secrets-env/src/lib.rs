//! Environment-variable provider.
//!
//! A key is looked up as an environment variable after normalisation: uppercased, with `-`
//! and `.` replaced by `_`, so `hf-token`, `hf.token` and `HF_TOKEN` all read `HF_TOKEN`.
//! With a prefix the variable is `PREFIX_KEY` (`SIMPLETUNER` + `hf-token` -> `SIMPLETUNER_HF_TOKEN`);
//! only the prefixed name is read then.
//!
//! **An empty variable counts as absent.** An empty credential is never valid, and treating
//! it as a value would shadow a real one in a later provider (a file, a vault) just because a
//! deployment template exported `HF_TOKEN=`.
//!
//! The provider is read-only: writing the process environment would race with other threads
//! and would not outlive the process.
//!
//! Normalisation is for environment variables only: the file, AWS and Vault providers match
//! keys exactly.
//!
//! ```
//! use secrets_env::{EnvProvider, EnvSettings, normalize_key};
//!
//! assert_eq!(normalize_key("hf-token"), "HF_TOKEN");
//! let env = EnvProvider::new(EnvSettings::with_prefix("MYAPP"));
//! assert_eq!(env.variable_name("api.key"), "MYAPP_API_KEY");
//! ```

use std::ffi::OsString;

use private_fs::AppName;
use secrets_core::{ErrorKind, Location, ProviderError, Secret, SecretProvider, async_trait};

/// The provider name used in provenance and errors.
pub const PROVIDER_NAME: &str = "env";

/// Normalises a key to an environment variable name: uppercase, `-` and `.` to `_`.
pub fn normalize_key(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Settings of the environment provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSettings {
    /// Prefix of the variables (`PREFIX_KEY`); none by default, as in the original.
    pub prefix: Option<String>,
}

impl EnvSettings {
    /// Settings with a prefix.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: Some(prefix.into()),
        }
    }

    /// The settings an application gets from its configuration variables. The environment
    /// provider has none of its own (the prefix is set explicitly, for example with the
    /// CLI's `--env-prefix`), so this is the default; it exists so that every provider is
    /// configured the same way.
    pub fn from_lookup(
        _app: &AppName,
        _lookup: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Self, ProviderError> {
        Ok(Self::default())
    }
}

/// Reads secrets from the process environment.
#[derive(Debug, Clone, Default)]
pub struct EnvProvider {
    prefix: Option<String>,
}

impl EnvProvider {
    /// A provider with these settings; the prefix is normalised like keys, and an empty
    /// prefix means no prefix.
    pub fn new(settings: EnvSettings) -> Self {
        let prefix = settings
            .prefix
            .map(|p| normalize_key(p.trim_end_matches('_')))
            .filter(|p| !p.is_empty());
        Self { prefix }
    }

    /// The prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The environment variable a key is read from.
    pub fn variable_name(&self, key: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}_{}", normalize_key(key)),
            None => normalize_key(key),
        }
    }
}

#[async_trait]
impl SecretProvider for EnvProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn is_available(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Secret>, ProviderError> {
        let variable = self.variable_name(key);
        interpret(key, &variable, std::env::var_os(&variable))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    fn lookup_location(&self, key: &str) -> Option<Location> {
        Some(Location::Variable(self.variable_name(key)))
    }
}

/// Turns a variable's raw content into the provider's answer.
fn interpret(
    key: &str,
    variable: &str,
    raw: Option<OsString>,
) -> Result<Option<Secret>, ProviderError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.is_empty() => Ok(None),
        Some(raw) => match raw.into_string() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(_) => Err(ProviderError::new(
                PROVIDER_NAME,
                ErrorKind::InvalidValue,
                "the value is not valid UTF-8",
            )
            .with_key(key)
            .with_location(Location::Variable(variable.to_owned()))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_matches_the_original() {
        for (key, variable) in [
            ("hf-token", "HF_TOKEN"),
            ("hf.token", "HF_TOKEN"),
            ("HF_TOKEN", "HF_TOKEN"),
            ("replicate-api.token", "REPLICATE_API_TOKEN"),
            ("a-b.c_d", "A_B_C_D"),
        ] {
            assert_eq!(normalize_key(key), variable, "{key}");
        }
    }

    #[test]
    fn prefixes_are_joined_with_an_underscore() {
        let with = |p: &str| EnvProvider::new(EnvSettings::with_prefix(p));
        assert_eq!(
            with("simpletuner").variable_name("hf-token"),
            "SIMPLETUNER_HF_TOKEN"
        );
        assert_eq!(with("APP_").variable_name("k"), "APP_K");
        assert_eq!(with("").variable_name("k"), "K");
        assert_eq!(EnvProvider::default().prefix(), None);
    }

    #[test]
    fn empty_variables_count_as_absent() {
        assert!(interpret("k", "K", None).unwrap().is_none());
        assert!(
            interpret("k", "K", Some(OsString::new()))
                .unwrap()
                .is_none()
        );
        let v = interpret("k", "K", Some(" x ".into())).unwrap().unwrap();
        assert_eq!(v.expose(), " x ");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_is_an_error_naming_the_variable() {
        use std::os::unix::ffi::OsStringExt;
        let err = interpret("k", "K", Some(OsString::from_vec(vec![0xff, 0xfe]))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        assert_eq!(
            err.to_string(),
            "provider `env`: invalid value for key `k` in variable $K: the value is not valid UTF-8"
        );
    }

    #[tokio::test]
    async fn reads_the_process_environment() {
        // Edition 2024 makes set_var unsafe and this workspace forbids unsafe code, so this
        // reads variables every process has; the CLI tests set variables per child process.
        let env = EnvProvider::default();
        assert!(
            env.get("PATH")
                .await
                .unwrap()
                .is_some_and(|p| !p.is_empty())
        );
        let unset = env.get("SECRETS_ENV_TEST_SURELY_UNSET_9F2C").await.unwrap();
        assert!(unset.is_none());
    }
}
