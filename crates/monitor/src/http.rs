//! The HTTP surface: the JSON API (`/api/ntp/status`, `/peers`, `/history`, `/clients`),
//! Prometheus `/metrics`, `/healthz` and the dashboard page at `/`, read from the status snapshot
//! and the devices view. Connections are capped below the open files limit and each gets a
//! bounded time and buffer for its request head (see `connections`), so a flood of slow or
//! silent clients cannot take the descriptors the control socket and NTS need.

mod connections;

use crate::Devices;
use crate::history::History;
use crate::prometheus;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use connections::{Connections, Slot};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use syhub_ntp_status::{DevicesSummary, RequestTally, StatusSnapshot};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use connections::connection_cap;

/// The largest request head read (request line and headers), bytes; a longer one is answered
/// with 431. Hyper's smallest buffer; our requests are a line and a few headers.
const MAX_HEAD_BYTES: usize = 8192;
/// After a failed accept (descriptors exhausted), the pause before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The dashboard, shipped inside the binary.
const DASHBOARD: &str = include_str!("dashboard.html");

#[derive(Debug, thiserror::Error)]
#[error("cannot listen for HTTP on {address}: {source}")]
pub struct HttpBindError {
    pub address: SocketAddr,
    pub source: std::io::Error,
}

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    pub status: watch::Receiver<StatusSnapshot>,
    /// Read live: the snapshot's counters may be seconds old.
    pub counters: Arc<RequestTally>,
    pub history: Arc<Mutex<History>>,
    pub devices: Devices,
}

/// Binds every address now, so an address in use is reported at start.
pub fn bind(addresses: &[SocketAddr]) -> Result<Vec<std::net::TcpListener>, HttpBindError> {
    addresses
        .iter()
        .map(|&address| {
            let listener = std::net::TcpListener::bind(address)
                .map_err(|source| HttpBindError { address, source })?;
            listener.set_nonblocking(true).map_err(|source| HttpBindError { address, source })?;
            Ok(listener)
        })
        .collect()
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/api/ntp/status", get(status))
        .route("/api/ntp/peers", get(peers))
        .route("/api/ntp/history", get(history))
        .route("/api/ntp/clients", get(clients))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Serves on `listeners` until cancelled, with at most `cap` connections open across them (see
/// [`connection_cap`]).
pub async fn serve(
    listeners: Vec<std::net::TcpListener>,
    state: HttpState,
    cap: usize,
    cancel: CancellationToken,
) {
    let connections = Connections::new(cap);
    let app = router(state);
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { continue };
        servers.spawn(accept(listener, app.clone(), connections.clone(), cancel.clone()));
    }
    while servers.join_next().await.is_some() {}
}

/// Accepts connections on one listener until cancelled: each gets a place in `connections` or is
/// closed at once.
async fn accept(
    listener: tokio::net::TcpListener,
    app: Router,
    connections: Connections,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!("HTTP: cannot accept a connection: {error}");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let (slot, crowding) = connections.admit(Instant::now());
        if let Some(crowding) = crowding {
            tracing::warn!(
                "HTTP: {} connections, the most allowed; closing those waiting longest for a \
                 request to let new ones in ({} closed, {} refused while all were busy, since the \
                 last warning)",
                crowding.open,
                crowding.evicted,
                crowding.refused
            );
        }
        if let Some(slot) = slot {
            tokio::spawn(serve_connection(stream, app.clone(), slot, cancel.clone()));
        }
        // A connection that gave way closes before the next is accepted, so the descriptors
        // held stay within the cap during a flood.
        tokio::task::yield_now().await;
    }
}

/// Serves HTTP/1.1 on one connection until the client closes it, it waits too long for a
/// request, it must make room for another, or the server stops.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    slot: Slot,
    cancel: CancellationToken,
) {
    let slot = Arc::new(slot);
    let app = TowerToHyperService::new(app);
    let service = {
        let slot = slot.clone();
        hyper::service::service_fn(move |request: axum::http::Request<Incoming>| {
            slot.busy();
            let answer = hyper::service::Service::call(&app, request);
            let slot = slot.clone();
            async move {
                let response = answer.await;
                slot.idle(Instant::now());
                response
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    loop {
        // While a request is answered, look again after the idle time.
        let wake = slot.deadline().unwrap_or_else(|| Instant::now() + connections::IDLE_TIMEOUT);
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = slot.evicted() => return,
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(wake.into()) => {
                if slot.deadline().is_some_and(|deadline| deadline <= Instant::now()) {
                    return;
                }
            }
        }
    }
}

async fn dashboard() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        DASHBOARD,
    )
        .into_response()
}

async fn status(State(state): State<HttpState>) -> Json<StatusSnapshot> {
    Json(state.status.borrow().with_counters(&state.counters))
}

async fn peers(State(state): State<HttpState>) -> Json<Vec<syhub_ntp_status::SourceStatus>> {
    Json(state.status.borrow().peers.clone())
}

async fn history(State(state): State<HttpState>) -> Response {
    let body = match state.history.lock() {
        Ok(history) => serde_json::to_string(&*history).unwrap_or_default(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The devices and their counts by state.
async fn clients(State(state): State<HttpState>) -> Json<serde_json::Value> {
    let devices = (state.devices)();
    let summary = DevicesSummary::of(&devices);
    Json(serde_json::json!({ "summary": summary, "devices": devices }))
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let mut body = prometheus::render(&state.status.borrow().with_counters(&state.counters));
    body += &prometheus::render_devices(&DevicesSummary::of(&(state.devices)()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

async fn healthz(State(state): State<HttpState>) -> Json<serde_json::Value> {
    let synchronised = state.status.borrow().synchronised;
    Json(serde_json::json!({ "ok": true, "synchronised": synchronised }))
}

/// Samples the status into `history` every history interval until cancelled, starting with the
/// first status the daemon publishes.
pub async fn record_history(
    mut status: watch::Receiver<StatusSnapshot>,
    history: Arc<Mutex<History>>,
    cancel: CancellationToken,
) {
    tokio::select! {
        _ = cancel.cancelled() => return,
        first = status.wait_for(|s| !s.version.is_empty()) => if first.is_err() { return },
    }
    let interval =
        history.lock().map(|h| h.interval()).unwrap_or(std::time::Duration::from_secs(30));
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                let snapshot = status.borrow().clone();
                // A status that was never filled in (start-up) is not history.
                if !snapshot.version.is_empty()
                    && let Ok(mut history) = history.lock()
                {
                    history.record(now, &snapshot);
                }
            }
        }
    }
}
