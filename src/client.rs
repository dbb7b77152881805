//! A thin client of the control API, for the CLI verbs, the demo and the tests.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::protocol::{
    BindAnswerView, BindImportView, CampaignList, CampaignView, GroupReportView, ReportView, SuppressionList,
    UploadView,
};
use crate::secret::Secret;
use crate::upstream::http::{build_client_for, read_body, PoolSettings};

/// Campaigns asked for per page when listing them all.
const LIST_PAGE: usize = 500;

fn query_escape(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What went wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer.
    #[error("cannot reach the daemon at {url}: {reason}")]
    Transport {
        /// The URL called.
        url: String,
        /// Why.
        reason: String,
    },
    /// The daemon refused the request.
    #[error("{message} ({code}{}, HTTP {status})", field.as_ref().map(|f| format!(", field {f}")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code of the answer.
        code: String,
        /// The field at fault.
        field: Option<String>,
        /// The daemon's explanation.
        message: String,
    },
    /// The answer was not what the API documents.
    #[error("unexpected answer from the daemon: {0}")]
    Decode(String),
}

/// A request body fed through a channel, so an upload streams without being held in memory.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

/// A streamed body and the sender that feeds it; dropping the sender ends the body.
pub fn channel_body(capacity: usize) -> (mpsc::Sender<Bytes>, ChannelBody) {
    let (tx, rx) = mpsc::channel(capacity);
    (tx, ChannelBody { rx })
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// Either a whole body or a streamed one.
type AnyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// The control API's client.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    token: Secret,
    http: Client<HttpsConnector<HttpConnector>, AnyBody>,
}

impl ApiClient {
    /// A client of the daemon at `base` (e.g. `http://127.0.0.1:8780`).
    pub fn new(base: &str, token: Secret) -> Result<ApiClient, ClientError> {
        let http = build_client_for(&PoolSettings::default())
            .map_err(|e| ClientError::Transport { url: base.into(), reason: e.to_string() })?;
        Ok(ApiClient { base: base.trim_end_matches('/').to_owned(), token, http })
    }

    /// `POST /v1/campaigns`.
    pub async fn create(&self, campaign: &serde_json::Value) -> Result<CampaignView, ClientError> {
        let body = serde_json::to_vec(campaign).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.call(Method::POST, "/v1/campaigns", "application/json", whole(body)).await
    }

