//! SDK errors -> [`ProviderError`], with messages built from the error code and a fixed
//! description.
//!
//! An `SdkError` is never attached as a source and never formatted: its `Debug` (and for some
//! variants its `Display` chain) includes the raw HTTP response, whose body can be the secret
//! itself (a `GetSecretValue` answer that failed to parse), or the request, whose body is the
//! secret for `PutSecretValue`.

use std::borrow::Cow;

use aws_config::imds::client::error::{ImdsError, TokenError};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::RequestId;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::retry::ErrorKind as RetryErrorKind;
use secrets_core::{ErrorKind, Location, ProviderError};

use crate::PROVIDER_NAME;
use crate::response_limit::ResponseTooLarge;

/// The provider error for a failed API call `operation` (`GetSecretValue`, ...) on `secret`.
pub(crate) fn from_sdk<E>(
    operation: &'static str,
    error: &SdkError<E, Response>,
    secret: &str,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (kind, description): (ErrorKind, Cow<'static, str>) = match error {
        SdkError::ConstructionFailure(_) => (
            ErrorKind::Misconfigured,
            "the request could not be built (check the region and the endpoint URL)".into(),
        ),
        SdkError::TimeoutError(_) => (
            ErrorKind::Timeout,
            "no answer within the operation timeout".into(),
        ),
        SdkError::DispatchFailure(failure) => {
            if let Some(found) = credentials_problem(error) {
                found
            } else if let Some(tls) = find_cause::<rustls::Error>(error) {
                tls_problem(tls)
            } else if failure.is_timeout() {
                (
                    ErrorKind::Timeout,
                    "the connection timed out (connect timeout or no answer)".into(),
                )
            } else if failure.is_io() {
                (
                    ErrorKind::Unavailable,
                    "cannot connect to the endpoint (connection refused, reset or DNS failure)"
                        .into(),
                )
            } else if failure.is_user() {
                (
                    ErrorKind::Misconfigured,
                    "the request could not be sent (check the endpoint URL and TLS settings)"
                        .into(),
                )
            } else if failure
                .as_other()
                .is_some_and(|k| k != RetryErrorKind::ClientError)
            {
                (
                    ErrorKind::Unavailable,
                    "the request could not be sent to the endpoint".into(),
                )
            } else {
                (
                    ErrorKind::Misconfigured,
                    "the request could not be signed or sent (no AWS credentials provider, or the \
                     endpoint or its TLS certificate was rejected)"
                        .into(),
                )
            }
        }
        SdkError::ResponseError(_) => match find_cause::<ResponseTooLarge>(error) {
            Some(too_large) => (
                ErrorKind::Unavailable,
                too_large_description(too_large).into(),
            ),
            None => (
                ErrorKind::Unavailable,
                "the response could not be read or parsed (connection cut, or not a Secrets \
                 Manager answer)"
                    .into(),
            ),
        },
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            if (200..300).contains(&status) {
                // A success status with an answer that did not parse as one.
                (
                    ErrorKind::Unavailable,
                    "the response could not be read or parsed (not a Secrets Manager answer)"
                        .into(),
                )
            } else {
                classify_service_error(service.err().code(), status)
            }
        }
        _ => (ErrorKind::Unavailable, "unexpected SDK failure".into()),
    };
    let mut message = format!("{operation}: {description}");
    if let SdkError::ServiceError(service) = error {
        let code = service.err().code().map(clean).unwrap_or_default();
        let status = service.raw().status().as_u16();
        if code.is_empty() {
            message.push_str(&format!(" (HTTP {status}"));
        } else {
            message.push_str(&format!(" ({code}, HTTP {status}"));
        }
        if let Some(id) = error.request_id().map(clean).filter(|id| !id.is_empty()) {
            message.push_str(&format!(", request id {id}"));
        }
        message.push(')');
    }
    ProviderError::new(PROVIDER_NAME, kind, message)
        .with_location(Location::Secret(secret.to_owned()))
}

/// A TLS failure talking to the endpoint: not a passing outage (no retry fixes a certificate
/// the trust store rejects) but a wrong endpoint, a missing CA, or something intercepting.
fn tls_problem(error: &rustls::Error) -> (ErrorKind, Cow<'static, str>) {
    use rustls::CertificateError as C;
    let description = match error {
        rustls::Error::InvalidCertificate(certificate) => {
            let why = match certificate {
                C::UnknownIssuer => "not issued by an authority this machine trusts",
                C::Expired | C::ExpiredContext { .. } => "expired",
                C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet",
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "issued for another host name"
                }
                C::Revoked => "revoked",
                _ => "invalid",
            };
            format!(
                "TLS certificate failure: the endpoint's certificate was rejected ({why}); \
                 check AWS_ENDPOINT_URL (or the endpoint in the settings), and any proxy or \
                 TLS interception between here and AWS"
            )
        }
        _ => "TLS failure: the TLS handshake with the endpoint failed (does it speak HTTPS at \
              that address? check AWS_ENDPOINT_URL)"
            .to_owned(),
    };
    (ErrorKind::Misconfigured, description.into())
}

