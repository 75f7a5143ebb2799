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

/// The shortest pause, after a token fresh from an AppRole login was refused, before a
/// refusal causes another login (at least the snapshot's retry backoff).
pub(crate) const RELOGIN_PAUSE_MIN: Duration = Duration::from_secs(30);
/// The longest: the pause doubles with each fresh token refused in a row, up to this.
pub(crate) const RELOGIN_PAUSE_MAX: Duration = Duration::from_secs(600);

/// The auth side of one operation (a lookup's read, a write, a health check): it logs in at
/// most once, and renews or looks the token up at most once, whatever number of requests it
/// makes.
#[derive(Default)]
pub(crate) struct Op {
    /// The token was renewed, looked up or obtained in this operation (or that was tried).
    token_checked: bool,
    /// A login was tried in this operation.
    logged_in: bool,
    /// The token this operation's login obtained.
    fresh: Option<Secret>,
}

impl Op {
    /// Whether `token` comes from this operation's own login.
    pub(crate) fn is_fresh(&self, token: &Secret) -> bool {
        self.fresh.as_ref() == Some(token)
    }
}

/// The lease, and what refused logins taught.
#[derive(Default)]
struct State {
    lease: Option<Lease>,
    /// After a token fresh from a login was refused: no login because of a refusal before
    /// this clock time (a new login would get the same policies and be refused again, and
    /// each one uses up a secret ID use and leaves a token).
    relogin_after: Option<Duration>,
    /// Fresh tokens refused in a row; the pause doubles with each.
    refused_logins: u32,
}

/// The provider's authentication: the method and the current lease.
pub(crate) struct Auth {
    method: Option<VaultAuth>,
    state: tokio::sync::Mutex<State>,
    clock: Arc<dyn Clock>,
    /// The first pause before another login after a fresh token was refused.
    relogin_pause: Duration,
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
    /// `retry_backoff` is the snapshot's: a refused login is not tried again sooner.
    pub(crate) fn new(
        method: Option<VaultAuth>,
        retry_backoff: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            method,
            state: tokio::sync::Mutex::new(State::default()),
            clock,
            relogin_pause: retry_backoff.max(RELOGIN_PAUSE_MIN),
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
        self.state.lock().await.lease.clone()
    }

