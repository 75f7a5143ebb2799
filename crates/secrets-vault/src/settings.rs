//! [`VaultSettings`]: where the server is, how to log in, which secret to read; and the names
//! of the environment variables they come from (this is the one place that names them).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use private_fs::AppName;
use secrets_core::{ErrorKind, Location, ProviderError, Secret, SnapshotPolicy};

/// The provider name used in provenance, errors and the CLI.
pub const PROVIDER_NAME: &str = "vault";

/// The server's address, e.g. `https://vault.example.com:8200`.
pub const ADDR_VAR: &str = "VAULT_ADDR";
/// A token to authenticate with.
pub const TOKEN_VAR: &str = "VAULT_TOKEN";
/// The namespace (sent as `X-Vault-Namespace`).
pub const NAMESPACE_VAR: &str = "VAULT_NAMESPACE";
/// A PEM file of the CA certificates that verify the server (they replace the system roots).
pub const CACERT_VAR: &str = "VAULT_CACERT";
/// `true`/`1`: do not verify the server's certificate. Dangerous; logged loudly.
pub const SKIP_VERIFY_VAR: &str = "VAULT_SKIP_VERIFY";
/// Total time allowed for one lookup, write or health check, all its requests together
/// (`5`, `5s`, `500ms`, `1m`).
pub const CLIENT_TIMEOUT_VAR: &str = "VAULT_CLIENT_TIMEOUT";
/// The AppRole role ID; setting it selects AppRole login.
pub const ROLE_ID_VAR: &str = "VAULT_ROLE_ID";
/// The AppRole secret ID.
pub const SECRET_ID_VAR: &str = "VAULT_SECRET_ID";
/// A file holding the AppRole secret ID (read at each login, trimmed).
pub const SECRET_ID_FILE_VAR: &str = "VAULT_SECRET_ID_FILE";

/// `<APP>_VAULT_PATH`: the secret's path under the mount (default: the application name,
/// `simpletuner`).
pub const PATH_VAR_SUFFIX: &str = "VAULT_PATH";
/// `<APP>_VAULT_MOUNT`: the KV mount (default `secret`).
pub const MOUNT_VAR_SUFFIX: &str = "VAULT_MOUNT";
/// `<APP>_VAULT_APPROLE_MOUNT`: where the AppRole auth method is mounted (default `approle`).
pub const APPROLE_MOUNT_VAR_SUFFIX: &str = "VAULT_APPROLE_MOUNT";
/// `<APP>_VAULT_KV_VERSION`: `1` or `2`, the mount's KV version (checked against the mount
/// when the server says it).
pub const KV_VERSION_VAR_SUFFIX: &str = "VAULT_KV_VERSION";
/// `<APP>_VAULT_SECRET_VERSION`: read this version of a KV v2 secret (writes are refused).
pub const SECRET_VERSION_VAR_SUFFIX: &str = "VAULT_SECRET_VERSION";
/// `<APP>_VAULT_CACHE_TTL`: how long a read secret is served before it is read again.
pub const CACHE_TTL_VAR_SUFFIX: &str = "VAULT_CACHE_TTL";

/// The default KV mount, as in the original server.
pub const DEFAULT_MOUNT: &str = "secret";
/// The default AppRole auth mount.
pub const DEFAULT_APPROLE_MOUNT: &str = "approle";
/// Time allowed to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for one whole lookup, write or health check: every request it makes (token
/// lookup or login, renewal, mount lookup, read, write), connections included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read secret is fresh.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

/// The version of a KV secrets engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvVersion {
    /// KV v1: `GET /v1/{mount}/{path}`, plain writes.
    V1,
    /// KV v2 (versioned): `GET /v1/{mount}/data/{path}`, writes with check-and-set.
    V2,
}

impl fmt::Display for KvVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V1 => "KV v1",
            Self::V2 => "KV v2",
        })
    }
}

