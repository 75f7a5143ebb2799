//! The HTTP side: one `reqwest` client (rustls with the ring provider), requests with the
//! token and namespace headers, bounded response bodies, and the mapping of HTTP statuses and
//! transport failures to [`ErrorKind`]s.
//!
//! No error or log line made here contains a response body or a header value: bodies may
//! hold secret values and tokens. Messages are this module's own words; a body is looked at
//! only to tell known situations apart (a sealed server, a check-and-set conflict).

use std::error::Error as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Url};
use secrets_core::{ErrorKind, Location, ProviderError, Secret};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::settings::{CACERT_VAR, PROVIDER_NAME, VaultSettings, validate_address};

/// Largest response body accepted. A KV secret of key -> value pairs is far smaller; a
/// larger answer is a hostile or broken server.
pub(crate) const MAX_BODY: usize = 8 << 20;

/// Largest CA certificate file read (a system-wide bundle is a few hundred KiB).
const MAX_CA_FILE: u64 = 4 << 20;

/// What a request is for, for counting and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    SecretRead,
    SecretWrite,
    MountLookup,
    Login,
    Renew,
    Revoke,
    TokenLookup,
    Health,
}

/// Requests made, by kind.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    secret_reads: AtomicU64,
    secret_writes: AtomicU64,
    mount_lookups: AtomicU64,
    logins: AtomicU64,
    renewals: AtomicU64,
    revocations: AtomicU64,
    token_lookups: AtomicU64,
    health_checks: AtomicU64,
}

/// How many HTTP requests a provider made, by kind (attempts, whether they succeeded or not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VaultStats {
    /// Reads of the secret (`GET {mount}/data/{path}` or `{mount}/{path}`), writes' reads
    /// included.
    pub secret_reads: u64,
    /// Writes of the secret.
    pub secret_writes: u64,
    /// KV version detections (`sys/internal/ui/mounts/{mount}`).
    pub mount_lookups: u64,
    /// AppRole logins.
    pub logins: u64,
    /// Token renewals (`auth/token/renew-self`).
    pub renewals: u64,
    /// Revocations of tokens replaced by a new login (`auth/token/revoke-self`).
    pub revocations: u64,
    /// Token lookups (`auth/token/lookup-self`).
    pub token_lookups: u64,
    /// `sys/health` checks.
    pub health_checks: u64,
}

impl VaultStats {
    /// Every request, of any kind.
    pub fn requests(&self) -> u64 {
        self.secret_reads
            + self.secret_writes
            + self.mount_lookups
            + self.logins
            + self.renewals
            + self.revocations
            + self.token_lookups
            + self.health_checks
    }
}

impl Counters {
    fn count(&self, call: Call) {
        let counter = match call {
            Call::SecretRead => &self.secret_reads,
            Call::SecretWrite => &self.secret_writes,
            Call::MountLookup => &self.mount_lookups,
            Call::Login => &self.logins,
            Call::Renew => &self.renewals,
            Call::Revoke => &self.revocations,
            Call::TokenLookup => &self.token_lookups,
            Call::Health => &self.health_checks,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> VaultStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        VaultStats {
            secret_reads: get(&self.secret_reads),
            secret_writes: get(&self.secret_writes),
            mount_lookups: get(&self.mount_lookups),
            logins: get(&self.logins),
            renewals: get(&self.renewals),
            revocations: get(&self.revocations),
            token_lookups: get(&self.token_lookups),
            health_checks: get(&self.health_checks),
        }
    }
}

/// A response: its status and its body (zeroized when dropped: it may hold secrets).
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Zeroizing<Vec<u8>>,
}

impl Reply {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON; an error naming the position (never the content) when it is not.
    pub(crate) fn json(&self, url: &Url) -> Result<Value, ProviderError> {
        parse_json(&self.body).map_err(|why| {
            ProviderError::new(PROVIDER_NAME, ErrorKind::Malformed, why)
                .with_location(Location::Url(url.to_string()))
        })
    }

