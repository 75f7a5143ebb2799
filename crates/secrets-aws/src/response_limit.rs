//! A cap on how much of an HTTP response is read: a wrapper around the SDK's HTTP client
//! whose response bodies fail once they pass [`MAX_RESPONSE_SIZE`].
//!
//! The SDK reads a whole (non-streaming) response into memory before parsing it, with no
//! limit of its own, so an endpoint that answers with an endless body (a hostile or broken
//! `AWS_ENDPOINT_URL`, a proxy gone wrong) would otherwise grow the process until the call's
//! timeout. With the cap, a response that declares a larger `Content-Length` fails before
//! its body is read, and one without a length (chunked, or ended by closing the connection)
//! fails at the first frame that passes the cap; what was read is dropped, and so is the
//! connection. At most the cap plus one frame (hyper reads at most about 400 KiB at a time)
//! is buffered.

use std::error::Error;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use http_body::{Body, Frame, SizeHint};

/// The most bytes of one HTTP response body the provider reads: 1 MiB. A secret holds at
/// most 64 KiB ([`MAX_SECRET_SIZE`](crate::MAX_SECRET_SIZE)); a `GetSecretValue` answer
/// adds its JSON envelope, and a `SecretBinary` comes base64-encoded (4/3 of its size), so
/// a real answer stays far below this.
pub const MAX_RESPONSE_SIZE: u64 = 1 << 20;

/// `client` with every response body capped at `limit` bytes.
pub(crate) fn capped(client: SharedHttpClient, limit: u64) -> SharedHttpClient {
    CappedHttpClient {
        inner: client,
        limit,
    }
    .into_shared()
}

/// The error a capped body fails with. Its text names only sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseTooLarge {
    /// The cap, in bytes.
    pub(crate) limit: u64,
    /// The `Content-Length` the response declared, when that is what gave it away.
    pub(crate) declared: Option<u64>,
}

impl fmt::Display for ResponseTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.declared {
            Some(length) => write!(
                f,
                "the response declares {length} bytes, more than the {} bytes read at most",
                self.limit
            ),
            None => write!(
                f,
                "the response is longer than the {} bytes read at most",
                self.limit
            ),
        }
    }
}

impl Error for ResponseTooLarge {}

#[derive(Debug)]
struct CappedHttpClient {
    inner: SharedHttpClient,
    limit: u64,
}

impl HttpClient for CappedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CappedConnector {
            inner: self.inner.http_connector(settings, components),
            limit: self.limit,
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct CappedConnector {
    inner: SharedHttpConnector,
    limit: u64,
}

impl HttpConnector for CappedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let call = self.inner.call(request);
        let limit = self.limit;
        HttpConnectorFuture::new(async move {
            let mut response = call.await?;
            let declared = response
                .headers()
                .get("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = response.take_body();
            let capped = match declared {
                // Refused before a byte of it is read; dropping the body drops the connection.
                Some(length) if length > limit => CappedBody::failed(ResponseTooLarge {
                    limit,
                    declared: Some(length),
                }),
                _ => CappedBody::new(body, limit),
            };
            *response.body_mut() = SdkBody::from_body_1_x(capped);
            Ok(response)
        })
    }
}

/// A response body that fails once more than `left` bytes arrived.
struct CappedBody {
    state: State,
}

enum State {
    Reading {
        inner: SdkBody,
        left: u64,
        limit: u64,
    },
    Failed(ResponseTooLarge),
    Done,
}

impl CappedBody {
    fn new(inner: SdkBody, limit: u64) -> Self {
        Self {
            state: State::Reading {
                inner,
                left: limit,
                limit,
            },
        }
    }

    fn failed(error: ResponseTooLarge) -> Self {
        Self {
            state: State::Failed(error),
        }
    }
}

impl Body for CappedBody {
    type Data = <SdkBody as Body>::Data;
    type Error = aws_smithy_runtime_api::box_error::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let (inner, left, limit) = match &mut this.state {
            State::Reading { inner, left, limit } => (inner, left, *limit),
            State::Failed(error) => {
                let error = *error;
                this.state = State::Done;
                return Poll::Ready(Some(Err(Box::new(error))));
            }
            State::Done => return Poll::Ready(None),
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let size = frame.data_ref().map_or(0, |data| data.len() as u64);
                if size > *left {
                    // Drop what was read and the connection with it.
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(Box::new(ResponseTooLarge {
                        limit,
                        declared: None,
                    }))));
                }
                *left -= size;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) => {
                this.state = State::Done;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Reading { inner, .. } => inner.is_end_stream(),
            State::Failed(_) => false,
            State::Done => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Reading { inner, .. } => inner.size_hint(),
            State::Failed(_) | State::Done => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(body: CappedBody) -> Result<usize, Box<dyn Error + Send + Sync>> {
        let mut body = std::pin::pin!(body);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut total = 0;
        loop {
            match body.as_mut().poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => total += frame.data_ref().map_or(0, |d| d.len()),
                Poll::Ready(Some(Err(e))) => return Err(e),
                Poll::Ready(None) => return Ok(total),
                Poll::Pending => unreachable!("in-memory bodies are always ready"),
            }
        }
    }

    #[test]
    fn bodies_up_to_the_limit_pass_and_longer_ones_fail() {
        assert_eq!(
            collect(CappedBody::new(SdkBody::from(vec![b'a'; 100]), 100)).unwrap(),
            100
        );
        let e = collect(CappedBody::new(SdkBody::from(vec![b'a'; 101]), 100)).unwrap_err();
        let e = e.downcast_ref::<ResponseTooLarge>().unwrap();
        assert_eq!(
            *e,
            ResponseTooLarge {
                limit: 100,
                declared: None
            }
        );
        let e = collect(CappedBody::failed(ResponseTooLarge {
            limit: 1,
            declared: Some(2),
        }))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the response declares 2 bytes, more than the 1 bytes read at most"
        );
    }
}
