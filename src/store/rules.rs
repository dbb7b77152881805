//! What a campaign record may become: creation, the state machine's changes, commits and
//! deletes, as pure functions of the record. Both backends apply them, so sled and NATS refuse
//! and accept exactly the same things.

use super::{CampaignRecord, Change, StoreError, UploadCommit};
use crate::domain::campaign::transition;
use crate::domain::texting::SmsTally;
use crate::domain::{Action, CampaignSpec, CampaignState, Counts, Mode, RequestKey};

/// A new draft campaign numbered `id`.
pub(super) fn new_record(id: u64, spec: CampaignSpec, now_ms: i64) -> Result<CampaignRecord, StoreError> {
    Ok(CampaignRecord {
        id,
        spec,
        state: CampaignState::Draft,
        created_ms: now_ms,
        started_ms: None,
        finished_ms: None,
        chunk_count: 0,
        recipients: 0,
        duplicates: 0,
        rejected: 0,
        list_taskid: None,
        app_taskid: None,
        counts: Counts::default(),
        folded: 0,
        replayed: 0,
        failure: None,
        upstream_report: None,
        withdrawal: None,
        request_salt: Some(request_salt()?),
        sms: SmsTally::default(),
        sms_stopped: false,
    })
}

/// A campaign's request-id salt, from the operating system's random source.
fn request_salt() -> Result<u32, StoreError> {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).map_err(|e| StoreError::Db(format!("no random source for the request-id salt: {e}")))?;
    Ok(u32::from_be_bytes(b) & RequestKey::MAX_SALT)
}

/// Applies `change` to `rec`, refusing what the state machine forbids. True when the
/// campaign was cancelled by it: the caller then drops its unsent chunks and in-flight marks.
pub(super) fn apply_change(rec: &mut CampaignRecord, change: Change) -> Result<bool, StoreError> {
    let conflict = |rec: &CampaignRecord, what: &str| StoreError::Conflict {
        state: rec.state,
        message: format!("cannot {what} a campaign that is {}", rec.state.as_str()),
    };
    match change {
        Change::Act(action, now) => {
            // An upstream-held schedule is sent at once; Getui waits for the time.
            let s = &rec.spec.settings;
            let future = !s.upstream_schedule && s.schedule_at_ms.is_some_and(|t| t > now);
            let next = transition(rec.state, action, future).ok_or_else(|| conflict(rec, action.as_str()))?;
            if action == Action::Start && rec.recipients == 0 && rec.spec.mode != Mode::App {
                return Err(StoreError::Conflict {
                    state: rec.state,
                    message: "upload recipients before starting: the campaign has none".into(),
                });
            }
            return Ok(enter(rec, next, now));
        }
        Change::Begin(now) if rec.state == CampaignState::Scheduled => {
            return Ok(enter(rec, CampaignState::Running, now));
        }
        Change::Begin(_) => return Err(conflict(rec, "begin")),
        // The first list task stored wins: daemons starting one campaign together all adopt it.
        Change::SetListTask(t) => {
            rec.list_taskid.get_or_insert(t);
        }
        Change::SetAppTask(t, now) => {
            rec.app_taskid = Some(t);
            let s = &rec.spec.settings;
            // Getui holds the schedule: the campaign waits in `scheduled` (cancellable)
            // until the time, then completes without a second push.
            let held = s.upstream_schedule && s.schedule_at_ms.is_some_and(|at| at > now);
            let next = if held { CampaignState::Scheduled } else { CampaignState::Completed };
            if rec.state == CampaignState::Running {
                return Ok(enter(rec, next, now));
            }
        }
        Change::SetUpstreamReport(r) => rec.upstream_report = Some(r),
        Change::SetWithdrawal(w) => rec.withdrawal = Some(w),
        Change::Fail(why, now) if !rec.state.is_final() => {
            rec.failure = Some(why);
            return Ok(enter(rec, CampaignState::Failed, now));
        }
        Change::Fail(..) => return Err(conflict(rec, "fail")),
        Change::AddReplayed(n) => rec.replayed += n,
        Change::StopSms if rec.spec.settings.sms_fallback.is_none() => {
            return Err(StoreError::Conflict {
                state: rec.state,
                message: "the campaign has no settings.sms_fallback: there are no texts to stop".into(),
            });
        }
        Change::StopSms => rec.sms_stopped = true,
        Change::AddSms(t) => rec.sms.merge(&t),
    }
    Ok(false)
}

/// Moves to `next`, stamping times; true when that is `cancelled`.
fn enter(rec: &mut CampaignRecord, next: CampaignState, now: i64) -> bool {
    if next == CampaignState::Running && rec.started_ms.is_none() {
        rec.started_ms = Some(now);
    }
    if next.is_final() {
        rec.finished_ms = Some(now);
    }
    rec.state = next;
    next == CampaignState::Cancelled
}

/// Refuses to delete a campaign that is neither draft nor scheduled.
pub(super) fn check_delete(rec: &CampaignRecord) -> Result<(), StoreError> {
    if matches!(rec.state, CampaignState::Draft | CampaignState::Scheduled) {
        return Ok(());
    }
    Err(StoreError::Conflict {
        state: rec.state,
        message: format!("only draft or scheduled campaigns can be deleted; this one is {}", rec.state.as_str()),
    })
}

/// Adds an upload to `rec`, or says why it cannot be (the caller then discards the staged
/// chunks).
pub(super) fn apply_commit(rec: &mut CampaignRecord, c: UploadCommit) -> Result<(), StoreError> {
    if rec.state != CampaignState::Draft || c.first_seq != rec.chunk_count {
        let message = if rec.state != CampaignState::Draft {
            format!("recipients can only be uploaded to a draft campaign; this one is {}", rec.state.as_str())
        } else {
            "another upload to this campaign finished first; retry".to_owned()
        };
        return Err(StoreError::Conflict { state: rec.state, message });
    }
    rec.chunk_count += c.chunks;
    rec.recipients += c.recipients;
    rec.duplicates += c.duplicates;
    rec.rejected += c.rejected;
    Ok(())
}

/// Folds the contiguous run of acknowledged chunks from `rec.folded` on (taken out of
/// `done`) into the counters, and completes a running list or batch campaign with nothing
/// left. True when `rec` changed.
pub(super) fn fold(rec: &mut CampaignRecord, done: &mut std::collections::BTreeMap<u64, Counts>, now_ms: i64) -> bool {
    let before = rec.folded;
    while let Some(counts) = done.remove(&rec.folded) {
        rec.counts.merge(&counts);
        rec.folded += 1;
    }
    let complete = rec.state == CampaignState::Running && rec.spec.mode != Mode::App && rec.folded >= rec.chunk_count;
    if complete {
        rec.state = CampaignState::Completed;
        rec.finished_ms = Some(now_ms);
    }
    rec.folded != before || complete
}
