//! `/v1/apps/{app}/suppressions`: the members of a WeCom app who opted out, viewable and
//! editable by operators (a member's own opt-out arrives through the callback).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use super::{json, ApiError, ApiState};
use crate::clock::now_ms;
use crate::config::Channel;
use crate::domain::recipient::parse_user;
use crate::percent;
use crate::protocol::{SuppressionList, SuppressionView};
use crate::store::Suppression;

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// Largest page of the list.
const MAX_PAGE: usize = 1000;

/// `GET ?after=&limit=`: one page, in member-id order.
pub(super) async fn list(state: &Arc<ApiState>, app: &str, query: Option<&str>) -> Answer {
    wecom_app(state, app)?;
    let mut after = String::new();
    let mut limit = 100;
    for (k, v) in query.unwrap_or("").split('&').filter_map(|p| p.split_once('=')) {
        match k {
            "after" => after = percent::decode(v),
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| ApiError::invalid("limit", format!("must be a number in 1..={MAX_PAGE}")))?
            }
            _ => {}
        }
    }
    let page = state.store.suppressions(app, &after, limit).await?;
    let next_after = (page.len() == limit).then(|| page.last().map(|(u, _)| u.clone())).flatten();
    let users = page.into_iter().map(|(u, s)| view(u, &s)).collect();
    json(200, &SuppressionList { app: app.to_owned(), users, next_after })
}

/// `GET /{user}`.
pub(super) async fn show(state: &Arc<ApiState>, app: &str, user: &str) -> Answer {
    wecom_app(state, app)?;
    let user = member(user)?;
    match state.store.suppression(app, &user).await? {
        Some(s) => json(200, &view(user.to_lowercase(), &s)),
        None => Err(ApiError::not_found(format!("{user} is not suppressed for {app}"))),
    }
}

/// `PUT /{user}`: suppress (idempotent).
pub(super) async fn add(state: &Arc<ApiState>, app: &str, user: &str) -> Answer {
    wecom_app(state, app)?;
    let user = member(user)?;
    let entry = Suppression { reason: "api".into(), since_ms: now_ms() };
    let created = state.store.set_suppression(app, &user, Some(entry.clone())).await?;
    json(if created { 201 } else { 200 }, &view(user.to_lowercase(), &entry))
}

/// `DELETE /{user}`: lift a suppression.
pub(super) async fn remove(state: &Arc<ApiState>, app: &str, user: &str) -> Answer {
    wecom_app(state, app)?;
    let user = member(user)?;
    if state.store.set_suppression(app, &user, None).await? {
        json(200, &serde_json::json!({ "user": user.to_lowercase(), "suppressed": false }))
    } else {
        Err(ApiError::not_found(format!("{user} is not suppressed for {app}")))
    }
}

fn wecom_app(state: &ApiState, app: &str) -> Result<(), ApiError> {
    match state.apps.get(app) {
        Some(Channel::Wecom) => Ok(()),
        Some(_) => Err(ApiError::not_found(format!(
            "{app} is not a WeCom app; suppression lists belong to WeCom apps, whose callbacks fill them"
        ))),
        None => Err(ApiError::not_found(format!("no app named {app:?}"))),
    }
}

fn member(raw: &str) -> Result<String, ApiError> {
    let decoded = percent::decode(raw);
    parse_user(&decoded).map_err(|m| ApiError::invalid("user", m))
}

fn view(user: String, s: &Suppression) -> SuppressionView {
    SuppressionView { user, reason: s.reason.clone(), since: super::campaigns::rfc3339(s.since_ms) }
}
