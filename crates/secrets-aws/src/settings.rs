//! [`AwsSettings`]: which secret, where, which version, and the refresh and timeout rules.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use private_fs::AppName;
use secrets_core::{ErrorKind, Location, ProviderError};

use crate::PROVIDER_NAME;

/// Suffix of the variable naming the secret: `<APP>_AWS_SECRET_NAME`
/// (`SIMPLETUNER_AWS_SECRET_NAME`), as in the original server.
pub const SECRET_NAME_VAR_SUFFIX: &str = "AWS_SECRET_NAME";
/// Suffix of the variable selecting a version stage: `<APP>_AWS_VERSION_STAGE`.
pub const VERSION_STAGE_VAR_SUFFIX: &str = "AWS_VERSION_STAGE";
/// Suffix of the variable selecting a version id: `<APP>_AWS_VERSION_ID`.
pub const VERSION_ID_VAR_SUFFIX: &str = "AWS_VERSION_ID";
/// Suffix of the variable setting the cache TTL in whole seconds: `<APP>_AWS_CACHE_TTL`.
pub const CACHE_TTL_VAR_SUFFIX: &str = "AWS_CACHE_TTL";

/// The stage Secrets Manager labels the current version with.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The stage of the version before the current one.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// Default TTL of the fetched secret: 300 s.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Default pause before asking again after a failed refresh: 5 s.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(5);
/// Default TCP/TLS connect timeout: 2 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default limit for a whole API call, retries included: 5 s.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of attempts per API call (the SDK's standard retry mode): 3.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// Which version of the secret to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    /// The version carrying this staging label (`AWSCURRENT`, `AWSPREVIOUS`, a custom one).
    Stage(String),
    /// One version by its id.
    Id(String),
}

impl Default for VersionSelector {
    fn default() -> Self {
        Self::Stage(AWSCURRENT.to_owned())
    }
}

impl VersionSelector {
    /// Whether this selects the current version (the one writes replace).
    pub fn is_current(&self) -> bool {
        matches!(self, Self::Stage(stage) if stage == AWSCURRENT)
    }
}

impl fmt::Display for VersionSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stage(stage) => write!(f, "stage {stage}"),
            Self::Id(id) => write!(f, "version id {id}"),
        }
    }
}

/// Settings of the AWS Secrets Manager provider.
///
/// Only the secret name is required. The region, the credentials and the endpoint come from
/// the SDK's standard chains unless set here: `AWS_REGION`, `AWS_DEFAULT_REGION` or the
/// profile's region; environment, profile, web identity, container or instance credentials;
/// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_SECRETS_MANAGER`). The SDK reads those from the
/// process environment and `~/.aws/`, not through the lookup given to
/// [`from_lookup`](Self::from_lookup).
///
/// ```
/// use std::time::Duration;
/// use secrets_aws::{AwsSettings, VersionSelector};
///
/// let settings = AwsSettings::new("prod/simpletuner")
///     .with_region("eu-west-1")
///     .with_version_stage("AWSPREVIOUS")
///     .with_ttl(Duration::from_secs(60));
/// assert_eq!(settings.version, VersionSelector::Stage("AWSPREVIOUS".into()));
/// assert!(settings.serve_stale);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AwsSettings {
    /// The secret's name or ARN.
    pub secret_name: String,
    /// The region; `None`: as the SDK resolves it.
    pub region: Option<String>,
    /// The endpoint (a local test server, a VPC endpoint); `None`: as the SDK resolves it.
    pub endpoint_url: Option<String>,
    /// Which version to read ([`AWSCURRENT`] by default). Writes need `AWSCURRENT`.
    pub version: VersionSelector,
    /// How long a fetched secret is served without asking AWS again (300 s).
    pub ttl: Duration,
    /// Whether the last good copy is served, with a warning, when a refresh fails with a
    /// network error, a timeout, throttling or a 5xx (on by default).
    pub serve_stale: bool,
    /// After a failed refresh, how long lookups get the stale copy (or the same error)
    /// before AWS is asked again (5 s).
    pub retry_backoff: Duration,
    /// TCP and TLS connect timeout (2 s).
    pub connect_timeout: Duration,
    /// Limit for one API call, retries included (5 s). A lookup's first call shares it with
    /// loading the SDK's configuration (region discovery, credentials).
    pub operation_timeout: Duration,
    /// Attempts per API call, the first included (3); the SDK backs off between them.
    pub max_attempts: u32,
}

