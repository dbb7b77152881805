//! The legacy push calls as campaigns: a single push is a one-recipient `batch_single`
//! campaign, `getContentId` makes a list task (a draft that holds the message) or an app
//! campaign, each `pushMessageToList` call a part of its task (a list campaign of ≤ 1000
//! recipients), `pushMessageToApp` starts the app campaign, and a batch submit one
//! `batch_single` campaign per distinct message.
//!
//! Retries send nothing twice: a single push's `requestId`, a list call's targets and a
//! batch's `requestId` are idempotency keys (`Store::claim`) tied to the campaign they made, so
//! a repeated call finds it — on any daemon, after a restart — instead of making another; and
//! within a campaign every recipient keeps its v2 `request_id`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use super::{Cx, Refusal};
use crate::api::campaigns::{change_state, get, validate};
use crate::api::upload::upload_recipients;
use crate::clock::now_ms;
use crate::domain::campaign::{parse_legacy_id, CreateCampaign, CreateSettings, LegacyOrigin};
use crate::domain::legacy::{audience_of, content_settings_of, message_of, settings_of, sms_fallback_of};
use crate::domain::message::MessageTemplate;
use crate::domain::recipient::{parse_text_line, Recipient};
use crate::domain::{Action, CampaignSpec, CampaignState, CompactCid, FieldError, Mode};
use crate::store::CampaignRecord;
use crate::wire::getui::MAX_LIST_CIDS;
use crate::wire::getui_legacy::request::{
    AppPushRequest, BatchRequest, ContentIdRequest, ListRequest, PushFields, SingleRequest,
};
use crate::wire::getui_legacy::{decode_client_data, decode_single_datas, parse_batch_item, read_template};
use crate::wire::getui_legacy::{LegacySms, LegacyTemplate};

/// Longest idempotency id (`requestId`, `batchId`) taken as a key.
const MAX_REQUEST_ID: usize = 128;
/// How often a single push looks whether its campaign was sent.
const SENT_POLL: std::time::Duration = std::time::Duration::from_millis(20);
/// The status of a push recorded durably and sent after the answer.
const ASYNC: &str = "successed_async";

/// What became of a push's `smsInfo`.
enum SmsNote {
    /// No `smsInfo`.
    None,
    /// The SMS fallback is part of the campaign.
    Accepted,
    /// Refused; the push goes out without it, as the seed says (`smsResult: error`).
    Refused(String),
}

impl SmsNote {
    fn add_to(&self, answer: &mut Value) {
        match self {
            SmsNote::None => {}
            SmsNote::Accepted => answer["smsResult"] = json!("accept"),
            SmsNote::Refused(msg) => {
                answer["smsResult"] = json!("error");
                answer["smsResultMsg"] = json!(msg);
            }
        }
    }
}

/// Decodes a push's `clientData`, refusing one made for another app.
fn template_of(cx: &Cx<'_>, push: &PushFields) -> Result<LegacyTemplate, Refusal> {
    let t = read_template(&decode_client_data(&push.client_data)?, &push.transmission_content)?;
    let foreign = |ours: &str, theirs: &str| !theirs.is_empty() && theirs != ours;
    if foreign(&cx.app.app_key, &t.app_key) || foreign(&cx.app.app_id, &t.app_id) {
        return Err(Refusal::new(
            "AppidNoMatchAppKey",
            "the message (clientData) was made for another app than the AppKey that sends it",
        ));
    }
    Ok(t)
}

/// A campaign request for a legacy message (its `message` set), validated as `/v1` validates:
/// with the SMS fallback of `sms` when that is valid, else without it (noted).
fn spec_of(
    cx: &Cx<'_>,
    mut request: CreateCampaign,
    sms: Option<&LegacySms>,
    origin: LegacyOrigin,
) -> Result<(CampaignSpec, SmsNote), Refusal> {
    let note = match sms {
        None => SmsNote::None,
        Some(sms) => match sms_fallback(cx, sms) {
            Ok(f) => {
                request.settings.sms_fallback = Some(f);
                SmsNote::Accepted
            }
            Err(e) => SmsNote::Refused(e.message),
        },
    };
    let (mut spec, note) = match validate(cx.state, request.clone()) {
        Ok(spec) => (spec, note),
        Err(e) if e.field.starts_with("settings.sms_fallback") => {
            request.settings.sms_fallback = None;
            (validate(cx.state, request).map_err(refused)?, SmsNote::Refused(e.message))
        }
        Err(e) => return Err(refused(e)),
    };
    spec.legacy = Some(origin);
    Ok((spec, note))
}

