//! The one pooled HTTP(S) client every upstream call goes through.
//!
//! Built once per upstream app and shared: keep-alive connections, TLS with certificate
//! validation against the compiled-in Mozilla roots for `https://`, plain HTTP allowed for the
//! loopback simulators.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

pub use crate::config::PoolSettings;

/// Pooled client type used by every upstream.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Largest answer body read from an upstream; a push answer for 1000 cids is ~70 KiB.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("could not set up TLS: {0}")]
pub struct ClientBuildError(String);

/// Builds the pooled client. HTTP/1.1 is preferred because hyper shares a single HTTP/2
/// connection per host, which would serialize the shards on one socket.
pub fn build_client(settings: &PoolSettings) -> Result<HttpClient, ClientBuildError> {
    build_client_for(settings)
}

/// Like [`build_client`], for any request body type (streamed uploads use their own).
pub fn build_client_for<B>(
    settings: &PoolSettings,
) -> Result<Client<HttpsConnector<HttpConnector>, B>, ClientBuildError>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(settings.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(30)));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(provider)
        .map_err(|e| ClientBuildError(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(settings.pool_idle_timeout)
        .pool_max_idle_per_host(settings.max_idle_per_host)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https))
}

/// Reads a whole answer body, refusing more than [`MAX_ANSWER_BYTES`]. Reading to the end
/// lets the connection go back to the pool.
pub async fn read_body(body: Incoming) -> Result<Bytes, String> {
    Limited::new(body, MAX_ANSWER_BYTES).collect().await.map(|c| c.to_bytes()).map_err(|e| e.to_string())
}

/// An error with its chain of causes, for messages (hyper hides the useful part in `source`).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Lock poisoning cannot leave the plain values the clients keep half-written, so a poisoned
/// lock is used as is.
pub(crate) fn read_lock<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// See [`read_lock`].
pub(crate) fn write_lock<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Why an exchange brought no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoAnswer {
    /// What went wrong, with its causes, for messages.
    pub reason: String,
    /// False only when no connection could be made, so nothing of the request left this
    /// process. A deadline that passed counts as sent: it may have passed after the write.
    pub request_sent: bool,
}

/// One request and its whole answer within `timeout`: the HTTP status and the body, or why
/// there was no answer (the callers wrap it in their vendor's transport error).
pub(crate) async fn exchange(
    http: &HttpClient,
    req: hyper::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(u16, Bytes), NoAnswer> {
    let answer = async {
        let resp =
            http.request(req).await.map_err(|e| NoAnswer { reason: error_chain(&e), request_sent: !e.is_connect() })?;
        let status = resp.status().as_u16();
        let bytes = read_body(resp.into_body()).await.map_err(|reason| NoAnswer { reason, request_sent: true })?;
        Ok::<_, NoAnswer>((status, bytes))
    };
    tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| NoAnswer { reason: format!("no answer within {timeout:?}"), request_sent: true })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn post(addr: std::net::SocketAddr) -> hyper::Request<Full<Bytes>> {
        hyper::Request::post(format!("http://{addr}/push")).body(Full::new(Bytes::from_static(b"{}"))).unwrap()
    }

    #[tokio::test]
    async fn a_refused_connection_sent_nothing_and_a_closed_one_may_have() {
        let http = build_client(&PoolSettings::default()).unwrap();
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let refused = exchange(&http, post(addr), Duration::from_secs(5)).await.unwrap_err();
        assert!(!refused.request_sent, "{refused:?}");

        // A server that reads the request and hangs up without answering.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
        });
        let lost = exchange(&http, post(addr), Duration::from_secs(5)).await.unwrap_err();
        assert!(lost.request_sent, "{lost:?}");
    }
}
