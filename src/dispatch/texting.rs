//! SMS fallback's shell (issue 13): keeps each pushed chunk's texting state when its ack is
//! due, and runs the texting loop, which takes the chunks whose texts are due, plans them once
//! (receipts and bindings read from the store), and sends their calls one by one through the
//! app's SMS gateway, each marked in flight durably before it leaves. What to decide at each
//! step is [`decide::texting`]'s; this file reads, calls, stores and counts.
//!
//! Ownership and shutdown: one loop task, spawned and awaited by [`super::Dispatcher::run`]; it
//! stops between calls when the daemon's token is cancelled (a call under way finishes, so its
//! answer is kept).

use std::time::Duration;

use futures_util::StreamExt;

use super::decide::retry::backoff;
use super::decide::texting::{plan, NumberResult, PlanFacts, PlannedCall, PushAnswer, TextingPlan, TextingState};
use super::{AppSender, CampaignRun, Context, SmsGateway};
use crate::clock::now_ms;
use crate::domain::sms::SmsFallback;
use crate::domain::texting::SmsTally;
use crate::domain::{CompactCid, Replay};
use crate::seal::aad;
use crate::store::{CampaignRecord, LeaseOutcome, ReceiptKey, StoreError, TextingEntry};
use crate::upstream::sms::{number_outcome, NumberOutcome, SendSms, SmsError};
use crate::upstream::{AnswerClass, ProviderError};
use crate::wire::tencent_sms::codes::CodeClass;

/// How often the loop looks for due texts.
const PASS_INTERVAL: Duration = Duration::from_millis(250);
/// Most chunks one pass takes.
const DUE_PER_PASS: usize = 64;
/// Chunks texted at once.
const CHUNKS_AT_ONCE: usize = 8;

/// Keeps a pushed chunk's texting state, due `after_ms` from now. False when the store
/// failed: the chunk is then not acknowledged, and is sent again later.
pub(super) async fn stage(ctx: &Context, run: &CampaignRun, seq: u64, pushed: Vec<PushAnswer>) -> bool {
    let Some(fallback) = &run.spec.settings.sms_fallback else { return true };
    let state = TextingState::pushed(pushed);
    let Ok(bytes) = rmp_serde::to_vec_named(&state) else { return false };
    let due_ms = now_ms().saturating_add(fallback.after_ms as i64);
    let entry = TextingEntry { campaign: run.id, seq, due_ms, state: bytes, revision: 0 };
    match ctx.store.texting_stage(entry).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(campaign = run.id, seq, error = %e, "cannot keep a chunk's texting state; it will be sent again");
            false
        }
    }
}

/// Texts due chunks until the daemon stops.
pub(super) async fn texting_loop(ctx: std::sync::Arc<Context>) {
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(PASS_INTERVAL) => {}
        }
        let due = match ctx.store.texting_due(now_ms(), DUE_PER_PASS).await {
            Ok(d) if d.is_empty() => continue,
            Ok(d) => {
                tracing::debug!(chunks = d.len(), "texts due");
                d
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the due texts");
                continue;
            }
        };
        // A few chunks at once: a campaign whose parameters use `${vars}` makes one call per
        // recipient, and calls mostly wait for the gateway.
        let texting = futures_util::stream::iter(due).for_each_concurrent(CHUNKS_AT_ONCE, |entry| {
            let ctx = &ctx;
            async move {
                if ctx.shutdown.is_cancelled() {
                    return;
                }
                let (campaign, seq) = (entry.campaign, entry.seq);
                if let Err(e) = text_chunk(ctx, entry).await {
                    tracing::warn!(campaign, seq, error = %e, "texting a chunk failed; it is tried again");
                }
            }
        });
        texting.await;
    }
}

/// Sets a texting's lease apart from its chunk's push lease (same campaign and seq).
const TEXTING_LEASE: u64 = 1 << 63;