/// A field error as a legacy refusal.
fn refused(e: FieldError) -> Refusal {
    Refusal::new("Error", format!("{}: {}", e.field, e.message))
}

/// A campaign request with the message of `t`.
fn request_for(
    cx: &Cx<'_>,
    name: String,
    mode: Mode,
    settings: CreateSettings,
    t: &LegacyTemplate,
) -> Result<CreateCampaign, Refusal> {
    let mut r = request(cx, name, mode, settings);
    r.message = message_of(t).map_err(refused)?;
    Ok(r)
}

fn sms_fallback(cx: &Cx<'_>, sms: &LegacySms) -> Result<crate::domain::sms::SmsFallback, FieldError> {
    let configured = cx.state.sms.get(&cx.app.name).is_some_and(|f| f.templates.contains_key(&sms.template_id));
    if !configured {
        // The seed's wording for an unknown template is 模板不存在.
        return Err(FieldError::new(
            "smsInfo.smsTemplateId",
            format!(
                "template {:?} does not exist (模板不存在): configure it in [[apps.{}.sms.templates]]",
                sms.template_id, cx.app.name
            ),
        ));
    }
    sms_fallback_of(sms, cx.app.sms_vars.get(&sms.template_id).map(Vec::as_slice))
}

fn request(cx: &Cx<'_>, name: String, mode: Mode, settings: CreateSettings) -> CreateCampaign {
    CreateCampaign {
        name,
        app: cx.app.name.clone(),
        channel: None,
        mode,
        message: Default::default(),
        settings,
        audience: None,
    }
}

fn origin(call: &str, task: Option<u64>) -> LegacyOrigin {
    LegacyOrigin { call: call.into(), task }
}

/// The idempotency key of a call: `requestId` as the SDK sent it, scoped to the app.
fn key_of(cx: &Cx<'_>, call: &str, id: Option<&str>) -> Result<Option<String>, Refusal> {
    match id.map(str::trim).filter(|id| !id.is_empty()) {
        None => Ok(None),
        Some(id) if id.len() > MAX_REQUEST_ID => {
            Err(Refusal::new("Error", format!("requestId is longer than {MAX_REQUEST_ID} characters")))
        }
        Some(id) => Ok(Some(format!("legacy:{}:{call}:{id}", cx.app.name))),
    }
}

/// The campaign tied to `key`, or a new one from `spec` tied to it. Of two calls making one at
/// once, one wins; the other's draft is deleted and it gets the winner's.
async fn claimed_or_made(cx: &Cx<'_>, key: Option<String>, spec: CampaignSpec) -> Result<CampaignRecord, Refusal> {
    let store = &cx.state.store;
    if let Some(k) = &key {
        if let Some(id) = store.claimed(k).await? {
            return existing(cx, id).await;
        }
    }
    let rec = store.create(spec, now_ms()).await?;
    let Some(k) = key else { return Ok(rec) };
    let winner = store.claim(&k, rec.id).await?;
    if winner == rec.id {
        return Ok(rec);
    }
    if let Err(e) = store.delete(rec.id).await {
        tracing::warn!(campaign = rec.id, error = %e, "cannot delete the draft of a legacy call that lost its key");
    }
    existing(cx, winner).await
}

async fn existing(cx: &Cx<'_>, id: u64) -> Result<CampaignRecord, Refusal> {
    get(cx.state, id).await.map_err(|_| {
        Refusal::new("Error", format!("the campaign {id} this call made before no longer exists (expired)"))
    })
}

/// Uploads `recipients` to a draft that holds none yet and starts it. Idempotent: a repeated
/// call finds them uploaded, or the campaign started.
async fn fill_and_start(
    cx: &Cx<'_>,
    mut rec: CampaignRecord,
    recipients: Vec<Recipient<'static>>,
) -> Result<CampaignRecord, Refusal> {
    if rec.state == CampaignState::Draft && rec.recipients == 0 && !recipients.is_empty() {
        if let Err(e) = upload_recipients(cx.state, &rec, recipients).await {
            // Another call of the same key may have uploaded them meanwhile.
            rec = get(cx.state, rec.id).await?;
            if rec.recipients == 0 {
                return Err(e.into());
            }
        }
    }
    if rec.state == CampaignState::Draft {
        if let Err(e) = change_state(cx.state, rec.id, Action::Start).await {
            let now = get(cx.state, rec.id).await?;
            if now.state == CampaignState::Draft {
                return Err(e.into());
            }
        }
    }
    Ok(get(cx.state, rec.id).await?)
}

