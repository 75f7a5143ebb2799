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
//! ```
//! use secrets_env::{EnvProvider, normalize_key};
//!
//! assert_eq!(normalize_key("hf-token"), "HF_TOKEN");
//! let env = EnvProvider::with_prefix("MYAPP");
//! assert_eq!(env.variable_name("api.key"), "MYAPP_API_KEY");
//! ```

use std::ffi::OsString;

use secrets_core::{ProviderError, Secret, SecretProvider, async_trait};

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

/// Reads secrets from the process environment.
#[derive(Debug, Clone, Default)]
pub struct EnvProvider {
    prefix: Option<String>,
}

impl EnvProvider {
    /// A provider without prefix.
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider reading `PREFIX_KEY`; the prefix is normalised like keys. An empty prefix
    /// means no prefix.
    pub fn with_prefix(prefix: impl AsRef<str>) -> Self {
        let prefix = normalize_key(prefix.as_ref().trim_end_matches('_'));
        Self {
            prefix: (!prefix.is_empty()).then_some(prefix),
        }
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
            Err(_) => Err(ProviderError::InvalidValue {
                provider: PROVIDER_NAME.to_owned(),
                path: format!("${variable}").into(),
                key: key.to_owned(),
                reason: "the environment variable is not valid UTF-8".to_owned(),
            }),
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
        assert_eq!(
            EnvProvider::with_prefix("simpletuner").variable_name("hf-token"),
            "SIMPLETUNER_HF_TOKEN"
        );
        assert_eq!(EnvProvider::with_prefix("APP_").variable_name("k"), "APP_K");
        assert_eq!(EnvProvider::with_prefix("").variable_name("k"), "K");
        assert_eq!(EnvProvider::new().prefix(), None);
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
        assert_eq!(
            err.to_string(),
            "provider `env`: key `k` in $K: the environment variable is not valid UTF-8"
        );
    }

    #[tokio::test]
    async fn reads_the_process_environment() {
        // Edition 2024 makes set_var unsafe and this workspace forbids unsafe code, so this
        // reads variables every process has; the CLI tests set variables per child process.
        let env = EnvProvider::new();
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