/// Moves one due chunk's texting as far as it can go now, under a lease so that of several
/// daemons one texts it: a call marked in flight is then either this daemon's own from before
/// a restart or a dead daemon's (its lease expired), never one still under way elsewhere.
async fn text_chunk(ctx: &Context, entry: TextingEntry) -> Result<(), StoreError> {
    let (campaign, lease_seq) = (entry.campaign, entry.seq | TEXTING_LEASE);
    // `Done` here only means the campaign is gone, which the texting itself handles.
    if ctx.store.lease_chunk(campaign, lease_seq, &ctx.member, ctx.lease_ms()).await? == LeaseOutcome::Held {
        return Ok(());
    }
    let result = text_leased(ctx, entry).await;
    if let Err(e) = ctx.store.release_chunk(campaign, lease_seq, &ctx.member).await {
        tracing::debug!(campaign, error = %e, "cannot give a texting lease back; it expires");
    }
    result
}

/// [`text_chunk`] once the lease is this daemon's.
async fn text_leased(ctx: &Context, mut entry: TextingEntry) -> Result<(), StoreError> {
    let Some(rec) = ctx.store.get(entry.campaign).await? else {
        return ctx.store.texting_finish(entry, SmsTally::default()).await; // deleted meanwhile
    };
    let Some(fallback) = rec.spec.settings.sms_fallback.clone() else {
        return ctx.store.texting_finish(entry, SmsTally::default()).await;
    };
    let Some(gateway) = ctx.apps.get(&rec.spec.app).and_then(|a| a.sms.as_ref().map(|g| (a, g))) else {
        tracing::debug!(campaign = rec.id, app = %rec.spec.app, "texts wait: the app has no SMS gateway configured");
        return Ok(());
    };
    let (app, gateway) = gateway;
    if !gateway.window_open(now_ms() / 1000) {
        tracing::debug!(campaign = rec.id, "texts wait for the marketing window");
        return Ok(());
    }
    let mut state: TextingState = rmp_serde::from_slice(&entry.state).map_err(|e| StoreError::Codec(e.to_string()))?;
    let mut plan = match state.plan.take() {
        Some(p) => p,
        None => {
            let Some(p) = make_plan(ctx, &rec, gateway, &fallback, &state).await? else { return Ok(()) };
            save(ctx, &mut entry, &p).await?;
            p
        }
    };
    let mut resumed = false;
    if plan.inflight {
        let replayed = plan.settle_inflight(rec.spec.settings.replay);
        if replayed > 0 {
            tracing::warn!(campaign = rec.id, replayed, "texting again a call whose answer was lost at the last stop");
            resumed = true;
        }
        save(ctx, &mut entry, &plan).await?;
    }
    tracing::debug!(campaign = rec.id, seq = entry.seq, calls = plan.calls.len(), next = plan.next, "texting a chunk");
    send_calls(ctx, app, gateway, &rec, &mut entry, &mut plan, resumed).await?;
    if plan.is_done() {
        count(ctx, &app.name, &plan.tally);
        let mut tally = plan.tally;
        tally.chunks_done = 1;
        ctx.store.texting_finish(entry, tally).await?;
    }
    Ok(())
}

/// Decides the chunk's texts from its receipts and bindings; `None` when the template is no
/// longer configured (the texts wait for it).
async fn make_plan(
    ctx: &Context,
    rec: &CampaignRecord,
    gateway: &SmsGateway,
    fallback: &SmsFallback,
    state: &TextingState,
) -> Result<Option<TextingPlan>, StoreError> {
    let Some(template_text) = gateway.templates.get(&fallback.template_id) else {
        tracing::error!(campaign = rec.id, template = %fallback.template_id, "the SMS template is no longer configured; texts wait");
        return Ok(None);
    };
    let app = rec.spec.app.as_str();
    let keys = state.receipt_keys().map(|(taskid, cid)| ReceiptKey { taskid: taskid.to_owned(), cid }).collect();
    let receipts = ctx.store.receipt_marks(app, keys).await?;
    let numbers = ctx.store.phones_of(app, state.unanswered()).await?;
    let facts = PlanFacts {
        fallback,
        template_text,
        sign_name: &gateway.sign_name,
        stopped: rec.sms_stopped,
        receipts: &receipts,
        numbers: &numbers,
    };
    Ok(Some(plan(state, &facts)))
}

