//! The Lambda Runtime API (2018-06-01) on loopback, as the Lambda service offers it to a
//! function's process: `GET /invocation/next` long-polls for an event, the function posts the
//! result to `/invocation/{id}/response` (or `/error`), and `/init/error` reports a failed init.
//!
//! One instance serves one function process, so "the first `/next`" is that process's end of
//! init. Latency is measured from handing the event to the waiting `/next` to receiving the
//! response: what Lambda reports as the invocation's duration, plus two loopback HTTP legs.

use anyhow::{Context, Result, anyhow, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};

/// What the function answered.
#[derive(Debug)]
pub enum Outcome {
    Response(Bytes),
    Error(Bytes),
}

#[derive(Debug)]
struct Pending {
    id: String,
    payload: Vec<u8>,
}

#[derive(Debug)]
struct Shared {
    function_arn: String,
    queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_next: watch::Sender<Option<Instant>>,
    init_error: Mutex<Option<String>>,
}

/// A running Runtime API for one function process; stops when dropped.
#[derive(Debug)]
pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Pending>,
    first_next: watch::Receiver<Option<Instant>>,
    seq: AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    pub async fn start(function_name: &str) -> Result<Self> {
        let (tx, rx) = mpsc::channel(1);
        let (first_tx, first_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
            queue: tokio::sync::Mutex::new(rx),
            waiting: Mutex::new(HashMap::new()),
            first_next: first_tx,
            init_error: Mutex::new(None),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the Runtime API on loopback")?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the Runtime API stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            tx,
            first_next: first_rx,
            seq: AtomicU64::new(0),
            task,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// When the process first asked for an event, if it has.
    pub fn first_next(&self) -> Option<Instant> {
        *self.first_next.borrow()
    }

    pub fn init_error(&self) -> Option<String> {
        self.shared
            .init_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// Hands `payload` to the function and waits (bounded) for its answer.
    pub async fn invoke(&self, payload: Vec<u8>, timeout: Duration) -> Result<(Duration, Outcome)> {
        let id = format!(
            "00000000-0000-4000-8000-{:012}",
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let (done_tx, done_rx) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .map_err(|_| anyhow!("runtime API state poisoned"))?
            .insert(id.clone(), done_tx);
        let started = Instant::now();
        self.tx
            .send(Pending { id, payload })
            .await
            .map_err(|_| anyhow!("the Runtime API stopped"))?;
        match tokio::time::timeout(timeout, done_rx).await {
            Ok(Ok(outcome)) => Ok((started.elapsed(), outcome)),
            Ok(Err(_)) => bail!("the invocation was dropped"),
            Err(_) => bail!("no answer within {timeout:?}"),
        }
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let now = Instant::now();
    shared.first_next.send_if_modified(|first| {
        if first.is_none() {
            *first = Some(now);
            true
        } else {
            false
        }
    });
    let pending = shared.queue.lock().await.recv().await;
    let Some(pending) = pending else {
        return StatusCode::GONE.into_response();
    };
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() + 30_000)
        .unwrap_or_default();
    let mut response = (StatusCode::OK, pending.payload).into_response();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", pending.id);
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        shared.function_arn.clone(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".to_owned(),
    );
    set("content-type", "application/json".to_owned());
    response
}

fn finish(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    let waiter = shared.waiting.lock().ok().and_then(|mut w| w.remove(id));
    match waiter {
        Some(tx) => {
            // The harness may have given up on it (timeout): nothing to do then.
            drop(tx.send(outcome));
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, Outcome::Response(body))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, Outcome::Error(body))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if let Ok(mut e) = shared.init_error.lock() {
        *e = Some(String::from_utf8_lossy(&body).into_owned());
    }
    StatusCode::ACCEPTED
}
