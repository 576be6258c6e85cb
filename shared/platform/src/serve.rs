//! Run one `Router` under the Lambda runtime when `AWS_LAMBDA_RUNTIME_API` is set, otherwise on
//! a local socket, so the same handler code serves Lambda, local work and tests.

use axum::Router;

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "could not listen on {addr}: {source}; is another process using the port? Set HSBRIDGE_LOCAL_ADDR to another address"
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the local server stopped: {0}")]
    Local(#[source] std::io::Error),
    #[error("the Lambda runtime stopped: {0}")]
    Lambda(String),
}

/// Serve `router` under Lambda, or locally on `HSBRIDGE_LOCAL_ADDR` (default `local_default`).
pub async fn run(router: Router, local_default: &str) -> Result<(), ServeError> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda_http::run(router)
            .await
            .map_err(|e| ServeError::Lambda(e.to_string()));
    }
    let addr = std::env::var("HSBRIDGE_LOCAL_ADDR").unwrap_or_else(|_| local_default.to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    tracing::info!(%addr, "serving locally");
    axum::serve(listener, router)
        .await
        .map_err(ServeError::Local)
}
