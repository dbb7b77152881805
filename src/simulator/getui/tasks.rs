//! List and app tasks of the simulated Getui: creation, stop, scheduled tasks and reports.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::Reply;
use crate::simulator::ledger::lock;
use crate::wire::getui::{Condition, ReportCounts, ScheduleTaskInfo};

/// A scheduled task can no longer be deleted this close to firing (the seed: one minute).
const DELETE_CUTOFF_MS: u64 = 60_000;

/// What kind of task an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TaskKind {
    /// Created by `/push/list/message`, sent by `/push/list/cid`.
    List,
    /// `/push/all` or `/push/tag`.
    App,
}

struct TaskRecord {
    kind: TaskKind,
    group: Option<String>,
    created_ms: u64,
    /// Set for scheduled app pushes.
    push_time_ms: Option<u64>,
    deleted: bool,
    stopped: bool,
    transmission: String,
    counts: ReportCounts,
    /// Delivery terms of the task's message.
    terms: Terms,
    /// A scheduled app push's audience, fanned out when it fires.
    fanout: Option<Vec<Condition>>,
}

#[derive(Default)]
struct TaskState {
    next: u64,
    tasks: HashMap<String, TaskRecord>,
    by_request_id: HashMap<[u8; 16], String>,
}

/// Every list and app task, behind one lock (they are created at human rates).
#[derive(Default)]
pub(super) struct Tasks {
    state: Mutex<TaskState>,
}

/// How a message may be delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Terms {
    /// Only over Wi-Fi (`push_message.network_type` 1).
    pub wifi_only: bool,
    /// Not stored for offline devices (`settings.ttl` −1).
    pub no_offline: bool,
}

/// What a new task carries.
pub(super) struct NewTask {
    pub kind: TaskKind,
    pub group: Option<String>,
    pub transmission: String,
    pub push_time_ms: Option<u64>,
    /// The request_id's hash, so a repeat gets the same taskid back.
    pub request_key: Option<[u8; 16]>,
    pub now: u64,
    pub terms: Terms,
    /// For scheduled app pushes: the conditions to fan out to at `push_time_ms`.
    pub fanout: Option<Vec<Condition>>,
}

/// The answer of a list push for the report counters.
#[derive(Default)]
pub(super) struct Delivered {
    pub targets: u64,
    pub received: u64,
    pub displayed: u64,
    pub clicked: u64,
}

impl Delivered {
    /// Counts one device by its status; one in ten online devices taps the notification.
    pub(super) fn add(&mut self, cid: &crate::domain::CompactCid, status: &str) {
        self.received += u64::from(status != "successed_ignore");
        let online = status == "successed_online";
        self.displayed += u64::from(online);
        self.clicked += u64::from(online && cid.spread().is_multiple_of(10));
    }
}

impl Tasks {
    /// Creates a task, or returns the one an earlier call with the same request_id created.
    /// The bool is true when the task is new.
    pub(super) fn create(&self, new: NewTask) -> (String, bool) {
        let mut st = lock(&self.state);
        if let Some(existing) = new.request_key.and_then(|k| st.by_request_id.get(&k)) {
            return (existing.clone(), false);
        }
        st.next += 1;
        let prefix = match new.kind {
            TaskKind::List => "RASL",
            TaskKind::App => "RASA",
        };
        let taskid = format!("{prefix}-{:010}", st.next);
        if let Some(k) = new.request_key {
            st.by_request_id.insert(k, taskid.clone());
        }
        st.tasks.insert(
            taskid.clone(),
            TaskRecord {
                kind: new.kind,
                group: new.group,
                created_ms: new.now,
                push_time_ms: new.push_time_ms,
                deleted: false,
                stopped: false,
                transmission: new.transmission,
                counts: ReportCounts::default(),
                terms: new.terms,
                fanout: new.fanout,
            },
        );
        (taskid, true)
    }

    /// Checks that `taskid` is a live list task.
    pub(super) fn check_list_task(&self, taskid: &str) -> Result<(), Reply> {
        match lock(&self.state).tasks.get(taskid) {
            Some(t) if t.kind == TaskKind::List && !t.stopped => Ok(()),
            Some(t) if t.kind == TaskKind::List => Err(Reply::err(20001, "taskid has been stopped")),
            _ => Err(Reply::err(20001, "taskid is invalid")),
        }
    }

    /// The delivery terms of a task's message.
    pub(super) fn terms(&self, taskid: &str) -> Terms {
        lock(&self.state).tasks.get(taskid).map(|t| t.terms).unwrap_or_default()
    }