    /// The `errors` strings of a Vault error body (empty when there are none or the body is
    /// not JSON). For telling known situations apart; never shown.
    pub(crate) fn error_messages(&self) -> Vec<String> {
        let Ok(mut body) = parse_json(&self.body) else {
            return Vec::new();
        };
        let messages = match body.get("errors") {
            Some(Value::Array(errors)) => errors
                .iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        scrub(&mut body);
        messages
    }

    /// Whether the body has `"errors": []`, Vault's answer for a path with nothing stored
    /// (as opposed to a missing mount or namespace, which come with a message).
    pub(crate) fn has_empty_errors(&self) -> bool {
        let Ok(mut body) = parse_json(&self.body) else {
            return false;
        };
        let empty = matches!(body.get("errors"), Some(Value::Array(e)) if e.is_empty());
        scrub(&mut body);
        empty
    }
}

/// Parses JSON; the error says where and what kind of problem, never quoting the input.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "the response ends early",
            serde_json::error::Category::Syntax => "the response is not valid JSON",
            serde_json::error::Category::Data => "the response has unexpected content",
            serde_json::error::Category::Io => "the response could not be read",
        };
        format!("{what} (line {}, column {})", e.line(), e.column())
    })
}

/// Overwrites every string of a JSON document before it is dropped (responses hold secret
/// values and tokens).
pub(crate) fn scrub(value: &mut Value) {
    use zeroize::Zeroize;
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => {
            // Keys cannot be borrowed mutably; values can.
            map.values_mut().for_each(scrub);
        }
        _ => {}
    }
}

/// The HTTP client of one provider.
pub(crate) struct Http {
    client: reqwest::Client,
    base: Url,
    namespace: Option<HeaderValue>,
    connect_timeout: Duration,
    timeout: Duration,
    counters: Counters,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("base", &self.base.as_str())
            .field("namespace", &self.namespace.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Makes rustls use ring. Another provider installed first by the application is kept.
fn install_crypto_provider() {
    // Err means a provider is installed already: that one is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Http {
    /// The client for these settings: timeouts, TLS roots (`ca_cert` replaces the system's),
    /// no redirects (the token header must not follow one to another host), no idle
    /// connections kept (reads are minutes apart, and a pooled connection must not outlive
    /// the runtime that opened it).
    pub(crate) fn new(settings: &VaultSettings) -> Result<Self, ProviderError> {
        let misconfigured =
            |message: String| ProviderError::new(PROVIDER_NAME, ErrorKind::Misconfigured, message);
        let mut base = validate_address(&settings.address)
            .map_err(|why| misconfigured(format!("address: {why}")))?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .user_agent(concat!("secrets-vault/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_cert {
            let location = Location::file(path);
            let doing = format!("reading the CA certificate file ({CACERT_VAR})");
            // A regular file of bounded size only: a FIFO or a device is an error at once,
            // never a hang or an endless read.
            let pem = private_fs::read_regular_file(path, MAX_CA_FILE)
                .map_err(|e| {
                    misconfigured(doing.clone())
                        .with_location(location.clone())
                        .with_source(e)
                })?
                .ok_or_else(|| {
                    misconfigured(format!("{doing}: the file does not exist"))
                        .with_location(location.clone())
                })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
                misconfigured(format!(
                    "the CA certificate file ({CACERT_VAR}) is not a PEM bundle"
                ))
                .with_location(location.clone())
            })?;
            if certificates.is_empty() {
                return Err(misconfigured(format!(
                    "the CA certificate file ({CACERT_VAR}) holds no certificate"
                ))
                .with_location(location));
            }
            builder = builder.tls_certs_only(certificates);
        }
        if settings.skip_verify {
            tracing::warn!(
                provider = PROVIDER_NAME,
                "TLS certificate verification is OFF (VAULT_SKIP_VERIFY): anyone between this \
                 process and the server can impersonate it and steal the token; use \
                 VAULT_CACERT instead"
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| {
            misconfigured(format!(
                "cannot build the HTTP client: {}",
                causes(&e).join(": ")
            ))
        })?;
        if base.scheme() == "http" && !is_loopback(&base) {
            tracing::warn!(
                provider = PROVIDER_NAME,
                host = base.host_str().unwrap_or_default(),
                "the Vault address uses plain http to a host that is not loopback: the token \
                 crosses the network unencrypted"
            );
        }
        let namespace = match &settings.namespace {
            Some(ns) => Some(HeaderValue::from_str(ns.trim_matches('/')).map_err(|_| {
                misconfigured("the namespace cannot be sent as an HTTP header".to_owned())
            })?),
            None => None,
        };
        Ok(Self {
            client,
            base,
            namespace,
            connect_timeout: settings.connect_timeout,
            timeout: settings.timeout,
            counters: Counters::default(),
        })
    }

    /// `{address}/v1/{segments...}`, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .unwrap_or_else(|()| unreachable!("http(s) URLs have a path"));
            path.pop_if_empty().push("v1").extend(segments);
        }
        url
    }

