//! One AWS SDK configuration per cold start, with every call bounded in time. `AWS_ENDPOINT_URL`
//! (used by the tests to reach moto, and by anyone pointing at a local stand-in) is honoured by
//! aws-config itself.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use std::time::Duration;

/// How long AWS calls may take. Defaults suit a request handler that must answer within ~4 s.
#[derive(Debug, Clone, Copy)]
pub struct AwsTimeouts {
    pub connect: Duration,
    pub attempt: Duration,
    pub operation: Duration,
    pub max_attempts: u32,
}

impl Default for AwsTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(500),
            attempt: Duration::from_millis(800),
            operation: Duration::from_millis(1_800),
            max_attempts: 2,
        }
    }
}

/// The operation timeout (every attempt included) of an SDK configuration, if it has one.
pub fn operation_timeout(sdk: &SdkConfig) -> Option<Duration> {
    sdk.timeout_config().and_then(|t| t.operation_timeout())
}

/// Load the shared SDK configuration (region, credentials, endpoint) with bounded timeouts.
///
/// Every client built from it shares one HTTPS client whose TLS set-up waits for the first
/// request (see [`https_client`]).
pub async fn load(timeouts: AwsTimeouts) -> SdkConfig {
    loader(timeouts).load().await
}

/// What [`load`] loads, before loading: for a caller that names the region or profile itself
/// (the operator commands' `--region` and `--profile`).
pub fn loader(timeouts: AwsTimeouts) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeouts.connect)
                .operation_attempt_timeout(timeouts.attempt)
                .operation_timeout(timeouts.operation)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(timeouts.max_attempts))
}

/// The SDK's default HTTPS client (hyper 1, rustls on aws-lc, the proxy taken from the
/// environment), with one difference: building a service client does not build a TLS
/// connector.
///
/// The SDK's client validates itself on every service client's construction by building a
/// connector and dropping it, "so that native certs load at client initialization time"
/// (aws-smithy-http-client 1.5, `HyperClient::validate_base_client_config`): the system's trust
/// store read and parsed (each certificate twice where, as on Debian, a bundle file and a hashed
/// directory both hold them), then a root store built for each client (four in the intake, the
/// credential chain's STS client included), all before the function's first `GET /next`, where
/// it was nearly all of the init instructions counted with callgrind. Here the one connector
/// the calls use is built when the first call needs it, once for every client (they share this
/// one), so init skips it and the first invocation pays for a single build.
pub fn https_client() -> SharedHttpClient {
    let inner = Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        // What the SDK's default client does from behavior version 2025-08-07 on.
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    DeferredTls(inner).into_shared()
}

/// A client that leaves validation (and with it the TLS set-up) to the first request.
#[derive(Debug)]
struct DeferredTls(SharedHttpClient);

impl HttpClient for DeferredTls {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}