impl AwsSettings {
    /// Settings for a secret, everything else at its default.
    pub fn new(secret_name: impl Into<String>) -> Self {
        Self {
            secret_name: secret_name.into(),
            region: None,
            endpoint_url: None,
            version: VersionSelector::default(),
            ttl: DEFAULT_TTL,
            serve_stale: true,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    /// The settings an application gets from its variables, or `Ok(None)` when
    /// `<APP>_AWS_SECRET_NAME` is unset or empty (the provider is not configured):
    ///
    /// - `<APP>_AWS_SECRET_NAME`: the secret's name or ARN;
    /// - `<APP>_AWS_VERSION_STAGE` or `<APP>_AWS_VERSION_ID` (not both): the version to read;
    /// - `<APP>_AWS_CACHE_TTL`: the TTL in whole seconds.
    ///
    /// A variable that is not UTF-8, a TTL that is not a number, or both version variables
    /// give a [`ErrorKind::Misconfigured`] error naming the variable.
    pub fn from_lookup(
        app: &AppName,
        lookup: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Option<Self>, ProviderError> {
        let read = |suffix: &str| -> Result<(String, Option<String>), ProviderError> {
            let name = app.var(suffix);
            let value = private_fs::read_var(lookup, &name).map_err(|e| {
                misconfigured(e.to_string()).with_location(Location::Variable(name.clone()))
            })?;
            Ok((name, value))
        };
        let (_, Some(secret_name)) = read(SECRET_NAME_VAR_SUFFIX)? else {
            return Ok(None);
        };
        let mut settings = Self::new(secret_name.trim());
        let (stage_var, stage) = read(VERSION_STAGE_VAR_SUFFIX)?;
        let (id_var, id) = read(VERSION_ID_VAR_SUFFIX)?;
        settings.version = match (stage, id) {
            (Some(_), Some(_)) => {
                return Err(misconfigured(format!(
                    "set {stage_var} or {id_var}, not both: a version is selected by stage or by id"
                ))
                .with_location(Location::Variable(id_var)));
            }
            (Some(stage), None) => VersionSelector::Stage(stage.trim().to_owned()),
            (None, Some(id)) => VersionSelector::Id(id.trim().to_owned()),
            (None, None) => VersionSelector::default(),
        };
        let (ttl_var, ttl) = read(CACHE_TTL_VAR_SUFFIX)?;
        if let Some(ttl) = ttl {
            let seconds: u64 = ttl.trim().parse().map_err(|_| {
                misconfigured(format!(
                    "{ttl_var} must be a whole number of seconds, not `{}`",
                    ttl.escape_default()
                ))
                .with_location(Location::Variable(ttl_var.clone()))
            })?;
            settings.ttl = Duration::from_secs(seconds);
        }
        settings.validate()?;
        Ok(Some(settings))
    }

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets the endpoint.
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Reads the version with this staging label.
    pub fn with_version_stage(mut self, stage: impl Into<String>) -> Self {
        self.version = VersionSelector::Stage(stage.into());
        self
    }

    /// Reads the version with this id.
    pub fn with_version_id(mut self, id: impl Into<String>) -> Self {
        self.version = VersionSelector::Id(id.into());
        self
    }

    /// Sets the TTL of the fetched secret.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Turns serving the last good copy during an outage on or off.
    pub fn with_serve_stale(mut self, serve_stale: bool) -> Self {
        self.serve_stale = serve_stale;
        self
    }

    /// Sets the pause before asking again after a failed refresh.
    pub fn with_retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Sets the connect timeout and the limit of a whole API call.
    pub fn with_timeouts(mut self, connect: Duration, operation: Duration) -> Self {
        self.connect_timeout = connect;
        self.operation_timeout = operation;
        self
    }

    /// Sets the attempts per API call (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Checks what the SDK would only reject at the first call.
    pub fn validate(&self) -> Result<(), ProviderError> {
        let location = || Location::Secret(self.secret_name.clone());
        if self.secret_name.trim().is_empty() {
            return Err(misconfigured("the secret name is empty"));
        }
        match &self.version {
            VersionSelector::Stage(s) if s.trim().is_empty() => {
                return Err(misconfigured("the version stage is empty").with_location(location()));
            }
            VersionSelector::Id(id) if id.trim().is_empty() => {
                return Err(misconfigured("the version id is empty").with_location(location()));
            }
            _ => {}
        }
        if self.max_attempts == 0 {
            return Err(misconfigured("max_attempts must be at least 1").with_location(location()));
        }
        if self.connect_timeout.is_zero() || self.operation_timeout.is_zero() {
            return Err(
                misconfigured("timeouts must be longer than zero").with_location(location())
            );
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(misconfigured(format!(
                "the endpoint URL must start with http:// or https://, not `{}`",
                url.escape_default()
            ))
            .with_location(location()));
        }
        Ok(())
    }
}

pub(crate) fn misconfigured(message: impl Into<std::borrow::Cow<'static, str>>) -> ProviderError {
    ProviderError::new(PROVIDER_NAME, ErrorKind::Misconfigured, message)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn app() -> AppName {
        AppName::new("simpletuner").unwrap()
    }

    #[test]
    fn no_secret_name_means_not_configured() {
        assert_eq!(
            AwsSettings::from_lookup(&app(), &lookup(&[])).unwrap(),
            None
        );
        let empty = lookup(&[("SIMPLETUNER_AWS_SECRET_NAME", "")]);
        assert_eq!(AwsSettings::from_lookup(&app(), &empty).unwrap(), None);
    }

    #[test]
    fn variables_of_the_app_are_read() {
        let vars = lookup(&[
            ("SIMPLETUNER_AWS_SECRET_NAME", "prod/app"),
            ("SIMPLETUNER_AWS_VERSION_STAGE", "AWSPREVIOUS"),
            ("SIMPLETUNER_AWS_CACHE_TTL", "60"),
            ("OTHER_AWS_SECRET_NAME", "ignored"),
        ]);
        let s = AwsSettings::from_lookup(&app(), &vars).unwrap().unwrap();
        assert_eq!(s.secret_name, "prod/app");
        assert_eq!(s.version, VersionSelector::Stage(AWSPREVIOUS.into()));
        assert_eq!(s.ttl, Duration::from_secs(60));
        assert_eq!((s.region, s.endpoint_url), (None, None));
        let other = AppName::new("other").unwrap();
        let s = AwsSettings::from_lookup(&other, &vars).unwrap().unwrap();
        assert_eq!(s.secret_name, "ignored");
        assert!(s.version.is_current());
        assert_eq!(s.ttl, DEFAULT_TTL);
    }

    #[test]
    fn bad_variables_are_errors_naming_them() {
        let both = lookup(&[
            ("SIMPLETUNER_AWS_SECRET_NAME", "s"),
            ("SIMPLETUNER_AWS_VERSION_STAGE", "AWSPREVIOUS"),
            ("SIMPLETUNER_AWS_VERSION_ID", "v1"),
        ]);
        let e = AwsSettings::from_lookup(&app(), &both).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Misconfigured);
        assert!(e.to_string().contains("SIMPLETUNER_AWS_VERSION_ID"), "{e}");
        let ttl = lookup(&[
            ("SIMPLETUNER_AWS_SECRET_NAME", "s"),
            ("SIMPLETUNER_AWS_CACHE_TTL", "5m"),
        ]);
        let e = AwsSettings::from_lookup(&app(), &ttl).unwrap_err();
        assert!(e.to_string().contains("SIMPLETUNER_AWS_CACHE_TTL"), "{e}");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let bad = |name: &str| {
                (name == "SIMPLETUNER_AWS_SECRET_NAME").then(|| OsString::from_vec(vec![0xff]))
            };
            let e = AwsSettings::from_lookup(&app(), &bad).unwrap_err();
            assert!(e.to_string().contains("SIMPLETUNER_AWS_SECRET_NAME"), "{e}");
        }
    }

    #[test]
    fn validation_rejects_what_the_sdk_would_reject_later() {
        assert!(AwsSettings::new("s").validate().is_ok());
        assert!(AwsSettings::new(" ").validate().is_err());
        assert!(
            AwsSettings::new("s")
                .with_version_stage("")
                .validate()
                .is_err()
        );
        assert!(
            AwsSettings::new("s")
                .with_max_attempts(0)
                .validate()
                .is_err()
        );
        assert!(
            AwsSettings::new("s")
                .with_endpoint_url("localhost:4566")
                .validate()
                .is_err()
        );
        assert!(
            AwsSettings::new("s")
                .with_timeouts(Duration::ZERO, Duration::from_secs(1))
                .validate()
                .is_err()
        );
    }
}