    /// `POST /v1/campaigns/{id}/recipients` with a body held in memory.
    pub async fn upload(
        &self,
        id: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Result<UploadView, ClientError> {
        self.call(Method::POST, &format!("/v1/campaigns/{id}/recipients"), content_type, whole(body)).await
    }

    /// `POST /v1/campaigns/{id}/recipients` with a streamed body.
    pub async fn upload_stream(
        &self,
        id: &str,
        content_type: &str,
        body: ChannelBody,
    ) -> Result<UploadView, ClientError> {
        self.call(Method::POST, &format!("/v1/campaigns/{id}/recipients"), content_type, body.boxed_unsync()).await
    }

    /// `POST /v1/campaigns/{id}/{action}` with action start, pause, resume or cancel.
    pub async fn act(&self, id: &str, action: &str) -> Result<CampaignView, ClientError> {
        self.call(Method::POST, &format!("/v1/campaigns/{id}/{action}"), "application/json", whole(Vec::new())).await
    }

    /// `GET /v1/campaigns/{id}`.
    pub async fn campaign(&self, id: &str) -> Result<CampaignView, ClientError> {
        self.get(&format!("/v1/campaigns/{id}")).await
    }

    /// `GET /v1/campaigns/{id}/report`.
    pub async fn report(&self, id: &str) -> Result<ReportView, ClientError> {
        self.get(&format!("/v1/campaigns/{id}/report")).await
    }

    /// `GET /v1/groups/{group}/report`.
    pub async fn group_report(&self, group: &str) -> Result<GroupReportView, ClientError> {
        self.get(&format!("/v1/groups/{group}/report")).await
    }

    /// `GET /v1/apps/{app}/suppressions`: one page, after `after`.
    pub async fn suppressions(&self, app: &str, after: &str, limit: usize) -> Result<SuppressionList, ClientError> {
        self.get(&format!("/v1/apps/{app}/suppressions?after={after}&limit={limit}")).await
    }

    /// `PUT /v1/apps/{app}/suppressions/{user}` (`suppress`) or `DELETE` (lift it).
    pub async fn set_suppressed(&self, app: &str, user: &str, suppress: bool) -> Result<(), ClientError> {
        let method = if suppress { Method::PUT } else { Method::DELETE };
        let path = format!("/v1/apps/{app}/suppressions/{user}");
        let (status, body) = self.send(method, &path, "application/json", whole(Vec::new())).await?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(api_error(status, &body))
    }

    /// `PUT /v1/apps/{app}/cid-pn`: binds up to 50 `(cid, phone)` pairs.
    pub async fn bind_phones(&self, app: &str, pairs: &[(String, String)]) -> Result<BindAnswerView, ClientError> {
        // Written by hand to keep the pairs' order (serde_json's map would sort them).
        let mut members = Vec::with_capacity(pairs.len());
        for (c, p) in pairs {
            let c = serde_json::to_string(c).map_err(|e| ClientError::Decode(e.to_string()))?;
            let p = serde_json::to_string(p).map_err(|e| ClientError::Decode(e.to_string()))?;
            members.push(format!("{c}:{p}"));
        }
        let body = format!("{{{}}}", members.join(",")).into_bytes();
        self.call(Method::PUT, &format!("/v1/apps/{app}/cid-pn"), "application/json", whole(body)).await
    }

    /// `DELETE /v1/apps/{app}/cid-pn`: unbinds up to 50 cids.
    pub async fn unbind_phones(&self, app: &str, cids: &[String]) -> Result<BindAnswerView, ClientError> {
        let body =
            serde_json::to_vec(&serde_json::json!({ "cids": cids })).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.call(Method::DELETE, &format!("/v1/apps/{app}/cid-pn"), "application/json", whole(body)).await
    }

    /// `GET /v1/apps/{app}/cid-pn?cids=`: the masked numbers of up to 50 cids.
    pub async fn query_phones(&self, app: &str, cids: &[String]) -> Result<BindAnswerView, ClientError> {
        let list: Vec<String> = cids.iter().map(|c| query_escape(c)).collect();
        self.get(&format!("/v1/apps/{app}/cid-pn?cids={}", list.join(","))).await
    }

    /// `POST /v1/apps/{app}/cid-pn/import` with a streamed NDJSON or CSV body.
    pub async fn import_phones(
        &self,
        app: &str,
        content_type: &str,
        body: ChannelBody,
    ) -> Result<BindImportView, ClientError> {
        let path = format!("/v1/apps/{app}/cid-pn/import");
        self.call(Method::POST, &path, content_type, body.boxed_unsync()).await
    }

    /// Every campaign, following the pages of `GET /v1/campaigns` to the end.
    pub async fn list(&self) -> Result<Vec<CampaignView>, ClientError> {
        self.list_in(None).await
    }

    /// Every campaign in `state` (all when `None`), page after page.
    pub async fn list_in(&self, state: Option<&str>) -> Result<Vec<CampaignView>, ClientError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list_page(state, after.as_deref(), LIST_PAGE).await?;
            all.extend(page.campaigns);
            match page.next_after {
                // A cursor that does not move would loop forever: stop instead.
                Some(next) if after.as_deref() != Some(next.as_str()) => after = Some(next),
                _ => return Ok(all),
            }
        }
    }

    /// One page of `GET /v1/campaigns?state=&after=&limit=`.
    pub async fn list_page(
        &self,
        state: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<CampaignList, ClientError> {
        let mut path = format!("/v1/campaigns?limit={limit}");
        if let Some(s) = state {
            path.push_str(&format!("&state={}", query_escape(s)));
        }
        if let Some(a) = after {
            path.push_str(&format!("&after={}", query_escape(a)));
        }
        self.get(&path).await
    }

    /// `DELETE /v1/campaigns/{id}`.
    pub async fn delete(&self, id: &str) -> Result<(), ClientError> {
        let (status, body) =
            self.send(Method::DELETE, &format!("/v1/campaigns/{id}"), "application/json", whole(Vec::new())).await?;
        if status == 204 {
            return Ok(());
        }
        Err(api_error(status, &body))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, "application/json", whole(Vec::new())).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: AnyBody,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.send(method, path, content_type, body).await?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()));
        }
        Err(api_error(status, &bytes))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: AnyBody,
    ) -> Result<(u16, Bytes), ClientError> {
        let url = format!("{}{path}", self.base);
        let transport = |reason: String| ClientError::Transport { url: url.clone(), reason };
        let req = Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token.expose()))
            .header("content-type", content_type)
            .body(body)
            .map_err(|e| transport(e.to_string()))?;
        let resp = self.http.request(req).await.map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = read_body(resp.into_body()).await.map_err(transport)?;
        Ok((status, bytes))
    }
}

fn whole(body: impl Into<Bytes>) -> AnyBody {
    Full::new(body.into()).boxed_unsync()
}

fn api_error(status: u16, body: &[u8]) -> ClientError {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let e = &v["error"];
    ClientError::Api {
        status,
        code: e["code"].as_str().unwrap_or("unknown").to_owned(),
        field: e["field"].as_str().map(str::to_owned),
        message: e["message"].as_str().map(str::to_owned).unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    }
}