/// `pushMessageToSingleAction`: answers once the push was sent (or after `single_wait`).
pub(super) async fn single(cx: &Cx<'_>, req: SingleRequest) -> Result<Value, Refusal> {
    cx.check_app_id(Some(&req.app_id))?;
    let recipient = single_target(&req)?;
    let t = template_of(cx, &req.push)?;
    let name = format!("legacy single to {}", req.client_id.trim());
    let r = request_for(cx, name, Mode::BatchSingle, settings_of(&req.push, &t), &t)?;
    let (spec, note) = spec_of(cx, r, t.sms.as_ref(), origin("single", None))?;
    let key = key_of(cx, "single", req.request_id.as_deref())?;
    let rec = claimed_or_made(cx, key, spec).await?;
    let rec = fill_and_start(cx, rec, vec![recipient]).await?;
    let (rec, status) = wait_sent(cx, rec).await?;
    let task_id = legacy_id(&rec);
    let mut answer = match status {
        Sent::Status(s) => json!({"result": "ok", "taskId": task_id, "status": s}),
        Sent::Failed(result) => json!({"result": result, "taskId": task_id}),
        Sent::Stopped(why) => json!({"result": "Error", "taskId": task_id, "msg": why}),
    };
    note.add_to(&mut answer);
    Ok(answer)
}

fn single_target(req: &SingleRequest) -> Result<Recipient<'static>, Refusal> {
    let cid = req.client_id.trim();
    if cid.is_empty() {
        return Err(if req.alias.trim().is_empty() {
            Refusal::new("TargetListIsNullOrSize0", "give the clientId to push to")
        } else {
            Refusal::new("AliasNotBind", "alias pushes are not supported: push to the device's clientId")
        });
    }
    parse_text_line(cid).map_err(|e| Refusal::new("TokenMD5Error", e))
}

