//! A warning, once per provider, when requests go to a plain `http://` endpoint on another
//! machine: secret values then cross the network unencrypted. Checked on the request the
//! SDK is about to send, so every way of setting the endpoint counts (the settings,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`, a profile's `endpoint_url`).
//! Literal loopback addresses and `localhost` (a local test server) are not warned about.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_secretsmanager::error::BoxError;

/// The interceptor: warns before the first request to such an endpoint, then never again.
#[derive(Debug, Default)]
pub(crate) struct PlainHttpWarning {
    warned: AtomicBool,
}

impl Intercept for PlainHttpWarning {
    fn name(&self) -> &'static str {
        "secrets_aws::PlainHttpWarning"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.warned.load(Ordering::Relaxed) {
            return Ok(());
        }
        if let Some(host) = remote_plain_http_host(context.request().uri())
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                host = %host,
                "the Secrets Manager endpoint is plain http:// on another machine ({host}): \
                 secret values cross the network unencrypted; use an https:// endpoint"
            );
        }
        Ok(())
    }
}

/// The host of a plain-`http` URI that is neither a literal loopback address nor
/// `localhost`, reduced to the characters host names use.
fn remote_plain_http_host(uri: &str) -> Option<String> {
    let scheme_end = uri.find("://")?;
    if !uri[..scheme_end].eq_ignore_ascii_case("http") {
        return None;
    }
    let rest = &uri[scheme_end + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    if is_loopback(host) {
        return None;
    }
    Some(
        host.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
            .take(255)
            .collect(),
    )
}

fn is_loopback(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_to_other_machines_is_reported() {
        for (uri, expected) in [
            (
                "http://secrets.example.com:4566/",
                Some("secrets.example.com"),
            ),
            ("HTTP://10.0.0.5", Some("10.0.0.5")),
            ("http://user:pw@vpce.internal:80/x", Some("vpce.internal")),
            ("http://[2001:db8::1]:4566/", Some("2001:db8::1")),
            ("http://127.0.0.1:4566/", None),
            ("http://127.1.2.3/", None),
            ("http://[::1]:4566/", None),
            ("http://[::ffff:127.0.0.1]/", None),
            ("http://localhost:4566", None),
            ("http://LOCALHOST./", None),
            ("https://secrets.example.com/", None),
        ] {
            assert_eq!(remote_plain_http_host(uri).as_deref(), expected, "{uri}");
        }
    }
}