impl KvVersion {
    /// `1` or `2`, as the setting is written.
    pub(crate) fn number(self) -> &'static str {
        match self {
            Self::V1 => "1",
            Self::V2 => "2",
        }
    }
}

impl FromStr for KvVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1" | "v1" => Ok(Self::V1),
            "2" | "v2" => Ok(Self::V2),
            _ => Err("expected 1 or 2".to_owned()),
        }
    }
}

/// How the provider authenticates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum VaultAuth {
    /// A token (`VAULT_TOKEN`): used as given; renewed at about two thirds of its TTL while it
    /// is renewable.
    Token(Secret),
    /// AppRole login: a token is obtained at first use, renewed, and obtained again when it
    /// cannot be renewed further, renewal fails, or the server refuses it (not again for a
    /// while once a token fresh from a login was refused). A replaced token is revoked.
    AppRole(AppRole),
}

/// AppRole credentials.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AppRole {
    /// The role ID.
    pub role_id: Secret,
    /// The secret ID; `None` for a role created with `bind_secret_id=false`.
    pub secret_id: Option<SecretIdSource>,
    /// Where the AppRole auth method is mounted (`approle`).
    pub mount: String,
}

impl AppRole {
    /// A role ID with a secret ID, on the default mount.
    pub fn new(role_id: impl Into<Secret>, secret_id: impl Into<Secret>) -> Self {
        Self {
            role_id: role_id.into(),
            secret_id: Some(SecretIdSource::Value(secret_id.into())),
            mount: DEFAULT_APPROLE_MOUNT.to_owned(),
        }
    }

    /// A role ID with the secret ID in a file (read at each login, surrounding whitespace
    /// trimmed), on the default mount.
    pub fn with_secret_id_file(role_id: impl Into<Secret>, path: impl Into<PathBuf>) -> Self {
        Self {
            role_id: role_id.into(),
            secret_id: Some(SecretIdSource::File(path.into())),
            mount: DEFAULT_APPROLE_MOUNT.to_owned(),
        }
    }

    /// Uses another auth mount.
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }
}

/// Where the AppRole secret ID comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SecretIdSource {
    /// The value itself.
    Value(Secret),
    /// A file holding it (read at each login, so a rotated file is picked up).
    File(PathBuf),
}

/// Settings of the Vault provider. Build them with [`VaultSettings::new`] and the
/// builder-style methods, or from the environment with [`VaultSettings::from_lookup`].
///
/// `Debug` shows no token, role ID or secret ID, and no credentials embedded in the address.
#[derive(Clone)]
#[non_exhaustive]
pub struct VaultSettings {
    /// The server's address (`http(s)://host:port`, optionally with a path prefix).
    pub address: String,
    /// How to authenticate; `None`: the provider is configured but not available.
    pub auth: Option<VaultAuth>,
    /// The namespace, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// The KV mount (`secret`).
    pub mount: String,
    /// The secret's path under the mount (`simpletuner`); it holds one object of
    /// key -> value.
    pub path: String,
    /// The mount's KV version; `None`: detected at first use and remembered. A configured
    /// version is checked against the mount at first use when the server says it.
    pub kv_version: Option<KvVersion>,
    /// Read this version of a KV v2 secret instead of the latest (writes are then refused).
    pub secret_version: Option<u64>,
    /// PEM file of CA certificates that verify the server; they replace the system roots,
    /// as `VAULT_CACERT` does for the Vault CLI.
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate. Dangerous: anyone on the path can read the token.
    pub skip_verify: bool,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for one whole lookup, write or health check, all its requests together.
    pub timeout: Duration,
    /// How the read secret is cached: TTL (300 s), stale copy on transient failures, backoff.
    pub refresh: SnapshotPolicy,
    /// The variable `kv_version` came from, for messages.
    pub(crate) kv_version_var: Option<String>,
}