/// How a sent single push ended.
enum Sent {
    /// Reached the upstream: its per-cid status (or `successed_async` while still waiting).
    Status(&'static str),
    /// Failed with this result name.
    Failed(&'static str),
    /// The campaign was cancelled or failed before it was sent.
    Stopped(String),
}

/// Waits (up to `single_wait`) until a one-recipient campaign has its result.
async fn wait_sent(cx: &Cx<'_>, rec: CampaignRecord) -> Result<(CampaignRecord, Sent), Refusal> {
    let deadline = Instant::now() + cx.ingress.single_wait;
    let mut rec = rec;
    loop {
        let progress = cx.state.store.progress(rec.id).await?;
        if let Some((name, _)) = progress.counts.0.iter().find(|(_, n)| **n > 0) {
            let sent = if name.is_success() { Sent::Status(name.as_str()) } else { Sent::Failed(name.as_str()) };
            return Ok((rec, sent));
        }
        if rec.state.is_final() {
            let why = rec.failure.clone().unwrap_or_else(|| format!("the push was {}", rec.state.as_str()));
            return Ok((rec, Sent::Stopped(why)));
        }
        if Instant::now() >= deadline {
            return Ok((rec, Sent::Status(ASYNC)));
        }
        tokio::time::sleep(SENT_POLL).await;
        rec = get(cx.state, rec.id).await?;
    }
}

fn legacy_id(rec: &CampaignRecord) -> String {
    rec.spec.legacy.as_ref().map_or_else(|| rec.id.to_string(), |l| l.legacy_id(rec.id))
}

/// `getContentIdAction`: a list task (contentType 1) or an app campaign (2), as a draft.
pub(super) async fn content(cx: &Cx<'_>, req: ContentIdRequest) -> Result<Value, Refusal> {
    let t = template_of(cx, &req.push)?;
    let group = req.task_group_name.as_deref().map(str::trim).filter(|g| !g.is_empty());
    let label = group.map(|g| format!(" ({g})")).unwrap_or_default();
    let settings = content_settings_of(&req, &t);
    let (spec, note) = if req.content_type == 2 {
        if !req.app_id_list.is_empty() && !req.app_id_list.contains(&cx.app.app_id) {
            return Err(Refusal::new("AppidError", "appIdList does not name this AppKey's AppId"));
        }
        let mut r = request_for(cx, format!("legacy app push{label}"), Mode::App, settings, &t)?;
        r.audience = Some(audience_of(&req).map_err(refused)?);
        spec_of(cx, r, t.sms.as_ref(), origin("app", None))?
    } else {
        let r = request_for(cx, format!("legacy list task{label}"), Mode::List, settings, &t)?;
        spec_of(cx, r, t.sms.as_ref(), origin("content", None))?
    };
    let rec = cx.state.store.create(spec, now_ms()).await?;
    tracing::info!(campaign = rec.id, app = cx.app.name, "legacy task created");
    let mut answer = json!({"result": "ok", "contentId": legacy_id(&rec)});
    note.add_to(&mut answer);
    Ok(answer)
}

/// A task or app campaign named by a legacy id, of this app and made by that call.
async fn task_of(cx: &Cx<'_>, legacy_id: &str, call: &str) -> Result<CampaignRecord, Refusal> {
    let missing = || Refusal::new("NullMsgCommon", format!("no task {legacy_id:?}: get a contentId first"));
    let id = parse_legacy_id(legacy_id).ok_or_else(missing)?;
    let rec = get(cx.state, id).await.map_err(|_| missing())?;
    let ours = rec.spec.app == cx.app.name && rec.spec.legacy.as_ref().is_some_and(|l| l.call == call);
    if !ours {
        return Err(missing());
    }
    if rec.state == CampaignState::Cancelled {
        return Err(Refusal::new("TaskIdHasBeenCanceled", format!("task {legacy_id} was stopped")));
    }
    Ok(rec)
}

/// `pushMessageToListAction`: up to 1000 targets, sent as a part of the task; answers once
/// they are recorded (sending follows, paced like any campaign).
pub(super) async fn list(cx: &Cx<'_>, req: ListRequest) -> Result<Value, Refusal> {
    cx.check_app_id(Some(&req.app_id))?;
    let task = task_of(cx, &req.content_id, "content").await?;
    let targets = req.client_id_list.len() + req.alias_list.len();
    if targets == 0 {
        return Err(Refusal::new("TargetListIsNullOrSize0", "clientIdList is empty"));
    }
    if targets > MAX_LIST_CIDS {
        return Err(Refusal::new("target overLimit", format!("at most {MAX_LIST_CIDS} targets a call")));
    }
    let mut details = Map::new();
    let mut valid = Vec::with_capacity(req.client_id_list.len());
    for cid in &req.client_id_list {
        match parse_text_line(cid) {
            Ok(r) => {
                details.insert(cid.clone(), json!(ASYNC));
                valid.push(r);
            }
            Err(_) => {
                details.insert(cid.clone(), json!("TokenMD5Error"));
            }
        }
    }
    for alias in &req.alias_list {
        details.insert(alias.clone(), json!("AliasNotBind"));
    }
    if valid.is_empty() {
        return Err(Refusal::new("TokenMD5Error", "no valid clientId among the targets"));
    }
    let mut spec = task.spec.clone();
    spec.name = format!("{} part", task.spec.name);
    spec.legacy = Some(origin("list", Some(task.id)));
    let key = format!("legacy:{}:list:{}:{}", cx.app.name, task.id, digest(req.client_id_list.iter()));
    let part = claimed_or_made(cx, Some(key), spec).await?;
    fill_and_start(cx, part, valid).await?;
    let mut answer = json!({"result": "ok", "contentId": legacy_id(&task)});
    if req.need_details {
        answer["details"] = Value::Object(details);
    }
    Ok(answer)
}

/// md5 of strings, each ended by a newline: the key of a call's targets.
fn digest<'a>(parts: impl Iterator<Item = &'a String>) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// `pushMessageToAppAction`: starts the app campaign made by `getContentId` (a repeated call
/// finds it started).
pub(super) async fn app(cx: &Cx<'_>, req: AppPushRequest) -> Result<Value, Refusal> {
    let rec = task_of(cx, &req.content_id, "app").await?;
    fill_and_start(cx, rec.clone(), Vec::new()).await?;
    Ok(json!({"result": "ok", "contentId": legacy_id(&rec)}))
}

/// One batch item, read and checked on its own as a campaign of its own would be.
struct Ready {
    recipient: Recipient<'static>,
    message: MessageTemplate,
    settings: CreateSettings,
    sms: Option<LegacySms>,
    /// Everything but the texts: items of one shape can share a campaign.
    shape: String,
}

/// Items of one shape, in order, each cid at most once: one campaign.
struct Group {
    items: Vec<usize>,
}

/// `pushMessageToSingleBatchAction`: the items become as few `batch_single` campaigns as
/// their messages allow (texts that differ become per-recipient variables); answers per
/// seqId once they are recorded. `retry()` resends the same body, which finds the campaigns
/// its `requestId` made.
pub(super) async fn batch(cx: &Cx<'_>, req: BatchRequest) -> Result<Value, Refusal> {
    let batch = decode_single_datas(&req.single_datas)?;
    let key = key_of(cx, "batch", req.request_id.as_deref().or(batch.batch_id.as_deref()))?;
    let items: Vec<(String, Result<Ready, Refusal>)> = batch
        .batch_item
        .iter()
        .enumerate()
        .map(|(i, item)| (item.seq_id.unwrap_or(i as i32).to_string(), read_item(cx, item)))
        .collect();
    let mut answers: Vec<Value> =
        items.iter().map(|(_, r)| r.as_ref().err().map_or(Value::Null, Refusal::answer)).collect();
    for (n, group) in group_items(&items).into_iter().enumerate() {
        let ready: Vec<&Ready> = group.items.iter().filter_map(|i| items[*i].1.as_ref().ok()).collect();
        let key = key.as_ref().map(|k| format!("{k}:{n}"));
        for (at, made) in group.items.iter().zip(send_group(cx, key, &ready).await) {
            answers[*at] = match made {
                Ok(task_id) => json!({"result": "ok", "taskId": task_id, "status": ASYNC}),
                Err(r) => r.answer(),
            };
        }
    }
    let info: Map<String, Value> = items.into_iter().map(|(seq, _)| seq).zip(answers).collect();
    Ok(json!({"result": "ok", "info": info}))
}

fn read_item(cx: &Cx<'_>, item: &crate::wire::getui_legacy::proto::SingleBatchItem) -> Result<Ready, Refusal> {
    let single = parse_batch_item(item)?;
    cx.check_app_id(Some(&single.app_id))?;
    let recipient = single_target(&single)?;
    let t = template_of(cx, &single.push)?;
    let message = message_of(&t).map_err(refused)?;
    let settings = settings_of(&single.push, &t);
    let mut r = request(cx, "legacy batch item".into(), Mode::BatchSingle, settings.clone());
    r.message = message.clone();
    spec_of(cx, r, t.sms.as_ref(), origin("batch", None))?;
    let mut blank = message.clone();
    blank.texts_mut().into_iter().for_each(String::clear);
    let shape = serde_json::to_string(&(&blank, &settings)).unwrap_or_default() + &format!("{:?}", t.sms);
    Ok(Ready { recipient, message, settings, sms: t.sms, shape })
}

/// Groups the good items by shape, in the order they first appear; a cid met again within a
/// shape opens another group, so nobody is dropped as a duplicate.
fn group_items(items: &[(String, Result<Ready, Refusal>)]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut by_key: HashMap<(String, usize), usize> = HashMap::new();
    let mut seen: HashMap<(String, CompactCid), usize> = HashMap::new();
    for (i, (_, item)) in items.iter().enumerate() {
        let Ok(r) = item else { continue };
        let nth = seen.entry((r.shape.clone(), r.recipient.cid)).or_insert(0);
        let key = (r.shape.clone(), *nth);
        *nth += 1;
        let next = groups.len();
        let g = *by_key.entry(key).or_insert(next);
        if g == next {
            groups.push(Group { items: Vec::new() });
        }
        groups[g].items.push(i);
    }
    groups
}

/// The variable that carries text field `j` of a batch's messages.
fn text_var(j: usize) -> String {
    format!("legacy_text_{j:02}")
}

/// One message for items of one shape: the texts they share stay, the others become
/// variables that each recipient carries.
fn merged(items: &[&Ready]) -> (MessageTemplate, Vec<Recipient<'static>>) {
    let texts: Vec<Vec<String>> =
        items.iter().map(|r| r.message.clone().texts_mut().into_iter().map(|t| t.clone()).collect()).collect();
    let first = &texts[0];
    let differing: Vec<usize> = (0..first.len()).filter(|j| texts.iter().any(|t| t.get(*j) != first.get(*j))).collect();
    let mut message = items[0].message.clone();
    for (j, slot) in message.texts_mut().into_iter().enumerate() {
        if differing.contains(&j) {
            *slot = format!("${{{}}}", text_var(j));
        }
    }
    let recipients = items
        .iter()
        .zip(&texts)
        .map(|(r, t)| {
            let mut vars: Vec<(Cow<'static, str>, Cow<'static, str>)> =
                differing.iter().map(|j| (text_var(*j).into(), t[*j].clone().into())).collect();
            vars.sort();
            Recipient { cid: r.recipient.cid, vars, user: None }
        })
        .collect();
    (message, recipients)
}

/// Sends items of one shape as one campaign (made or found by `key`); when the merged
/// message does not validate (a text turned variable where none may be), each item alone.
/// Answers the taskId, or the refusal, of each item.
async fn send_group(cx: &Cx<'_>, key: Option<String>, items: &[&Ready]) -> Vec<Result<String, Refusal>> {
    let (message, recipients) = merged(items);
    match batch_campaign(cx, key.clone(), items[0], message, recipients).await {
        Ok(task_id) => return items.iter().map(|_| Ok(task_id.clone())).collect(),
        Err(e) if items.len() == 1 => return vec![Err(e)],
        Err(_) => {}
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, r) in items.iter().enumerate() {
        let key = key.as_ref().map(|k| format!("{k}.{i}"));
        out.push(batch_campaign(cx, key, r, r.message.clone(), vec![r.recipient.clone()]).await);
    }
    out
}

async fn batch_campaign(
    cx: &Cx<'_>,
    key: Option<String>,
    first: &Ready,
    message: MessageTemplate,
    recipients: Vec<Recipient<'static>>,
) -> Result<String, Refusal> {
    let mut r = request(cx, format!("legacy batch of {}", recipients.len()), Mode::BatchSingle, first.settings.clone());
    r.message = message;
    let (spec, _) = spec_of(cx, r, first.sms.as_ref(), origin("batch", None))?;
    let rec = claimed_or_made(cx, key, spec).await?;
    let rec = fill_and_start(cx, rec, recipients).await?;
    Ok(legacy_id(&rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(cid: u8, message: serde_json::Value) -> Ready {
        let message: MessageTemplate = serde_json::from_value(message).unwrap();
        let mut blank = message.clone();
        blank.texts_mut().into_iter().for_each(String::clear);
        Ready {
            recipient: Recipient { cid: CompactCid([cid; 16]), vars: Vec::new(), user: None },
            shape: serde_json::to_string(&blank).unwrap(),
            message,
            settings: CreateSettings::default(),
            sms: None,
        }
    }

    #[test]
    fn a_merged_message_gives_each_recipient_its_own_texts() {
        let items = [
            ready(
                1,
                json!({"notification": {"title": "Sale", "body": "Hi ${name}, one", "click_type": "url", "url": "https://a"}}),
            ),
            ready(
                2,
                json!({"notification": {"title": "Sale", "body": "two", "click_type": "url", "url": "https://a"}}),
            ),
            ready(3, json!({"notification": {"title": "Sale", "body": "三", "click_type": "url", "url": "https://a"}})),
        ];
        let refs: Vec<&Ready> = items.iter().collect();
        let (message, recipients) = merged(&refs);
        let n = message.notification.as_ref().unwrap();
        assert_eq!((n.title.as_str(), n.url.as_deref()), ("Sale", Some("https://a")), "shared texts stay");
        assert_eq!(message.variables().len(), 1, "only the body differs");
        for (item, r) in items.iter().zip(&recipients) {
            let vars = |name: &str| r.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref());
            let copy = message.personalize(&vars);
            // A `${name}` in a legacy text is text, not a variable: values are not substituted again.
            assert_eq!(copy.notification.unwrap().body, item.message.notification.as_ref().unwrap().body);
            assert_eq!(r.cid, item.recipient.cid);
        }
    }

    #[test]
    fn a_cid_met_again_within_a_shape_opens_another_group() {
        let t = |cid, text: &str| ("".to_owned(), Ok(ready(cid, json!({"transmission": text}))));
        let items = vec![
            t(1, "a"),
            t(2, "b"),
            ("".to_owned(), Err(Refusal::new("Error", "bad"))),
            t(1, "c"),
            ("".to_owned(), Ok(ready(4, json!({"notification": {"title": "x", "body": "y"}})))),
            t(3, "d"),
        ];
        let groups: Vec<Vec<usize>> = group_items(&items).into_iter().map(|g| g.items).collect();
        assert_eq!(groups, [vec![0, 1, 5], vec![3], vec![4]]);
    }
}
