//! The push endpoints of the simulated Getui: checks, dedup, per-cid statuses, the ledger and
//! the receipts of first deliveries.

use std::collections::{BTreeMap, HashSet};

use super::population::{self, Device};
use super::tasks::{Delivered, NewTask, TaskKind, Terms};
use super::{hash128, parse_json, GetuiSim, Reply};
use crate::domain::CompactCid;
use crate::wire::getui::checks::{self, Violation};
use crate::wire::getui::{
    AllPush, BatchPush, ListCidPush, ListMessage, Push, PushMessage, Settings, SingleAliasPush, SingleCidPush, TagPush,
    TaskIdData, MAX_BATCH_MESSAGES, MAX_LIST_CIDS,
};

/// Which app-wide endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AppKind {
    /// `/push/all`.
    All,
    /// `/push/tag`.
    Tag,
}

/// Condition keys `/push/tag` understands.
const TAG_KEYS: [&str; 4] = ["phone_type", "region", "custom_tag", "portrait"];

impl GetuiSim {
    pub(super) fn single_cid(&self, body: &[u8]) -> Reply {
        let push: SingleCidPush = match parse_json(body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        if let Err(r) = check_push(&push) {
            return r;
        }
        match push.audience.cid.as_slice() {
            [] => Reply::err(20001, "cid can not be empty"),
            [_, _, ..] => Reply::err(20001, "cid size over limit"),
            [cid] => match CompactCid::parse(cid) {
                Some(c) => self.deliver_single(
                    "push_single_cid",
                    &push.request_id,
                    c,
                    terms(&push.push_message, push.settings.as_ref()),
                ),
                None => Reply::err(20001, "target user is invalid"),
            },
        }
    }

    pub(super) fn single_alias(&self, body: &[u8]) -> Reply {
        let push: SingleAliasPush = match parse_json(body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        if let Err(r) = check_push(&push) {
            return r;
        }
        match push.audience.alias.as_slice() {
            [] => Reply::err(20001, "alias can not be empty"),
            [alias] => {
                let t = terms(&push.push_message, push.settings.as_ref());
                self.deliver_single("push_single_alias", &push.request_id, alias_cid(alias), t)
            }
            _ => Reply::err(20001, "alias size over limit"),
        }
    }

    /// Delivers one message unless its request_id was seen; answers the same either way.
    fn deliver_single(&self, endpoint: &'static str, request_id: &str, cid: CompactCid, t: Terms) -> Reply {
        let taskid = single_taskid(request_id);
        let status = self.status_for(&cid, t);
        if self.first_sighting(request_id) {
            self.ledger.record(endpoint, [cid].iter());
            self.receipts.schedule(&taskid, [(&cid, status)]);
        } else {
            self.ledger.record_dropped_repeat();
        }
        let answer = BTreeMap::from([(taskid, BTreeMap::from([(cid.to_string(), status.to_owned())]))]);
        Reply::ok(Some(answer))
    }

    pub(super) fn batch_cid(&self, body: &[u8]) -> Reply {
        let batch: BatchPush = match parse_json(body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        match batch.msg_list.len() {
            0 => return Reply::err(20001, "msg_list can not be empty"),
            n if n > MAX_BATCH_MESSAGES => return Reply::err(20001, "msg_list size over limit"),
            _ => {}
        }
        let mut ids = HashSet::with_capacity(batch.msg_list.len());
        for push in &batch.msg_list {
            if let Err(r) = check_push(push) {
                return r;
            }
            if push.audience.cid.len() != 1 {
                return Reply::err(20001, "cid size over limit");
            }
            if !ids.insert(push.request_id.as_ref()) {
                return Reply::err(20001, "contains duplicate request_id");
            }
        }
        // Messages to malformed cids are left out of the answer; if none is left, the call fails.
        let valid: Vec<(&SingleCidPush, CompactCid)> =
            batch.msg_list.iter().filter_map(|p| CompactCid::parse(&p.audience.cid[0]).map(|c| (p, c))).collect();
        if valid.is_empty() {
            return Reply::err(20001, "target user is invalid");
        }
        let mut delivered = Vec::with_capacity(valid.len());
        let mut answer = BTreeMap::new();
        for (push, cid) in &valid {
            let first = self.first_sighting(&push.request_id);
            if first {
                delivered.push(*cid);
            } else {
                self.ledger.record_dropped_repeat();
            }
            if batch.is_async {
                continue;
            }
            let taskid = single_taskid(&push.request_id);
            let status = self.status_for(cid, terms(&push.push_message, push.settings.as_ref()));
            // Receipts only for a first delivery: a repeated request_id delivers nothing.
            if first {
                self.receipts.schedule(&taskid, [(cid, status)]);
            }
            answer.insert(taskid, BTreeMap::from([(cid.to_string(), status.to_owned())]));
        }
        self.ledger.record("push_single_batch_cid", delivered.iter());
        Reply::ok((!batch.is_async).then_some(answer))
    }

    pub(super) fn list_message(&self, body: &[u8], now: u64) -> Reply {
        let msg: ListMessage = match parse_json(body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let checked = msg
            .request_id
            .as_deref()
            .map_or(Ok(()), checks::check_request_id)
            .and_then(|_| check_common(msg.group_name.as_deref(), msg.settings.as_ref(), &msg.push_message));
        if let Err(v) = checked {
            return param_error(v);
        }
        let (taskid, _) = self.tasks.create(NewTask {
            kind: TaskKind::List,
            group: msg.group_name.clone(),
            transmission: msg.push_message.transmission.clone().unwrap_or_default(),
            push_time_ms: None,
            request_key: msg.request_id.as_deref().map(hash128),
            now,
            terms: terms(&msg.push_message, msg.settings.as_ref()),
            fanout: None,
        });
        Reply::ok(Some(TaskIdData { taskid }))
    }

    pub(super) fn list_cid(&self, body: &[u8], now: u64) -> Reply {
        let push: ListCidPush = match parse_json(body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let n = push.audience.cid.len();
        if n == 0 {
            return Reply::err(20001, "cid can not be empty");
        }
        if n > MAX_LIST_CIDS {
            return Reply::err(20001, "cid size over limit");
        }
        if let Err(r) = self.tasks.check_list_task(&push.taskid) {
            return r;
        }
        let mut seen = HashSet::with_capacity(n);
        if !push.audience.cid.iter().all(|c| seen.insert(c.as_ref())) {
            return Reply::err(20001, "contains duplicate cid");
        }
        let valid: Vec<CompactCid> = push.audience.cid.iter().filter_map(|c| CompactCid::parse(c)).collect();
        if valid.is_empty() {
            return Reply::err(20001, "target user is invalid");
        }
        if !self.windows.list_calls_minute.try_take(now, 1) {
            return Reply::err(30015, "list push frequency over limit");
        }
        if !self.windows.list_cids_day.try_take(now, valid.len() as u64) {
            return Reply::err(30008, "list push daily count over limit");
        }
        self.ledger.record("push_list_cid", valid.iter());
        let t = self.tasks.terms(&push.taskid);
        let mut delivered = Delivered { targets: valid.len() as u64, ..Delivered::default() };
        let mut statuses = BTreeMap::new();
        let mut receipts = Vec::new();
        for cid in &valid {
            let status = self.status_for(cid, t);
            delivered.add(cid, status);
            if !push.is_async {
                statuses.insert(cid.to_string(), status.to_owned());
                receipts.push((cid, status));
            }
        }
        self.tasks.count(&push.taskid, &delivered);
        self.receipts.schedule(&push.taskid, receipts);
        Reply::ok((!push.is_async).then(|| BTreeMap::from([(push.taskid.into_owned(), statuses)])))
    }

    pub(super) fn app_push(&self, body: &[u8], now: u64, kind: AppKind) -> Reply {
        let parsed = match kind {
            AppKind::All => parse_json::<AllPush>(body)
                .map(|p| (p.request_id.into_owned(), p.group_name, p.settings, p.push_message, Vec::new())),
            AppKind::Tag => parse_json::<TagPush>(body).and_then(|p| {
                check_conditions(&p)?;
                Ok((p.request_id.into_owned(), p.group_name, p.settings, p.push_message, p.audience.tag))
            }),
        };
        let (request_id, group, settings, message, conditions) = match parsed {
            Ok(parts) => parts,
            Err(r) => return r,
        };
        let checked = checks::check_request_id(&request_id)
            .and_then(|_| check_common(group.as_deref(), settings.as_ref(), &message));
        if let Err(v) = checked {
            return param_error(v);
        }
        let push_time_ms = match self.schedule_time(settings.as_ref(), now) {
            Ok(t) => t,
            Err(r) => return r,
        };
        if !self.windows.app_minute.try_take(now, 1) {
            return Reply::err(30014, "app push frequency over limit");
        }
        if !self.windows.app_day.try_take(now, 1) {
            self.windows.app_minute.give_back(now, 1);
            return match kind {
                AppKind::All => Reply::err(30007, "app push daily count over limit"),
                AppKind::Tag => Reply::err(30010, "tag push daily count over limit"),
            };
        }
        let t = terms(&message, settings.as_ref());
        let (taskid, new) = self.tasks.create(NewTask {
            kind: TaskKind::App,
            group,
            transmission: message.transmission.unwrap_or_default(),
            push_time_ms,
            request_key: Some(hash128(&request_id)),
            now,
            terms: t,
            fanout: push_time_ms.map(|_| conditions.clone()),
        });
        if new && push_time_ms.is_none() {
            self.fan_out(&taskid, &conditions, t);
        }
        Reply::ok(Some(TaskIdData { taskid }))
    }

    /// Delivers an app push to every device of the population that meets its conditions.
    pub(super) fn fan_out(&self, taskid: &str, conditions: &[crate::wire::getui::Condition], t: Terms) {
        let endpoint = if conditions.is_empty() { "push_all" } else { "push_tag" };
        let reached: Vec<CompactCid> =
            population::devices().iter().filter(|(_, d)| d.matches_all(conditions)).map(|(cid, _)| *cid).collect();
        self.ledger.record(endpoint, reached.iter());
        let mut delivered = Delivered { targets: reached.len() as u64, ..Delivered::default() };
        for cid in &reached {
            delivered.add(cid, self.status_for(cid, t));
        }
        self.tasks.count(taskid, &delivered);
    }

    /// Fans out the scheduled app pushes whose time has come.
    pub(super) fn fire_due(&self, now: u64) {
        for (taskid, conditions, t) in self.tasks.take_due(now) {
            self.fan_out(&taskid, &conditions, t);
        }
    }

    /// A scheduled push must be in the future and within the horizon (7 days).
    fn schedule_time(&self, settings: Option<&Settings>, now: u64) -> Result<Option<u64>, Reply> {
        let Some(t) = settings.and_then(|s| s.schedule_time) else {
            return Ok(None);
        };
        let horizon = u64::try_from(self.cfg.schedule_horizon.as_millis()).unwrap_or(u64::MAX);
        match u64::try_from(t) {
            Ok(t) if t > now && t - now <= horizon => Ok(Some(t)),
            _ => Err(Reply::err(22002, "schedule_time is invalid")),
        }
    }

    /// The status a cid gets for a message: fixed by the cid so that every run agrees, except
    /// that a Wi-Fi-only message to an online device off Wi-Fi waits offline, and a message
    /// without offline storage (ttl −1) is not kept for an offline device at all.
    fn status_for(&self, cid: &CompactCid, t: Terms) -> &'static str {
        let status = match self.status_of(cid) {
            "successed_online" if t.wifi_only && !Device::of(cid).wifi => "successed_offline",
            status => status,
        };
        match status {
            "successed_offline" if t.no_offline => "successed_ignore",
            status => status,
        }
    }

    pub(super) fn status_of(&self, cid: &CompactCid) -> &'static str {
        plain_status(cid, self.cfg.shares)
    }
}

/// The status a plain push to `cid` gets under `shares` (no Wi-Fi-only, offline storage on):
/// a pure function of the cid, so tests and the demo can tell whom the push reaches.
pub fn plain_status(cid: &CompactCid, shares: crate::simulator::StatusShares) -> &'static str {
    let bucket = cid.spread() % 10_000;
    if bucket < u64::from(shares.online_bp) {
        "successed_online"
    } else if bucket < u64::from(shares.online_bp) + u64::from(shares.offline_bp) {
        "successed_offline"
    } else {
        "successed_ignore"
    }
}

fn check_push<A>(push: &Push<'_, A>) -> Result<(), Reply> {
    checks::check_request_id(&push.request_id)
        .and_then(|_| check_common(push.group_name.as_deref(), push.settings.as_ref(), &push.push_message))
        .map_err(param_error)
}

fn check_common(group: Option<&str>, settings: Option<&Settings>, message: &PushMessage) -> Result<(), Violation> {
    if let Some(g) = group {
        checks::check_group_name(g)?;
    }
    if let Some(s) = settings {
        checks::check_settings(s)?;
    }
    checks::check_push_message(message)
}

fn check_conditions(push: &TagPush) -> Result<(), Reply> {
    if push.audience.tag.is_empty() {
        return Err(Reply::err(20001, "tag can not be empty"));
    }
    for c in &push.audience.tag {
        if !TAG_KEYS.contains(&c.key.as_str()) {
            return Err(Reply::err(20001, "tag key is invalid"));
        }
        if c.values.is_empty() {
            return Err(Reply::err(20001, "tag values can not be empty"));
        }
        population::check_values(c).map_err(|msg| Reply::err(20001, msg))?;
    }
    Ok(())
}

/// The delivery terms of a message: Wi-Fi only (`network_type` 1), offline storage off (ttl −1).
fn terms(message: &PushMessage, settings: Option<&Settings>) -> Terms {
    Terms { wifi_only: message.network_type == Some(1), no_offline: settings.and_then(|s| s.ttl) == Some(-1) }
}

fn param_error(v: Violation) -> Reply {
    Reply::err(20001, &v.msg)
}

/// The taskid of a single push, fixed by its request_id so a repeat gets the same answer.
fn single_taskid(request_id: &str) -> String {
    format!("RASS_{}", hex::encode(&hash128(request_id)[..10]))
}

/// The simulator binds every alias to one cid derived from the alias.
fn alias_cid(alias: &str) -> CompactCid {
    CompactCid(hash128(&format!("alias:{alias}")))
}