    pub(crate) fn stats(&self) -> VaultStats {
        self.counters.snapshot()
    }

    /// Sends one request. `Ok` for any HTTP status (callers map statuses; see
    /// [`status_error`]); `Err` for a transport failure or an oversized body.
    pub(crate) async fn send(
        &self,
        call: Call,
        method: Method,
        url: &Url,
        token: Option<&Secret>,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ProviderError> {
        self.counters.count(call);
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .header("X-Vault-Request", "true");
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token.expose()).map_err(|_| {
                ProviderError::new(
                    PROVIDER_NAME,
                    ErrorKind::Misconfigured,
                    "the token contains characters that cannot be sent in an HTTP header",
                )
            })?;
            value.set_sensitive(true);
            request = request.header("X-Vault-Token", value);
        }
        // `sys/health` lives in the root namespace only (a namespace header makes it a 400).
        if let Some(namespace) = &self.namespace
            && call != Call::Health
        {
            request = request.header("X-Vault-Namespace", namespace.clone());
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        tracing::trace!(provider = PROVIDER_NAME, %method, %url, "request");
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&e, url))?;
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BODY as u64)
        {
            return Err(oversized(url));
        }
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e, url))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(oversized(url));
            }
            if body.capacity() - body.len() < chunk.len() {
                // Grow by hand so that no unzeroized copy of the old buffer is left behind.
                let mut bigger = Zeroizing::new(Vec::with_capacity(
                    (body.len() + chunk.len()).max(body.capacity() * 2),
                ));
                bigger.extend_from_slice(&body);
                body = bigger;
            }
            body.extend_from_slice(&chunk);
        }
        tracing::trace!(provider = PROVIDER_NAME, %method, %url, status, "response");
        Ok(Reply { status, body })
    }

    /// A transport failure as a provider error: timeout, TLS, connection, other.
    fn transport_error(&self, error: &reqwest::Error, url: &Url) -> ProviderError {
        let cause = causes(error).join(": ");
        let (kind, message) = if let Some(tls) = tls_cause(error) {
            (
                ErrorKind::Unavailable,
                format!("TLS failure talking to the server: {tls}"),
            )
        } else if error.is_timeout() {
            if error.is_connect() {
                (
                    ErrorKind::Timeout,
                    format!(
                        "could not connect within {:?} (connect timeout)",
                        self.connect_timeout
                    ),
                )
            } else {
                (
                    ErrorKind::Timeout,
                    format!("no complete answer within {:?}", self.timeout),
                )
            }
        } else if error.is_connect() {
            (ErrorKind::Unavailable, format!("cannot connect: {cause}"))
        } else {
            (ErrorKind::Unavailable, format!("request failed: {cause}"))
        };
        ProviderError::new(PROVIDER_NAME, kind, message)
            .with_location(Location::Url(url.to_string()))
    }
}

/// Whether the URL's host is this machine for certain: a literal loopback address
/// (127.0.0.0/8, `::1`) or `localhost`. A name that merely starts with `127.`
/// (`127.attacker.example`) is a domain like any other.
pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // The URL parser has already turned every IPv4 spelling (`127.1`, `0x7f.0.0.1`) into
    // dotted decimal and bracketed IPv6; what does not parse as an address is a name.
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn oversized(url: &Url) -> ProviderError {
    ProviderError::new(
        PROVIDER_NAME,
        ErrorKind::Malformed,
        format!("the response is larger than {} MiB", MAX_BODY >> 20),
    )
    .with_location(Location::Url(url.to_string()))
}

