//! The token's life: obtained (AppRole login) or looked up (a given token), renewed at about
//! two thirds of its TTL, obtained again when it cannot be renewed further, renewal fails or
//! the server refuses it. All of it happens lazily, before a request, under one lock (so
//! concurrent requests cause one login or renewal), on the provider's [`Clock`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Method;
use secrets_core::{Clock, ErrorKind, Location, ProviderError, Secret};
use serde_json::Value;

use crate::http::{Call, Http, Reply, scrub, status_error};
use crate::settings::{PROVIDER_NAME, SECRET_ID_FILE_VAR, SecretIdSource, VaultAuth};

/// A token and what is known of its lifetime.
#[derive(Clone)]
pub(crate) struct Lease {
    pub(crate) token: Secret,
    /// Time to live when obtained or last renewed; zero: the token does not expire (a root
    /// token) or its TTL is unknown.
    pub(crate) ttl: Duration,
    /// Whether the server says it can be renewed.
    pub(crate) renewable: bool,
    /// Clock time when obtained or last renewed.
    pub(crate) since: Duration,
    /// The TTL the token was issued with; a renewal granting less has reached the maximum.
    pub(crate) full_ttl: Duration,
    /// Renewing again is pointless: the maximum TTL is reached, or renewal was refused.
    pub(crate) exhausted: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("ttl", &self.ttl)
            .field("renewable", &self.renewable)
            .field("since", &self.since)
            .field("full_ttl", &self.full_ttl)
            .field("exhausted", &self.exhausted)
            .finish_non_exhaustive()
    }
}

/// What to do before the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The token is good to use.
    Use,
    /// Renew it first (it is past two thirds of its TTL).
    Renew,
    /// Log in (no token yet, or it cannot be renewed and is past two thirds of its TTL).
    Login,
    /// Look the given token up to learn its TTL.
    Lookup,
}

/// The renewal rule, on its own so that it can be tested with any clock reading.
pub(crate) fn next_step(lease: Option<&Lease>, now: Duration, can_login: bool) -> Step {
    let Some(lease) = lease else {
        return if can_login { Step::Login } else { Step::Lookup };
    };
    if lease.ttl.is_zero() {
        return Step::Use;
    }
    let age = now.saturating_sub(lease.since);
    if age < renew_point(lease.ttl) {
        return Step::Use;
    }
    if lease.renewable && !lease.exhausted {
        Step::Renew
    } else if can_login {
        Step::Login
    } else {
        // Nothing better to do: the server will say when it stops accepting it.
        Step::Use
    }
}

/// Two thirds of a TTL.
pub(crate) fn renew_point(ttl: Duration) -> Duration {
    // Divided first: a hostile lease of u64::MAX seconds must not overflow.
    ttl / 3 * 2
}

/// The provider's authentication: the method and the current lease.
pub(crate) struct Auth {
    method: Option<VaultAuth>,
    lease: tokio::sync::Mutex<Option<Lease>>,
    clock: Arc<dyn Clock>,
    /// The given token's own lookup was refused: it is invalid or expired, or lacks the
    /// `default` policy. Which one shows when the server refuses it for something else too.
    lookup_refused: AtomicBool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match &self.method {
            None => "none",
            Some(VaultAuth::Token(_)) => "token",
            Some(VaultAuth::AppRole(_)) => "approle",
        };
        f.debug_struct("Auth")
            .field("method", &method)
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub(crate) fn new(method: Option<VaultAuth>, clock: Arc<dyn Clock>) -> Self {
        Self {
            method,
            lease: tokio::sync::Mutex::new(None),
            clock,
            lookup_refused: AtomicBool::new(false),
        }
    }

    /// Whether the server refused the given token's lookup of itself (`lookup-self`): the
    /// token is invalid or expired, or lacks permission to look itself up.
    pub(crate) fn lookup_refused(&self) -> bool {
        self.lookup_refused.load(Ordering::Relaxed)
    }