    /// Takes the scheduled app pushes whose time has come (deleted and stopped ones never fire).
    pub(super) fn take_due(&self, now: u64) -> Vec<(String, Vec<Condition>, Terms)> {
        let mut st = lock(&self.state);
        let mut due = Vec::new();
        for (id, t) in st.tasks.iter_mut() {
            let fires = t.push_time_ms.is_some_and(|p| p <= now) && !t.deleted && !t.stopped;
            if fires {
                if let Some(conditions) = t.fanout.take() {
                    due.push((id.clone(), conditions, t.terms));
                }
            }
        }
        due
    }

    /// Adds delivery counts to a task's report.
    pub(super) fn count(&self, taskid: &str, d: &Delivered) {
        if let Some(t) = lock(&self.state).tasks.get_mut(taskid) {
            let c = &mut t.counts;
            c.msg_num = Some(c.msg_num.unwrap_or(0) + d.targets);
            c.target_num += d.targets;
            c.receive_num += d.received;
            c.display_num += d.displayed;
            c.click_num += d.clicked;
        }
    }

    /// `DELETE /task/{taskid}`.
    pub(super) fn stop(&self, taskid: &str) -> Reply {
        match lock(&self.state).tasks.get_mut(taskid) {
            Some(t) => {
                t.stopped = true;
                Reply::ok::<()>(None)
            }
            None => Reply::err(20001, "taskid is invalid"),
        }
    }

    /// `GET /task/schedule/{taskid}`.
    pub(super) fn schedule_info(&self, taskid: &str, now: u64) -> Reply {
        let st = lock(&self.state);
        let Some((t, push_time)) = st.tasks.get(taskid).and_then(|t| t.push_time_ms.map(|p| (t, p))) else {
            return Reply::err(22002, "task is invalid");
        };
        let send_result = match (t.deleted, t.stopped, now >= push_time) {
            (true, _, _) => "has_delete",
            (_, true, _) => "send_failed",
            (_, _, true) => "send_success",
            _ => "do_not_send",
        };
        let info = ScheduleTaskInfo {
            create_time: t.created_ms.to_string(),
            send_result: send_result.into(),
            transmission_content: t.transmission.clone(),
            push_time: push_time.to_string(),
        };
        Reply::ok(Some(BTreeMap::from([(taskid.to_owned(), info)])))
    }

    /// `DELETE /task/schedule/{taskid}`: refused once the task is within a minute of firing.
    pub(super) fn delete_schedule(&self, taskid: &str, now: u64) -> Reply {
        let mut st = lock(&self.state);
        let Some(t) = st.tasks.get_mut(taskid).filter(|t| t.push_time_ms.is_some() && !t.deleted) else {
            return Reply::err(22002, "task is invalid");
        };
        let push_time = t.push_time_ms.unwrap_or(0);
        if now >= push_time {
            return Reply::err(22001, "task has been executed and cannot be deleted");
        }
        if push_time - now < DELETE_CUTOFF_MS {
            return Reply::err(22001, "task fires within one minute and can no longer be deleted");
        }
        t.deleted = true;
        Reply::ok::<()>(None)
    }

    /// `GET /report/push/task/{ids}` (comma-separated, at most 200).
    pub(super) fn report_tasks(&self, ids: &str) -> Reply {
        let ids: Vec<&str> = ids.split(',').filter(|s| !s.is_empty()).collect();
        if ids.is_empty() || ids.len() > 200 {
            return Reply::err(20001, "taskIds size over limit");
        }
        let st = lock(&self.state);
        let mut data = BTreeMap::new();
        for id in ids {
            if let Some(t) = st.tasks.get(id) {
                data.insert(id.to_owned(), sections(&t.counts));
            }
        }
        Reply::ok(Some(data))
    }

    /// `GET /report/push/task_group/{group}`: every task of the group, added up.
    pub(super) fn report_group(&self, group: &str) -> Reply {
        let st = lock(&self.state);
        let mut total = ReportCounts { msg_num: Some(0), ..ReportCounts::default() };
        for t in st.tasks.values().filter(|t| t.group.as_deref() == Some(group)) {
            total.msg_num = Some(total.msg_num.unwrap_or(0) + t.counts.msg_num.unwrap_or(0));
            total.target_num += t.counts.target_num;
            total.receive_num += t.counts.receive_num;
            total.display_num += t.counts.display_num;
            total.click_num += t.counts.click_num;
        }
        Reply::ok(Some(BTreeMap::from([(group.to_owned(), sections(&total))])))
    }
}

/// A report holds the totals and the Getui-channel share (all of it, in the simulator).
fn sections(c: &ReportCounts) -> BTreeMap<String, ReportCounts> {
    let gt = ReportCounts { msg_num: None, ..c.clone() };
    BTreeMap::from([("total".to_owned(), c.clone()), ("gt".to_owned(), gt)])
}