/// Sends the plan's calls from `next` on, keeping the state after each step. Returns early
/// (the plan not done) when the window closes, the daemon stops or the campaign's texts are
/// stopped.
async fn send_calls(
    ctx: &Context,
    app: &AppSender,
    gateway: &SmsGateway,
    rec: &CampaignRecord,
    entry: &mut TextingEntry,
    plan: &mut TextingPlan,
    mut resumed: bool,
) -> Result<(), StoreError> {
    while !plan.is_done() {
        if ctx.shutdown.is_cancelled() || !gateway.window_open(now_ms() / 1000) {
            return Ok(());
        }
        if stopped(ctx, rec.id).await? {
            plan.stop();
            return save(ctx, entry, plan).await;
        }
        // The lease is renewed before each call, so it never runs out while a call is out.
        let lease_seq = entry.seq | TEXTING_LEASE;
        match ctx.store.lease_chunk(rec.id, lease_seq, &ctx.member, ctx.lease_ms()).await? {
            LeaseOutcome::Taken | LeaseOutcome::TakenOver => {}
            LeaseOutcome::Held | LeaseOutcome::Done => return Ok(()),
        }
        let call = plan.calls[plan.next].clone();
        let (numbers, unreadable) = open_numbers(gateway, &app.name, &call);
        if !unreadable.is_empty() {
            plan.drop_unreadable(&unreadable);
        }
        plan.begin_call();
        save(ctx, entry, plan).await?;
        let mut pause = None;
        match send_call(ctx, gateway, rec, &call.params, numbers, plan).await {
            CallEnd::Answered { results, resent } => {
                let kept = plan.answered(results, resent || resumed);
                if !kept.serials.is_empty() {
                    ctx.store.note_sms_serials(&app.name, rec.id, kept.serials).await?;
                }
                if kept.window {
                    tracing::warn!(
                        campaign = rec.id,
                        "the SMS gateway refused numbers outside its marketing window; they wait"
                    );
                    gateway.refused_for_window(now_ms() / 1000);
                } else if kept.again > 0 {
                    // Refused for now: planned again at the plan's end, sent after a pause.
                    let retries = plan.calls.last().map_or(1, |c| u32::from(c.retries));
                    pause = Some(backoff(ctx.policy.base, ctx.policy.cap, retries, fastrand::f64()));
                }
            }
            CallEnd::Failed(code) => plan.call_failed(code.as_deref()),
            CallEnd::NotSent => {
                plan.inflight = false;
                return save(ctx, entry, plan).await;
            }
        }
        // Only the first call after a restart can be the one that was in flight.
        resumed = false;
        save(ctx, entry, plan).await?;
        if let Some(wait) = pause {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
    Ok(())
}

/// True when `sms/stop` was called for the campaign since the plan was read.
async fn stopped(ctx: &Context, id: u64) -> Result<bool, StoreError> {
    Ok(ctx.store.get(id).await?.is_some_and(|r| r.sms_stopped))
}

/// The call's numbers in clear, and the positions of those that would not open.
fn open_numbers(gateway: &SmsGateway, app: &str, call: &PlannedCall) -> (Vec<String>, Vec<usize>) {
    let mut numbers = Vec::with_capacity(call.numbers.len());
    let mut unreadable = Vec::new();
    for (i, n) in call.numbers.iter().enumerate() {
        let opened = gateway.seal.as_ref().and_then(|key| {
            let cid = CompactCid(n.cid);
            let mut buf = [0u8; 32];
            let bytes = key.open(&n.sealed, &aad(&[app, cid.encode(&mut buf)])).ok()?;
            String::from_utf8(bytes).ok()
        });
        match opened {
            Some(e164) => numbers.push(e164),
            None => unreadable.push(i),
        }
    }
    (numbers, unreadable)
}

/// How one call ended.
enum CallEnd {
    /// The gateway answered, one result per number; `resent` when this call had gone out
    /// before without an answer.
    Answered { results: Vec<NumberResult>, resent: bool },
    /// Failed for good: with the code, or `None` when it may have been sent (`at_most_once`).
    Failed(Option<String>),
    /// Surely not sent (the marketing window, the daemon stopping before it left): try later.
    NotSent,
}

/// Sends one call, retrying what the gateway surely did not send, and, under
/// `at_least_once`, what it may have sent (counted `replayed`).
async fn send_call(
    ctx: &Context,
    gateway: &SmsGateway,
    rec: &CampaignRecord,
    params: &[String],
    numbers: Vec<String>,
    plan: &mut TextingPlan,
) -> CallEnd {
    if numbers.is_empty() {
        return CallEnd::Answered { results: Vec::new(), resent: false };
    }
    let Some(fallback) = &rec.spec.settings.sms_fallback else { return CallEnd::Failed(Some("NoFallback".into())) };
    let request = SendSms {
        phone_number_set: numbers,
        sms_sdk_app_id: gateway.client.sdk_app_id().to_owned(),
        sign_name: gateway.sign_name.clone(),
        template_id: fallback.template_id.clone(),
        template_param_set: params.to_vec(),
        session_context: Some(format!("campaign {}", rec.id)),
    };
    let mut attempt = 0;
    let mut resent = false;
    loop {
        attempt += 1;
        let err = match gateway.client.send_sms(&request).await {
            Ok(statuses) => return CallEnd::Answered { results: results(&request.phone_number_set, statuses), resent },
            Err(e) => e,
        };
        if err.code_class() == Some(CodeClass::WaitForWindow) {
            tracing::warn!(campaign = rec.id, "the SMS gateway refuses texts outside its marketing window; they wait");
            gateway.refused_for_window(now_ms() / 1000);
            return CallEnd::NotSent;
        }
        let last = attempt >= ctx.policy.max_attempts;
        if err.maybe_delivered() {
            if rec.spec.settings.replay == Replay::AtMostOnce {
                tracing::warn!(campaign = rec.id, error = %err, "an SMS call's answer was lost; not sent again (at_most_once)");
                return CallEnd::Failed(None);
            }
            if last {
                return CallEnd::Failed(Some(failure_code(&err)));
            }
            plan.resending();
            resent = true;
        } else if last || !matches!(err.class(), AnswerClass::Retryable | AnswerClass::RateLimited) {
            tracing::warn!(campaign = rec.id, error = %err, "an SMS call failed");
            return CallEnd::Failed(Some(failure_code(&err)));
        }
        let wait = backoff(ctx.policy.base, ctx.policy.cap, attempt, fastrand::f64());
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return CallEnd::NotSent,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One result per number of the request, in order: the answer's entries are matched by
/// number (Tencent answers them in request order, but says nothing of it).
fn results(numbers: &[String], statuses: Vec<crate::upstream::sms::SendStatus>) -> Vec<NumberResult> {
    let mut by_number: std::collections::HashMap<String, NumberResult> = std::collections::HashMap::new();
    for s in statuses {
        let r = match number_outcome(&s) {
            NumberOutcome::Sent { serial_no, .. } => NumberResult::Sent(serial_no),
            NumberOutcome::WaitForWindow => NumberResult::Window(s.code.clone()),
            NumberOutcome::Retry { code } => NumberResult::Later(code),
            NumberOutcome::Final { code, .. } => NumberResult::Failed(code),
        };
        by_number.insert(s.phone_number.clone(), r);
    }
    numbers.iter().map(|n| by_number.remove(n).unwrap_or_else(|| NumberResult::Failed("NoStatus".into()))).collect()
}

/// The code a failed call's numbers are counted under.
fn failure_code(err: &SmsError) -> String {
    match err {
        SmsError::Api { code, .. } => code.clone(),
        SmsError::Transport { .. } => "NoAnswer".into(),
        SmsError::Http { status } => format!("HTTP{status}"),
        SmsError::Decode { .. } => "Unreadable".into(),
        SmsError::Invalid { .. } => "NotSent".into(),
    }
}

/// Stores the plan as the chunk's state (revision-checked).
async fn save(ctx: &Context, entry: &mut TextingEntry, plan: &TextingPlan) -> Result<(), StoreError> {
    let state = TextingState { plan: Some(plan.clone()), ..TextingState::default() };
    entry.state = rmp_serde::to_vec_named(&state).map_err(|e| StoreError::Codec(e.to_string()))?;
    entry.revision = ctx.store.texting_save(entry.clone()).await?;
    Ok(())
}

/// Counts a finished chunk's outcomes in `campaignd_sms_total`.
fn count(ctx: &Context, app: &str, tally: &SmsTally) {
    let add = |result: &str, n: u64| {
        if n > 0 {
            ctx.metrics.sms_total.with_label_values(&[app, result]).inc_by(n);
        }
    };
    add("sent", tally.sent);
    add("failed", tally.failed.values().sum());
    add("maybe_sent", tally.maybe_sent);
    add("replayed", tally.replayed);
    for (reason, n) in &tally.skipped {
        add(&format!("skipped_{reason}"), *n);
    }
}