    pub(crate) fn is_configured(&self) -> bool {
        self.method.is_some()
    }

    /// Whether a refused token can be replaced by logging in again.
    pub(crate) fn can_login(&self) -> bool {
        matches!(self.method, Some(VaultAuth::AppRole(_)))
    }

    /// The current lease, for tests and diagnostics.
    #[cfg(test)]
    pub(crate) async fn lease(&self) -> Option<Lease> {
        self.lease.lock().await.clone()
    }

    /// A token to send now: renewed or obtained first when due.
    pub(crate) async fn token(&self, http: &Http) -> Result<Secret, ProviderError> {
        let Some(method) = &self.method else {
            return Err(not_configured());
        };
        let mut slot = self.lease.lock().await;
        let now = self.clock.now();
        match next_step(slot.as_ref(), now, self.can_login()) {
            Step::Use => {}
            Step::Lookup => {
                let VaultAuth::Token(token) = method else {
                    unreachable!("a lookup is planned only for a given token")
                };
                *slot = Some(self.lookup(http, token).await?);
            }
            Step::Login => *slot = Some(self.login(http).await?),
            Step::Renew => {
                let current = slot
                    .clone()
                    .unwrap_or_else(|| unreachable!("renewal needs a lease"));
                match self.renew(http, &current).await {
                    Ok(renewed) => *slot = Some(renewed),
                    Err(error) => {
                        let still_valid = now.saturating_sub(current.since) < current.ttl;
                        if self.can_login() {
                            tracing::warn!(
                                provider = PROVIDER_NAME,
                                %error,
                                "token renewal failed; logging in again"
                            );
                            match self.login(http).await {
                                Ok(lease) => *slot = Some(lease),
                                // The server is struggling; the token is good for a while yet.
                                Err(login_error) if login_error.is_transient() && still_valid => {
                                    tracing::warn!(
                                        provider = PROVIDER_NAME,
                                        error = %login_error,
                                        "login failed too; the current token is still valid and is used"
                                    );
                                }
                                Err(login_error) => return Err(login_error),
                            }
                        } else if error.is_transient() {
                            tracing::warn!(
                                provider = PROVIDER_NAME,
                                %error,
                                "token renewal failed; it is tried again before the next request"
                            );
                        } else {
                            tracing::warn!(
                                provider = PROVIDER_NAME,
                                %error,
                                "token renewal refused; the token is used until it expires"
                            );
                            if let Some(lease) = slot.as_mut() {
                                lease.exhausted = true;
                            }
                        }
                    }
                }
            }
        }
        Ok(slot
            .as_ref()
            .map(|l| l.token.clone())
            .unwrap_or_else(|| unreachable!("a lease exists after every step")))
    }

    /// After the server refused `denied`: a fresh token from a new login (once), or `None`
    /// when there is no way to get one (a given token).
    pub(crate) async fn relogin(
        &self,
        http: &Http,
        denied: &Secret,
    ) -> Result<Option<Secret>, ProviderError> {
        if !self.can_login() {
            return Ok(None);
        }
        let mut slot = self.lease.lock().await;
        if let Some(current) = slot.as_ref()
            && current.token != *denied
        {
            // Another request logged in meanwhile.
            return Ok(Some(current.token.clone()));
        }
        tracing::info!(
            provider = PROVIDER_NAME,
            "the server refused the token; logging in again"
        );
        let lease = self.login(http).await?;
        let token = lease.token.clone();
        *slot = Some(lease);
        Ok(Some(token))
    }

