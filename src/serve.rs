//! The HTTP accept loop shared by the daemon's API and the simulators.
//!
//! One task accepts; each connection gets its own task; a [`CancellationToken`] stops the
//! accepting, and in-flight requests get a deadline to finish (hyper's graceful shutdown).
//! [`ConnectionLimits`] cap the open connections and close those that go silent.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

/// What a handler answers: a response, or [`DropConnection`] to close the socket unanswered
/// (the simulator's "dropped connection" fault).
pub type HandlerResult = Result<Response<Full<Bytes>>, DropConnection>;

/// Closes the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose")]
pub struct DropConnection;

/// How long in-flight requests may run after shutdown begins.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// What one listener allows its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at most; beyond it the listener stops accepting, so new clients wait
    /// in the kernel's listen backlog until a connection closes.
    pub max_connections: usize,
    /// A connection on which a read waits this long without a byte is closed: a client that
    /// stalls mid-body (a slow-loris upload) or idles between keep-alive requests. `None`:
    /// never.
    pub idle_timeout: Option<Duration>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits { max_connections: 10_000, idle_timeout: None }
    }
}

/// Serves `handler` on `listener` until `shutdown` is cancelled, then drains.
pub async fn serve<H, F>(listener: TcpListener, handler: H, shutdown: CancellationToken)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HandlerResult> + Send + 'static,
{
    serve_limited(listener, handler, shutdown, ConnectionLimits::default()).await
}

/// [`serve`] within `limits`.
pub async fn serve_limited<H, F>(
    listener: TcpListener,
    handler: H,
    shutdown: CancellationToken,
    limits: ConnectionLimits,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HandlerResult> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Half-close on: hyper then reads nothing while a handler runs (it would only be looking
    // for EOF), so the idle timeout measures the client's silence, never a handler's work.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .half_close(limits.idle_timeout.is_some());
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut backoff = Duration::from_millis(10);
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => { backoff = Duration::from_millis(10); pair }
                Err(e) => {
                    // Out of file descriptors and similar: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed; backing off {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let h = handler.clone();
        let service = hyper::service::service_fn(move |req| h(req, peer));
        let io = IdleTimeout::new(stream, limits.idle_timeout);
        let conn = builder.serve_connection(TokioIo::new(io), service).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are client resets, idle timeouts and deliberate drops: nothing to
            // report. The slot is free again when the connection ends.
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still busy after {DRAIN_DEADLINE:?}; closing them");
    }
}

/// A TCP stream whose reads fail with `TimedOut` after waiting `idle` without a byte.
struct IdleTimeout {
    stream: TcpStream,
    idle: Option<Duration>,
    timer: Pin<Box<Sleep>>,
    /// A read is pending and the timer runs for it.
    waiting: bool,
}

impl IdleTimeout {
    fn new(stream: TcpStream, idle: Option<Duration>) -> IdleTimeout {
        IdleTimeout { stream, idle, timer: Box::pin(tokio::time::sleep(Duration::ZERO)), waiting: false }
    }
}

impl AsyncRead for IdleTimeout {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(idle) = this.idle else {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        };
        if let Poll::Ready(r) = Pin::new(&mut this.stream).poll_read(cx, buf) {
            this.waiting = false;
            return Poll::Ready(r);
        }
        if !this.waiting {
            this.waiting = true;
            this.timer.as_mut().reset(Instant::now() + idle);
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client sent nothing for {idle:?}; connection closed"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A JSON response with the given status.
pub fn json_response(status: u16, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json;charset=UTF-8"));
    resp
}

/// A plain-text response with the given status.
pub fn text_response(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}