/// What a response over the cap is told as: the limit, and that reading stopped there.
fn too_large_description(too_large: &ResponseTooLarge) -> String {
    let limit = too_large.limit;
    let shown = if limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{} KiB", limit / 1024)
    };
    let (what, read) = match too_large.declared {
        Some(length) => (
            format!("declares a body of {length} bytes, more than"),
            "none of it was read",
        ),
        None => ("is longer than".to_owned(), "reading stopped at the limit"),
    };
    format!(
        "the response {what} the {shown} ({limit} bytes) read of one answer at most (a secret \
         holds at most 64 KiB): not a Secrets Manager answer; {read}"
    )
}

/// The first error of type `E` among `error` and its causes, looking inside the I/O errors
/// on the way too (whose `source()` skips the error they wrap).
pub(crate) fn find_cause<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        cause = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    None
}

/// Kind and description of an error answer, from its code, else its HTTP status.
fn classify_service_error(code: Option<&str>, status: u16) -> (ErrorKind, Cow<'static, str>) {
    use ErrorKind::*;
    let known: Option<(ErrorKind, &'static str)> = match code.unwrap_or_default() {
        "ResourceNotFoundException" => Some((
            NotFound,
            "the secret, or a version of it with the requested stage or id, does not exist",
        )),
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "ExpiredTokenException"
        | "ExpiredToken" => Some((
            PermissionDenied,
            "AWS refused the credentials or their permissions (see the IAM policy in the docs)",
        )),
        "DecryptionFailure" => Some((
            PermissionDenied,
            "the secret's KMS key cannot decrypt it for these credentials (kms:Decrypt)",
        )),
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => Some((Throttled, "AWS asked to slow down")),
        "LimitExceededException" => Some((
            Throttled,
            "a Secrets Manager quota was exceeded (for example versions created per day)",
        )),
        "InternalServiceError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => Some((Unavailable, "Secrets Manager failed internally")),
        "InvalidRequestException" => Some((
            NotFound,
            "the secret cannot be used in its current state (for example it is scheduled for \
             deletion)",
        )),
        "InvalidParameterException" => Some((
            Misconfigured,
            "a request parameter was rejected (check the secret name, version stage or version id)",
        )),
        "ResourceExistsException" => Some((
            Conflict,
            "the client request token is already used by a version with other content",
        )),
        _ => None,
    };
    if let Some((kind, description)) = known {
        return (kind, description.into());
    }
    match status {
        500..=599 => (
            Unavailable,
            "Secrets Manager answered with a server error".into(),
        ),
        429 => (Throttled, "AWS asked to slow down".into()),
        401 | 403 => (PermissionDenied, "AWS refused the request".into()),
        404 => (NotFound, "the endpoint answered `not found`".into()),
        _ => (Misconfigured, "AWS rejected the request".into()),
    }
}

/// What the error says when the credential chain found nothing.
const NO_CREDENTIALS: &str = "no AWS credentials found (environment, profile, web identity, \
                              container or instance metadata)";

/// A credentials failure somewhere in the error's causes: fixed descriptions only, since a
/// profile parser's message could quote a line of `~/.aws/credentials`.
fn credentials_problem(
    error: &(dyn std::error::Error + 'static),
) -> Option<(ErrorKind, Cow<'static, str>)> {
    if identity_load_timed_out(error) {
        // The SDK's identity cache gave up on a credentials chain that kept failing or
        // retrying (an instance metadata service answering 5xx on a loaded machine): an
        // outage, not a missing configuration.
        return Some((
            ErrorKind::Timeout,
            "loading AWS credentials timed out (a credentials endpoint such as the instance \
             metadata service kept failing or did not answer)"
                .into(),
        ));
    }
    let credentials = find_cause::<CredentialsError>(error)?;
    Some(match credentials {
        CredentialsError::CredentialsNotLoaded(_) => {
            (ErrorKind::Misconfigured, NO_CREDENTIALS.into())
        }
        CredentialsError::ProviderTimedOut(_) => (
            ErrorKind::Timeout,
            "loading AWS credentials timed out".into(),
        ),
        CredentialsError::InvalidConfiguration(_) => (
            ErrorKind::Misconfigured,
            "the AWS credentials configuration is invalid (check AWS_PROFILE, \
             ~/.aws/config and ~/.aws/credentials)"
                .into(),
        ),
        _ => credentials_failure(credentials),
    })
}

/// Whether the SDK's identity cache timed out loading credentials. Its error type is private,
/// so the leaf cause's fixed text is compared (a leaf without a source; the text is never
/// shown, and this type's text holds only a duration).
fn identity_load_timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.source().is_none() && !e.is::<std::io::Error>() {
            return e.to_string().starts_with("identity resolver timed out");
        }
        cause = e.source();
    }
    false
}