    async fn login(&self, http: &Http) -> Result<Lease, ProviderError> {
        let Some(VaultAuth::AppRole(approle)) = &self.method else {
            unreachable!("login is planned only for AppRole")
        };
        let mut body = serde_json::Map::new();
        body.insert(
            "role_id".to_owned(),
            Value::String(approle.role_id.expose().to_owned()),
        );
        if let Some(source) = &approle.secret_id {
            let secret_id = match source {
                SecretIdSource::Value(value) => value.clone(),
                SecretIdSource::File(path) => read_secret_id_file(path).await?,
            };
            body.insert(
                "secret_id".to_owned(),
                Value::String(secret_id.expose().to_owned()),
            );
        }
        let mut body = Value::Object(body);
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        scrub(&mut body);
        let mount: Vec<&str> = approle.mount.trim_matches('/').split('/').collect();
        let mut segments = vec!["auth"];
        segments.extend(mount);
        segments.push("login");
        let url = http.url(&segments);
        let reply = http
            .send(Call::Login, Method::POST, &url, None, Some(bytes))
            .await?;
        if matches!(reply.status, 400 | 401 | 403) {
            return Err(ProviderError::new(
                PROVIDER_NAME,
                ErrorKind::PermissionDenied,
                format!(
                    "AppRole login refused (HTTP {}): wrong role ID or secret ID, or the secret \
                     ID expired or was used up",
                    reply.status
                ),
            )
            .with_location(Location::Url(url.to_string())));
        }
        if !reply.is_success() {
            return Err(status_error(&reply, &url, "AppRole login"));
        }
        let lease = self.lease_from_auth(&reply, &url, None)?;
        tracing::info!(
            provider = PROVIDER_NAME,
            ttl_secs = lease.ttl.as_secs(),
            renewable = lease.renewable,
            "logged in with AppRole"
        );
        Ok(lease)
    }

    async fn renew(&self, http: &Http, current: &Lease) -> Result<Lease, ProviderError> {
        let url = http.url(&["auth", "token", "renew-self"]);
        let reply = http
            .send(
                Call::Renew,
                Method::POST,
                &url,
                Some(&current.token),
                Some(b"{}".to_vec()),
            )
            .await?;
        if !reply.is_success() {
            return Err(status_error(&reply, &url, "renewing the token"));
        }
        let mut lease = self.lease_from_auth(&reply, &url, Some(current))?;
        if lease.token != current.token {
            // Renewal keeps the token; a different one would be a confused server. Keep ours.
            lease.token = current.token.clone();
        }
        // One second of slack: the server counts in whole seconds.
        if lease.ttl.saturating_add(Duration::from_secs(1)) < lease.full_ttl || !lease.renewable {
            lease.exhausted = true;
        }
        tracing::debug!(
            provider = PROVIDER_NAME,
            ttl_secs = lease.ttl.as_secs(),
            capped = lease.exhausted,
            "token renewed"
        );
        Ok(lease)
    }

