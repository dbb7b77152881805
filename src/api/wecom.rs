//! `/wecom/{agent}/callback`: WeCom's encrypted callback over HTTP. The checks and decisions
//! live in `wecom::callback`; this edge reads the request, applies opt-outs and opt-ins to the
//! suppression list, answers each delivery once, and counts every outcome in
//! `wecom_callbacks_total{agent, result}`.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::{ApiError, ApiState};
use crate::clock::now_s;
use crate::serve::text_response;
use crate::store::{DeliveryWindow, Suppression};
use crate::wecom::callback::{CallbackAgent, CallbackQuery, Effect, Received, Refusal};

/// Largest callback body read (real deliveries are a few KiB).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Deliveries remembered in the store for retry detection, across restarts. WeCom retries
/// within seconds, so the newest ten thousand of the last day are plenty; the bound keeps the
/// record small (about 2 MB at most) however long the daemon runs.
const REMEMBERED: DeliveryWindow = DeliveryWindow { max_entries: 10_000, max_age_ms: 86_400_000 };

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// Serves one callback request for the app named `agent`.
pub(super) async fn callback(state: &Arc<ApiState>, agent: &str, req: Request<Incoming>) -> Answer {
    let Some(a) = state.agents.get(agent) else {
        count(state, "unknown", "unknown_agent");
        return Err(ApiError::not_found(format!("no WeCom app named {agent:?} has a callback configured")));
    };
    let outcome = match *req.method() {
        Method::GET => verify(a, req),
        Method::POST => receive(state, a, req).await,
        _ => return Err(ApiError::method_not_allowed()),
    };
    match outcome {
        Ok((result, resp)) => {
            count(state, &a.app, result);
            Ok(resp)
        }
        Err(refusal) => {
            count(state, &a.app, refusal.label());
            tracing::warn!(agent = a.app, reason = %refusal, "WeCom callback refused");
            Err(ApiError::callback_refused(refusal.status(), refusal.code(), refusal.public_message()))
        }
    }
}

/// URL verification: the bare plaintext of the echostr, nothing else.
fn verify(a: &CallbackAgent, req: Request<Incoming>) -> Result<(&'static str, Response<Full<Bytes>>), Refusal> {
    let q = CallbackQuery::parse(req.uri().query().unwrap_or(""))?;
    let echo = a.verify_url(&q, now_s())?;
    Ok(("verified", text_response(200, echo)))
}

async fn receive(
    state: &ApiState,
    a: &CallbackAgent,
    req: Request<Incoming>,
) -> Result<(&'static str, Response<Full<Bytes>>), Refusal> {
    let q = CallbackQuery::parse(req.uri().query().unwrap_or(""))?;
    let body = super::read_whole_body(state, req.into_body(), MAX_BODY_BYTES).await.map_err(|e| match e {
        super::BodyError::TimedOut(deadline) => Refusal::SlowBody(deadline),
        super::BodyError::Unreadable => {
            Refusal::BadXml(format!("the body is unreadable or over {MAX_BODY_BYTES} bytes"))
        }
    })?;
    let body = std::str::from_utf8(&body).map_err(|_| Refusal::BadXml("the body is not UTF-8".into()))?;
    let received = a.receive(&q, body, now_s())?;
    let key = format!("{}:{}", a.app, received.inbound.dedup_key());
    // The effect is made durable before the delivery is noted: a crash between the two makes
    // WeCom's retry apply it again (opt-outs and opt-ins are idempotent), never lose it.
    match state.store.delivery_noted(&key).await {
        Ok(false) => {}
        Ok(true) => return Ok(("duplicate", empty())),
        Err(e) => {
            tracing::error!(agent = a.app, error = %e, "cannot read the delivery record");
            return Ok(("store_failed", text_response(503, "")));
        }
    }
    if let Err(e) = apply(state, a, &received).await {
        tracing::error!(agent = a.app, error = %e, "cannot update the suppression list");
        return Ok(("store_failed", text_response(503, "")));
    }
    match state.store.first_delivery(&key, now_s() * 1000, REMEMBERED).await {
        Ok(true) => {}
        // A retry that arrived while this one was being handled noted it first: one reply.
        Ok(false) => return Ok(("duplicate", empty())),
        Err(e) => tracing::error!(agent = a.app, error = %e, "cannot note the delivery; a retry will be handled again"),
    }
    let Some(reply) = &received.reply else {
        return Ok(("accepted", empty()));
    };
    let nonce = fastrand::u32(100_000_000..u32::MAX).to_string();
    match a.seal_reply(reply, &received.inbound.from_user, now_s(), &nonce) {
        Ok(xml) => Ok(("replied", xml_response(xml))),
        Err(e) => {
            tracing::error!(agent = a.app, error = %e, "cannot encrypt the passive reply");
            Ok(("accepted", empty()))
        }
    }
}

/// Puts the sender on or takes them off the app's suppression list.
async fn apply(state: &ApiState, a: &CallbackAgent, r: &Received) -> Result<(), crate::store::StoreError> {
    let user = &r.inbound.from_user;
    let entry = match r.effect {
        Effect::None => return Ok(()),
        Effect::OptOut(reason) => Some(Suppression { reason: reason.into(), since_ms: now_s() * 1000 }),
        Effect::OptIn(_) => None,
    };
    let opted_out = entry.is_some();
    if state.store.set_suppression(&a.app, user, entry).await? {
        tracing::info!(agent = a.app, user, opted_out, "suppression list changed by the member");
    }
    Ok(())
}

fn count(state: &ApiState, agent: &str, result: &str) {
    state.metrics.wecom_callbacks_total.with_label_values(&[agent, result]).inc();
}

/// The empty 200 WeCom takes as "received, no reply".
fn empty() -> Response<Full<Bytes>> {
    text_response(200, "")
}

fn xml_response(xml: String) -> Response<Full<Bytes>> {
    let mut resp = text_response(200, xml);
    resp.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/xml; charset=utf-8"));
    resp
}