impl fmt::Debug for VaultSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSettings")
            .field("address", &without_userinfo(&self.address))
            .field("auth", &self.auth)
            .field("namespace", &self.namespace)
            .field("mount", &self.mount)
            .field("path", &self.path)
            .field("kv_version", &self.kv_version)
            .field("secret_version", &self.secret_version)
            .field("ca_cert", &self.ca_cert)
            .field("skip_verify", &self.skip_verify)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("refresh", &self.refresh)
            .finish()
    }
}

/// The address with any `user:password@` part replaced, for Debug output.
fn without_userinfo(address: &str) -> String {
    match reqwest::Url::parse(address) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            format!("{url} (credentials removed)")
        }
        Ok(_) => address.to_owned(),
        Err(_) => "(not a valid URL)".to_owned(),
    }
}

impl VaultSettings {
    /// Settings for a server, with defaults: no authentication (set one with
    /// [`token`](Self::token) or [`approle`](Self::approle)), mount `secret`, path
    /// `simpletuner`, KV version detected, connect timeout 2 s, total timeout 5 s, cache
    /// TTL 300 s.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            auth: None,
            namespace: None,
            mount: DEFAULT_MOUNT.to_owned(),
            path: private_fs::DEFAULT_APP_NAME.to_owned(),
            kv_version: None,
            secret_version: None,
            ca_cert: None,
            skip_verify: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            refresh: SnapshotPolicy {
                ttl: DEFAULT_CACHE_TTL,
                ..SnapshotPolicy::default()
            },
            kv_version_var: None,
        }
    }

    /// Authenticates with a token.
    pub fn token(mut self, token: impl Into<Secret>) -> Self {
        self.auth = Some(VaultAuth::Token(token.into()));
        self
    }

    /// Authenticates with AppRole.
    pub fn approle(mut self, approle: AppRole) -> Self {
        self.auth = Some(VaultAuth::AppRole(approle));
        self
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the KV mount.
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }

    /// Sets the secret's path under the mount.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Declares the mount's KV version. It is checked against the mount at first use when
    /// the server says the mount's version; a mismatch is an [`ErrorKind::Misconfigured`]
    /// error.
    pub fn kv_version(mut self, version: KvVersion) -> Self {
        self.kv_version = Some(version);
        self.kv_version_var = None;
        self
    }

    /// Where the configured KV version comes from, for messages: its variable, or the
    /// builder method.
    pub(crate) fn kv_version_setting(&self) -> String {
        match &self.kv_version_var {
            Some(name) => format!("`{name}`"),
            None => "`VaultSettings::kv_version`".to_owned(),
        }
    }

    /// Pins a KV v2 secret version.
    pub fn secret_version(mut self, version: u64) -> Self {
        self.secret_version = Some(version);
        self
    }

    /// Verifies the server with the CA certificates of this PEM file (instead of the
    /// system's roots).
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// Accepts any server certificate. Dangerous: logged as a warning when the provider is
    /// built.
    pub fn danger_skip_verify(mut self, skip: bool) -> Self {
        self.skip_verify = skip;
        self
    }

    /// Sets the connect timeout and the total one (all the requests of one lookup, write or
    /// health check together).
    pub fn timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.connect_timeout = connect;
        self.timeout = total;
        self
    }

    /// Sets how long a read secret is fresh.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.refresh.ttl = ttl;
        self
    }

    /// The settings an application gets from the environment (or any lookup): `None` when
    /// `VAULT_ADDR` is unset or empty (the provider is not configured).
    ///
    /// | variable | setting |
    /// |---|---|
    /// | `VAULT_ADDR` | address |
    /// | `VAULT_TOKEN` | token auth |
    /// | `VAULT_ROLE_ID`, `VAULT_SECRET_ID` or `VAULT_SECRET_ID_FILE` | AppRole auth (wins over a token) |
    /// | `VAULT_NAMESPACE` | namespace |
    /// | `VAULT_CACERT`, `VAULT_SKIP_VERIFY` | TLS |
    /// | `VAULT_CLIENT_TIMEOUT` | total timeout of a lookup, write or health check |
    /// | `<APP>_VAULT_PATH` | path (default: the application name) |
    /// | `<APP>_VAULT_MOUNT` | mount (`secret`) |
    /// | `<APP>_VAULT_APPROLE_MOUNT` | AppRole mount (`approle`) |
    /// | `<APP>_VAULT_KV_VERSION` | `1` or `2` (checked against the mount) |
    /// | `<APP>_VAULT_SECRET_VERSION` | pinned KV v2 version |
    /// | `<APP>_VAULT_CACHE_TTL` | cache TTL (`300`, `5m`) |
    ///
    /// Empty variables count as unset. A variable that is not UTF-8 or cannot be parsed is
    /// a [`ErrorKind::Misconfigured`] error naming it (never quoting a credential).
    pub fn from_lookup(
        app: &AppName,
        lookup: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Option<Self>, ProviderError> {
        let read = |name: &str| {
            private_fs::read_var(lookup, name).map_err(|e| misconfigured_var(name, e.to_string()))
        };
        let Some(address) = read(ADDR_VAR)? else {
            return Ok(None);
        };
        validate_address(&address).map_err(|why| misconfigured_var(ADDR_VAR, why))?;
        let mut settings = Self::new(address).path(app.as_str());

        let role_id = read(ROLE_ID_VAR)?;
        let secret_id = read(SECRET_ID_VAR)?;
        let secret_id_file = read(SECRET_ID_FILE_VAR)?;
        let token = read(TOKEN_VAR)?;
        if role_id.is_none() && (secret_id.is_some() || secret_id_file.is_some()) {
            let name = if secret_id.is_some() {
                SECRET_ID_VAR
            } else {
                SECRET_ID_FILE_VAR
            };
            return Err(misconfigured_var(
                name,
                format!("an AppRole secret ID is set but {ROLE_ID_VAR} is not"),
            ));
        }
        settings.auth = match role_id {
            Some(role_id) => {
                let secret_id = match (secret_id, secret_id_file) {
                    (Some(_), Some(_)) => {
                        return Err(misconfigured_var(
                            SECRET_ID_FILE_VAR,
                            format!("set either {SECRET_ID_VAR} or {SECRET_ID_FILE_VAR}, not both"),
                        ));
                    }
                    (Some(value), None) => Some(SecretIdSource::Value(Secret::new(value))),
                    (None, Some(path)) => Some(SecretIdSource::File(PathBuf::from(path))),
                    (None, None) => None,
                };
                if token.is_some() {
                    tracing::debug!(
                        "both {ROLE_ID_VAR} and {TOKEN_VAR} are set; AppRole login is used"
                    );
                }
                let mount_var = app.var(APPROLE_MOUNT_VAR_SUFFIX);
                Some(VaultAuth::AppRole(AppRole {
                    role_id: Secret::new(role_id),
                    secret_id,
                    mount: read(&mount_var)?.unwrap_or_else(|| DEFAULT_APPROLE_MOUNT.to_owned()),
                }))
            }
            None => token.map(|t| VaultAuth::Token(Secret::new(t))),
        };

        settings.namespace = read(NAMESPACE_VAR)?;
        settings.ca_cert = read(CACERT_VAR)?.map(PathBuf::from);
        if let Some(flag) = read(SKIP_VERIFY_VAR)? {
            settings.skip_verify = parse_bool(&flag).ok_or_else(|| {
                misconfigured_var(SKIP_VERIFY_VAR, "expected true or false (or 1 or 0)")
            })?;
        }
        if let Some(timeout) = read(CLIENT_TIMEOUT_VAR)? {
            settings.timeout = parse_duration(&timeout)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    misconfigured_var(
                        CLIENT_TIMEOUT_VAR,
                        "expected a positive duration such as 5, 5s, 500ms or 1m",
                    )
                })?;
        }
        if let Some(path) = read(&app.var(PATH_VAR_SUFFIX))? {
            settings.path = path;
        }
        if let Some(mount) = read(&app.var(MOUNT_VAR_SUFFIX))? {
            settings.mount = mount;
        }
        let kv_var = app.var(KV_VERSION_VAR_SUFFIX);
        if let Some(version) = read(&kv_var)? {
            settings.kv_version = Some(
                version
                    .parse()
                    .map_err(|why: String| misconfigured_var(&kv_var, why))?,
            );
            settings.kv_version_var = Some(kv_var);
        }
        let version_var = app.var(SECRET_VERSION_VAR_SUFFIX);
        if let Some(version) = read(&version_var)? {
            settings.secret_version = Some(
                version
                    .trim()
                    .parse()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| {
                        misconfigured_var(&version_var, "expected a version number (1, 2, ...)")
                    })?,
            );
        }
        let ttl_var = app.var(CACHE_TTL_VAR_SUFFIX);
        if let Some(ttl) = read(&ttl_var)? {
            settings.refresh.ttl = parse_duration(&ttl).ok_or_else(|| {
                misconfigured_var(&ttl_var, "expected a duration such as 300, 300s or 5m")
            })?;
        }
        settings.validate()?;
        Ok(Some(settings))
    }

    /// Checks what can be checked without the server: the address, mount and path.
    pub fn validate(&self) -> Result<(), ProviderError> {
        validate_address(&self.address).map_err(|why| misconfigured(format!("address: {why}")))?;
        path_segments("mount", &self.mount)?;
        path_segments("path", &self.path)?;
        if let Some(VaultAuth::AppRole(approle)) = &self.auth {
            path_segments("AppRole mount", &approle.mount)?;
        }
        if let Some(namespace) = &self.namespace
            && namespace.chars().any(char::is_control)
        {
            return Err(misconfigured("the namespace contains control characters"));
        }
        if self.secret_version == Some(0) {
            return Err(misconfigured("secret versions start at 1"));
        }
        if self.secret_version.is_some() && self.kv_version == Some(KvVersion::V1) {
            return Err(misconfigured(
                "a secret version can be pinned only on a KV v2 mount",
            ));
        }
        Ok(())
    }
}