    /// A token to send now: renewed, looked up or obtained first when due (once per
    /// operation).
    pub(crate) async fn token(&self, http: &Http, op: &mut Op) -> Result<Secret, ProviderError> {
        let Some(method) = &self.method else {
            return Err(not_configured());
        };
        let mut state = self.state.lock().await;
        let now = self.clock.now();
        let step = match next_step(state.lease.as_ref(), now, self.can_login()) {
            // This operation has done what it could already; the lease is what it is.
            _ if op.token_checked && state.lease.is_some() => Step::Use,
            step => step,
        };
        if step != Step::Use {
            op.token_checked = true;
        }
        match step {
            Step::Use => {}
            Step::Lookup => {
                let VaultAuth::Token(token) = method else {
                    unreachable!("a lookup is planned only for a given token")
                };
                state.lease = Some(self.lookup(http, token).await?);
            }
            Step::Login => {
                let lease = self.login(http, op).await?;
                self.replace(http, &mut state, lease).await;
            }
            Step::Renew => {
                let current = state
                    .lease
                    .clone()
                    .unwrap_or_else(|| unreachable!("renewal needs a lease"));
                match self.renew(http, &current).await {
                    Ok(renewed) => state.lease = Some(renewed),
                    Err(error) => {
                        let still_valid = now.saturating_sub(current.since) < current.ttl;
                        if self.can_login() {
                            tracing::warn!(
                                provider = PROVIDER_NAME,
                                %error,
                                "token renewal failed; logging in again"
                            );
                            match self.login(http, op).await {
                                Ok(lease) => self.replace(http, &mut state, lease).await,
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
                            if let Some(lease) = state.lease.as_mut() {
                                lease.exhausted = true;
                            }
                        }
                    }
                }
            }
        }
        Ok(state
            .lease
            .as_ref()
            .map(|l| l.token.clone())
            .unwrap_or_else(|| unreachable!("a lease exists after every step")))
    }

    /// After the server refused `denied`: a token to try once more, from a new login, or
    /// `None` when there is none to try: a given token; this operation logged in already;
    /// or a token fresh from a login was refused recently (a new login would be refused
    /// too, and would use up a secret ID use and leave one more token).
    pub(crate) async fn relogin(
        &self,
        http: &Http,
        denied: &Secret,
        op: &mut Op,
    ) -> Result<Option<Secret>, ProviderError> {
        if !self.can_login() || op.logged_in {
            return Ok(None);
        }
        let mut state = self.state.lock().await;
        if let Some(current) = state.lease.as_ref()
            && current.token != *denied
        {
            // Another operation logged in meanwhile.
            return Ok(Some(current.token.clone()));
        }
        let now = self.clock.now();
        if let Some(after) = state.relogin_after
            && now < after
        {
            tracing::debug!(
                provider = PROVIDER_NAME,
                wait_secs = (after - now).as_secs(),
                "the server refused the token; a token fresh from a login was refused \
                 recently, so no new login yet"
            );
            return Ok(None);
        }
        tracing::info!(
            provider = PROVIDER_NAME,
            "the server refused the token; logging in again"
        );
        let lease = self.login(http, op).await?;
        let token = lease.token.clone();
        self.replace(http, &mut state, lease).await;
        Ok(Some(token))
    }

    /// The server refused a token this operation's login obtained: its policies do not
    /// allow the request, and logging in again gets the same policies. No refusal causes a
    /// login for a while (longer each time it happens again).
    pub(crate) async fn fresh_token_refused(&self) {
        let mut state = self.state.lock().await;
        let doublings = state.refused_logins.min(16);
        let pause = self
            .relogin_pause
            .saturating_mul(1 << doublings)
            .min(RELOGIN_PAUSE_MAX.max(self.relogin_pause));
        state.refused_logins = state.refused_logins.saturating_add(1);
        state.relogin_after = Some(self.clock.now().saturating_add(pause));
        tracing::warn!(
            provider = PROVIDER_NAME,
            pause_secs = pause.as_secs(),
            "the server refused a token just obtained by AppRole login: the role's policies do \
             not allow the request; no new login because of a refusal during the pause"
        );
    }

    /// A new login after a refusal was accepted (the old token had been revoked or had
    /// expired): refusals may cause logins again without a pause.
    pub(crate) async fn relogin_helped(&self) {
        let mut state = self.state.lock().await;
        state.refused_logins = 0;
        state.relogin_after = None;
    }

    /// Installs a lease from a new login; the token it replaces is revoked (best effort),
    /// so that no token is left alive unused.
    async fn replace(&self, http: &Http, state: &mut State, lease: Lease) {
        let now = self.clock.now();
        let Some(old) = state.lease.replace(lease) else {
            return;
        };
        let expired = !old.ttl.is_zero() && now.saturating_sub(old.since) >= old.ttl;
        if !expired && state.lease.as_ref().is_some_and(|l| l.token != old.token) {
            self.revoke(http, &old.token).await;
        }
    }

    /// `auth/token/revoke-self` with `token`; a failure is only logged (the token expires
    /// on its own).
    async fn revoke(&self, http: &Http, token: &Secret) {
        let url = http.url(&["auth", "token", "revoke-self"]);
        match http
            .send(Call::Revoke, Method::POST, &url, Some(token), None)
            .await
        {
            Ok(reply) if reply.is_success() => {
                tracing::debug!(provider = PROVIDER_NAME, "the replaced token was revoked");
            }
            Ok(reply) => tracing::debug!(
                provider = PROVIDER_NAME,
                status = reply.status,
                "the replaced token could not be revoked; it expires on its own"
            ),
            Err(error) => tracing::debug!(
                provider = PROVIDER_NAME,
                %error,
                "the replaced token could not be revoked; it expires on its own"
            ),
        }
    }

    /// Logs in with AppRole (recorded in `op`: once per operation).
    async fn login(&self, http: &Http, op: &mut Op) -> Result<Lease, ProviderError> {
        let Some(VaultAuth::AppRole(approle)) = &self.method else {
            unreachable!("login is planned only for AppRole")
        };
        op.logged_in = true;
        op.token_checked = true;
        let lease = self.login_request(http, approle).await?;
        op.fresh = Some(lease.token.clone());
        Ok(lease)
    }

    async fn login_request(
        &self,
        http: &Http,
        approle: &crate::settings::AppRole,
    ) -> Result<Lease, ProviderError> {
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
        let lease = lease_from_lookup(&reply, &url, unknown)?;
        tracing::debug!(
            provider = PROVIDER_NAME,
            ttl_secs = lease.ttl.as_secs(),
            renewable = lease.renewable,
            "token looked up"
        );
        Ok(lease)
    }

    /// The lease in the `auth` object of a login or renewal answer.
    fn lease_from_auth(
        &self,
        reply: &Reply,
        url: &reqwest::Url,
        renewing: Option<&Lease>,
    ) -> Result<Lease, ProviderError> {
        lease_from_auth(reply, url, self.clock.now(), renewing)
    }
}

/// The lease in the `auth` object of a login or renewal answer, obtained at `now`.
pub(crate) fn lease_from_auth(
    reply: &Reply,
    url: &reqwest::Url,
    now: Duration,
    renewing: Option<&Lease>,
) -> Result<Lease, ProviderError> {
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
            Some(Value::String(token)) if !token.is_empty() => Secret::new(std::mem::take(token)),
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

/// The lease a token lookup (`lookup-self`, `200`) describes; `unknown` is the lease of the
/// token looked up with nothing known of its lifetime.
pub(crate) fn lease_from_lookup(
    reply: &Reply,
    url: &reqwest::Url,
    unknown: Lease,
) -> Result<Lease, ProviderError> {
    let mut body = reply.json(url)?;
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
    Ok(Lease {
        ttl,
        renewable,
        full_ttl,
        exhausted: false,
        ..unknown
    })
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