/// A credentials provider that failed: a network failure reaching its endpoint or a server
/// error is an outage (transient); a refusal (HTTP 4xx, IMDS disabled, an answer that holds
/// no credentials) means this process has no credentials (misconfigured).
fn credentials_failure(credentials: &CredentialsError) -> (ErrorKind, Cow<'static, str>) {
    let status = credentials_status(credentials);
    // Which provider failed, and where to look when it refused.
    let (endpoint, hint) = if find_cause::<ImdsError>(credentials).is_some() {
        (
            "the instance metadata service (IMDS)",
            "IMDS disabled or its token refused, or no role attached to the instance",
        )
    } else if status.is_some()
        || find_cause::<SdkError<CredentialsError, Response>>(credentials).is_some()
    {
        (
            "the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI or \
             _RELATIVE_URI)",
            "check the task's role and the authorization token",
        )
    } else {
        (
            "the AWS credentials service (STS, for a role or web identity)",
            "check the role, its trust policy and the web identity token",
        )
    };
    if let Some(connector) = find_cause::<ConnectorError>(credentials) {
        return if connector.is_timeout() {
            (
                ErrorKind::Timeout,
                format!("loading AWS credentials: {endpoint} did not answer in time").into(),
            )
        } else {
            (
                ErrorKind::Unavailable,
                format!(
                    "loading AWS credentials: cannot reach {endpoint}: connection refused, reset \
                     or DNS failure"
                )
                .into(),
            )
        };
    }
    let (kind, description) = match status {
        Some(status @ 500..=599) => (
            ErrorKind::Unavailable,
            format!("loading AWS credentials: {endpoint} failed (HTTP {status})"),
        ),
        Some(429) => (
            ErrorKind::Throttled,
            format!("loading AWS credentials: {endpoint} asked to slow down (HTTP 429)"),
        ),
        Some(status) => (
            ErrorKind::Misconfigured,
            format!(
                "no AWS credentials found: {endpoint} refused to provide them (HTTP {status}; \
                 {hint})"
            ),
        ),
        None => (
            ErrorKind::Misconfigured,
            format!(
                "no AWS credentials found: {endpoint} refused to provide them, or answered with \
                 something that is not credentials ({hint})"
            ),
        ),
    };
    (kind, description.into())
}

/// The HTTP status a credentials endpoint answered with, when its error tells it: instance
/// metadata keeps the response; the container credentials provider only puts the status in
/// a fixed message of its own (read for the number, never shown).
fn credentials_status(credentials: &CredentialsError) -> Option<u16> {
    if let Some(imds) = find_cause::<ImdsError>(credentials) {
        if let ImdsError::ErrorResponse(answer) = imds {
            return Some(answer.response().status().as_u16());
        }
        if let Some(token) = find_cause::<SdkError<TokenError, Response>>(credentials) {
            return token.raw_response().map(|r| r.status().as_u16());
        }
    }
    const HTTP_PROVIDER: &str = "Non-success status from HTTP credential provider: ";
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(credentials);
    while let Some(e) = cause {
        let text = e.to_string();
        if let Some(rest) = text.strip_prefix(HTTP_PROVIDER) {
            let digits: String = rest.chars().filter(char::is_ascii_digit).take(3).collect();
            return digits.parse().ok();
        }
        cause = e.source();
    }
    None
}

/// An identifier from a response (error code, request id), reduced to the characters such
/// identifiers use and capped, so a hostile answer cannot smuggle text into a message.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '#'))
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        for (code, status, kind) in [
            ("ResourceNotFoundException", 400, ErrorKind::NotFound),
            ("AccessDeniedException", 400, ErrorKind::PermissionDenied),
            (
                "UnrecognizedClientException",
                400,
                ErrorKind::PermissionDenied,
            ),
            ("ThrottlingException", 400, ErrorKind::Throttled),
            ("InternalServiceError", 500, ErrorKind::Unavailable),
            ("DecryptionFailure", 400, ErrorKind::PermissionDenied),
            ("ResourceExistsException", 400, ErrorKind::Conflict),
            ("SomethingNew", 503, ErrorKind::Unavailable),
            ("SomethingNew", 429, ErrorKind::Throttled),
            ("SomethingNew", 403, ErrorKind::PermissionDenied),
            ("SomethingNew", 400, ErrorKind::Misconfigured),
        ] {
            assert_eq!(classify_service_error(Some(code), status).0, kind, "{code}");
        }
        assert_eq!(classify_service_error(None, 502).0, ErrorKind::Unavailable);
    }

    #[test]
    fn identifiers_are_cleaned() {
        assert_eq!(clean("Throttling\nINFO forged"), "ThrottlingINFOforged");
        assert_eq!(clean(&"x".repeat(500)).len(), 64);
    }
}