fn misconfigured(message: impl Into<std::borrow::Cow<'static, str>>) -> ProviderError {
    ProviderError::new(PROVIDER_NAME, ErrorKind::Misconfigured, message)
}

fn misconfigured_var(name: &str, why: impl Into<std::borrow::Cow<'static, str>>) -> ProviderError {
    misconfigured(why).with_location(Location::Variable(name.to_owned()))
}

/// Why an address is unusable; the message never quotes it (it may hold credentials).
pub(crate) fn validate_address(address: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(address.trim())
        .map_err(|e| format!("not a valid URL ({e}); expected http(s)://host:port"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the URL must not contain credentials (user:password@); use a token or AppRole"
                .to_owned(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query or fragment".to_owned());
    }
    Ok(url)
}

/// The segments of a mount or path: surrounding slashes are ignored; empty, `.` and `..`
/// segments and control characters are refused.
pub(crate) fn path_segments<'a>(what: &str, value: &'a str) -> Result<Vec<&'a str>, ProviderError> {
    let trimmed = value.trim_matches('/');
    if trimmed.is_empty() {
        return Err(misconfigured(format!("the {what} is empty")));
    }
    let segments: Vec<&str> = trimmed.split('/').collect();
    for segment in &segments {
        if segment.is_empty() || *segment == "." || *segment == ".." {
            return Err(misconfigured(format!(
                "the {what} `{}` has an empty, `.` or `..` segment",
                value.escape_default()
            )));
        }
        if segment.chars().any(char::is_control) {
            return Err(misconfigured(format!(
                "the {what} contains control characters"
            )));
        }
    }
    Ok(segments)
}

/// Go's `strconv.ParseBool`, as the Vault CLI reads `VAULT_SKIP_VERIFY`.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `300` (seconds), `300s`, `1500ms`, `5m`, `1h`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit {
        "" | "s" => Some(Duration::from_secs(number)),
        "ms" => Some(Duration::from_millis(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs),
        "h" => number.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}