    /// Learns a given token's TTL. A token that may not look itself up (no `default`
    /// policy) is used as is, without renewal.
    async fn lookup(&self, http: &Http, token: &Secret) -> Result<Lease, ProviderError> {
        let url = http.url(&["auth", "token", "lookup-self"]);
        let now = self.clock.now();
        let reply = http
            .send(Call::TokenLookup, Method::GET, &url, Some(token), None)
            .await?;
        let unknown = Lease {
            token: token.clone(),
            ttl: Duration::ZERO,
            renewable: false,
            since: now,
            full_ttl: Duration::ZERO,
            exhausted: true,
        };
        if matches!(reply.status, 401 | 403) {
            // An invalid or expired token is refused here, and so is a valid one without the
            // `default` policy; the latter still works, so the token is tried.
            self.lookup_refused.store(true, Ordering::Relaxed);
            tracing::debug!(
                provider = PROVIDER_NAME,
                "the server refused the token's lookup of itself: it is invalid or expired, or \
                 lacks permission to look itself up; it is used as is, without renewal"
            );
            return Ok(unknown);
        }
        if !reply.is_success() {
            return Err(status_error(&reply, &url, "looking the token up"));
        }
        let mut body = reply.json(&url)?;
        let data = body.get("data");
        let seconds = |name: &str| {
            data.and_then(|d| d.get(name))
                .and_then(Value::as_u64)
                .map(Duration::from_secs)
        };
        let ttl = seconds("ttl").unwrap_or_default();
        let period = seconds("period").filter(|p| !p.is_zero());
        let full_ttl = period.or(seconds("creation_ttl")).unwrap_or(ttl).max(ttl);
        let renewable = data
            .and_then(|d| d.get("renewable"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        scrub(&mut body);
        tracing::debug!(
            provider = PROVIDER_NAME,
            ttl_secs = ttl.as_secs(),
            renewable,
            "token looked up"
        );
        Ok(Lease {
            ttl,
            renewable,
            full_ttl,
            exhausted: false,
            ..unknown
        })
    }

    /// The lease in the `auth` object of a login or renewal answer.
    fn lease_from_auth(
        &self,
        reply: &Reply,
        url: &reqwest::Url,
        renewing: Option<&Lease>,
    ) -> Result<Lease, ProviderError> {
        let now = self.clock.now();
        let mut body = reply.json(url)?;
        let malformed = |what: &str| {
            ProviderError::new(
                PROVIDER_NAME,
                ErrorKind::Malformed,
                format!("the answer has no {what}"),
            )
            .with_location(Location::Url(url.to_string()))
        };
        let result = (|| {
            let auth = body
                .get_mut("auth")
                .ok_or_else(|| malformed("`auth` object"))?;
            let ttl = Duration::from_secs(
                auth.get("lease_duration")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| malformed("`auth.lease_duration` number"))?,
            );
            let renewable = auth
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let token = match auth.get_mut("client_token") {
                Some(Value::String(token)) if !token.is_empty() => {
                    Secret::new(std::mem::take(token))
                }
                _ => return Err(malformed("`auth.client_token` string")),
            };
            Ok(Lease {
                token,
                ttl,
                renewable,
                since: now,
                full_ttl: renewing.map_or(ttl, |l| l.full_ttl),
                exhausted: false,
            })
        })();
        scrub(&mut body);
        result
    }
}

fn not_configured() -> ProviderError {
    ProviderError::new(
        PROVIDER_NAME,
        ErrorKind::Misconfigured,
        "no authentication configured: set VAULT_TOKEN, or VAULT_ROLE_ID with VAULT_SECRET_ID \
         or VAULT_SECRET_ID_FILE",
    )
}

/// Largest secret-ID file read (a secret ID is a UUID; anything near this is not one).
const MAX_SECRET_ID_FILE: u64 = 64 << 10;

/// Reads the secret-ID file off the runtime's threads: a regular file of bounded size only,
/// so a FIFO, a device (`/dev/zero`) or a directory is an error at once, never a hang or an
/// endless read.
async fn read_secret_id_file(path: &std::path::Path) -> Result<Secret, ProviderError> {
    let location = Location::file(path);
    let doing = format!("reading the AppRole secret ID file ({SECRET_ID_FILE_VAR})");
    let owned = path.to_owned();
    let read =
        private_fs::unblock(move || private_fs::read_regular_file(&owned, MAX_SECRET_ID_FILE))
            .await
            .and_then(|read| read)
            .map_err(|e| ProviderError::io(PROVIDER_NAME, doing.clone(), location.clone(), e))?;
    let misconfigured = |why: &'static str| {
        ProviderError::new(
            PROVIDER_NAME,
            ErrorKind::Misconfigured,
            format!("{doing}: {why}"),
        )
        .with_location(location.clone())
    };
    let bytes = read.ok_or_else(|| misconfigured("the file does not exist"))?;
    // No source attached: a UTF-8 error names byte positions of the secret.
    let text =
        std::str::from_utf8(&bytes).map_err(|_| misconfigured("the file is not UTF-8 text"))?;
    let secret = Secret::new(text.trim());
    if secret.is_empty() {
        return Err(misconfigured("the file is empty"));
    }
    Ok(secret)
}