/// The messages of an error's sources (not of the error itself: a reqwest error's own
/// message repeats the URL), without repeats.
fn causes(error: &reqwest::Error) -> Vec<String> {
    let mut messages: Vec<String> = Vec::new();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !messages.iter().any(|m| m == &text) {
            messages.push(text);
        }
        source = e.source();
    }
    if messages.is_empty() {
        messages.push(error.to_string());
    }
    messages
}

/// What went wrong with TLS, if the failure was TLS: the rustls error in the chain, or a
/// cause that says TLS (the handshake ended early: the server does not speak TLS).
fn tls_cause(error: &reqwest::Error) -> Option<String> {
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(tls.to_string());
        }
        source = e.source();
    }
    causes(error).into_iter().rev().find(|c| {
        let c = c.to_ascii_lowercase();
        c.contains("tls") || c.contains("certificate")
    })
}

/// The error for an HTTP status a caller did not expect, in this module's words (the body is
/// only inspected, for a sealed server or plain HTTP sent to an HTTPS listener).
pub(crate) fn status_error(reply: &Reply, url: &Url, during: &str) -> ProviderError {
    let status = reply.status;
    let (kind, message) = match status {
        400 if reply
            .error_messages()
            .iter()
            .any(|m| m.contains("HTTP request to an HTTPS server"))
            || reply
                .body
                .starts_with(b"Client sent an HTTP request to an HTTPS server") =>
        {
            (
                ErrorKind::Misconfigured,
                "the server speaks HTTPS; use an https:// address".to_owned(),
            )
        }
        400 => (
            ErrorKind::Misconfigured,
            "the server rejected the request as invalid (HTTP 400)".to_owned(),
        ),
        401 | 403 => (
            ErrorKind::PermissionDenied,
            format!(
                "permission denied (HTTP {status}): the token is invalid, expired or revoked, or \
                 its policies do not allow this"
            ),
        ),
        404 if reply
            .error_messages()
            .iter()
            .any(|m| m.contains("namespace not found")) =>
        {
            (
                ErrorKind::NotFound,
                "the namespace (VAULT_NAMESPACE) does not exist (HTTP 404)".to_owned(),
            )
        }
        404 => (ErrorKind::NotFound, "not found (HTTP 404)".to_owned()),
        405 => (
            ErrorKind::Misconfigured,
            "the server does not support this operation here (HTTP 405)".to_owned(),
        ),
        412 => (
            ErrorKind::Unavailable,
            "the server has not caught up with a recent write yet (HTTP 412)".to_owned(),
        ),
        429 => (
            ErrorKind::Throttled,
            "rate limited by the server (HTTP 429)".to_owned(),
        ),
        501 => (
            ErrorKind::Unavailable,
            "the server is not initialized (HTTP 501)".to_owned(),
        ),
        503 if reply
            .error_messages()
            .iter()
            .any(|m| m.to_ascii_lowercase().contains("sealed")) =>
        {
            (
                ErrorKind::Unavailable,
                "the server is sealed (HTTP 503)".to_owned(),
            )
        }
        503 => (
            ErrorKind::Unavailable,
            "the server is unavailable (HTTP 503)".to_owned(),
        ),
        504 => (
            ErrorKind::Timeout,
            "a gateway timed out waiting for the server (HTTP 504)".to_owned(),
        ),
        500..=599 => (
            ErrorKind::Unavailable,
            format!("server error (HTTP {status})"),
        ),
        300..=399 => (
            ErrorKind::Unavailable,
            format!(
                "the server redirected the request (HTTP {status}); redirects are not followed \
                 so that the token stays with this address: point VAULT_ADDR at the node or \
                 load balancer that serves requests"
            ),
        ),
        _ => (
            ErrorKind::Malformed,
            format!("unexpected HTTP status {status}"),
        ),
    };
    ProviderError::new(PROVIDER_NAME, kind, format!("{during}: {message}"))
        .with_location(Location::Url(url.to_string()))
}
