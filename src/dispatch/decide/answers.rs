//! What an upstream answer means for each recipient of the call: Getui per-cid statuses (list
//! and batch pushes) and WeCom's invalid users, turned into result counts.

use std::collections::{HashMap, HashSet};

use crate::domain::{Counts, ResultName};
use crate::wire::getui::compact::{CidStatuses, StatusWord};
use crate::wire::getui::TaskCidStatus;

/// A recipient's result from the status Getui answered for it; one the answer left out was
/// not a valid target, and a status word this daemon does not know still reached Getui.
pub fn status_result(status: Option<&str>) -> ResultName {
    match status {
        Some("successed_online") => ResultName::SuccessedOnline,
        Some("successed_offline") => ResultName::SuccessedOffline,
        Some("successed_ignore") => ResultName::SuccessedIgnore,
        Some(_) => ResultName::SuccessedUnknown,
        None => ResultName::TargetInvalid,
    }
}

/// Counts each cid of a list push by the status the answer gave it. With several tasks in
/// the answer, the first task (in taskid order) naming a cid gives its status.
pub fn tally_list<'a>(counts: &mut Counts, cids: impl Iterator<Item = &'a str>, tasks: &TaskCidStatus) {
    let single_task = (tasks.len() == 1).then(|| tasks.values().next()).flatten();
    for cid in cids {
        let status = match single_task {
            Some(m) => m.get(cid),
            None => tasks.values().find_map(|m| m.get(cid)),
        };
        counts.add(status_result(status.map(String::as_str)), 1);
    }
}

/// One result per message of a batch push, in the order of `cids` (each message's recipient,
/// in the order the messages were added): the answer itself is keyed by taskid, in no useful
/// order. One pass over the answer, then one lookup per message, since a 200-message batch
/// answers with 200 one-cid tasks.
pub fn batch_in_order<'a>(tasks: &TaskCidStatus, cids: impl Iterator<Item = &'a str>) -> Vec<ResultName> {
    let by_cid: HashMap<&str, &str> =
        tasks.values().flat_map(|m| m.iter().map(|(c, s)| (c.as_str(), s.as_str()))).collect();
    cids.map(|cid| status_result(by_cid.get(cid).copied())).collect()
}

/// Like [`batch_in_order`], with the taskid that carried each message (`None` when the
/// answer left the message out): what SMS fallback looks receipts up by.
pub fn batch_with_tasks<'t, 'a>(
    tasks: &'t TaskCidStatus,
    cids: impl Iterator<Item = &'a str>,
) -> Vec<(ResultName, Option<&'t str>)> {
    let by_cid: HashMap<&str, (&str, &str)> =
        tasks.iter().flat_map(|(t, m)| m.iter().map(move |(c, s)| (c.as_str(), (t.as_str(), s.as_str())))).collect();
    cids.map(|cid| match by_cid.get(cid) {
        Some((task, status)) => (status_result(Some(status)), Some(*task)),
        None => (status_result(None), None),
    })
    .collect()
}

/// One result per cid of a list push, in order, as [`tally_list`] counts them, from the
/// answer read into raw cids.
pub fn list_in_order<'a>(cids: &'a [[u8; 16]], statuses: &'a CidStatuses) -> impl Iterator<Item = ResultName> + 'a {
    cids.iter().map(|cid| word_result(statuses.get(cid).map(|(_, word)| word)))
}

/// [`status_result`] of a status word already read.
pub fn word_result(word: Option<&StatusWord>) -> ResultName {
    match word {
        Some(StatusWord::SuccessedOnline) => ResultName::SuccessedOnline,
        Some(StatusWord::SuccessedOffline) => ResultName::SuccessedOffline,
        Some(StatusWord::SuccessedIgnore) => ResultName::SuccessedIgnore,
        Some(StatusWord::Other(_)) => ResultName::SuccessedUnknown,
        None => ResultName::TargetInvalid,
    }
}

/// Counts each WeCom member of a send `sent`, or `invaliduser` when the answer listed it
/// (WeCom may change the case of ids it echoes, so they compare case-insensitively).
pub fn tally_wecom(counts: &mut Counts, part: &[&str], invalid_users: &[String]) {
    let invalid: HashSet<String> = invalid_users.iter().map(|u| u.to_lowercase()).collect();
    for user in part {
        let result = if invalid.contains(&user.to_lowercase()) { ResultName::InvalidUser } else { ResultName::Sent };
        counts.add(result, 1);
    }
}

/// Splits WeCom members by the suppression flags read for them (one per member, in order):
/// the suppressed are counted `suppressed`, the rest returned, in order, to be sent.
pub fn unsuppressed<'c>(counts: &mut Counts, users: &'c [String], suppressed: Vec<bool>) -> Vec<&'c str> {
    let mut sendable = Vec::with_capacity(users.len());
    for (user, suppressed) in users.iter().zip(suppressed) {
        if suppressed {
            counts.add(ResultName::Suppressed, 1);
        } else {
            sendable.push(user.as_str());
        }
    }
    sendable
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn task(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(c, s)| ((*c).to_owned(), (*s).to_owned())).collect()
    }

    #[test]
    fn tally_counts_each_status_and_missing_ids() {
        let m = task(&[("a", "successed_online"), ("b", "successed_ignore"), ("c", "something_new")]);
        let tasks = BTreeMap::from([("t".to_owned(), m)]);
        let mut counts = Counts::default();
        tally_list(&mut counts, ["a", "b", "c", "d"].into_iter(), &tasks);
        assert_eq!(counts.get(ResultName::SuccessedOnline), 1);
        assert_eq!(counts.get(ResultName::SuccessedIgnore), 1);
        assert_eq!(counts.get(ResultName::SuccessedUnknown), 1);
        assert_eq!(counts.get(ResultName::TargetInvalid), 1, "left out of the answer: not a valid target");
        assert_eq!(counts.total(), 4, "one result per recipient");
    }

    #[test]
    fn a_list_answer_of_several_tasks_gives_each_cid_the_status_of_the_first_task_naming_it() {
        let tasks = BTreeMap::from([
            ("t1".to_owned(), task(&[("a", "successed_offline")])),
            ("t2".to_owned(), task(&[("a", "successed_online"), ("b", "successed_online")])),
        ]);
        let mut counts = Counts::default();
        tally_list(&mut counts, ["a", "b", "c"].into_iter(), &tasks);
        assert_eq!(counts.get(ResultName::SuccessedOffline), 1, "a from t1");
        assert_eq!(counts.get(ResultName::SuccessedOnline), 1, "b from t2");
        assert_eq!(counts.get(ResultName::TargetInvalid), 1);
    }

    #[test]
    fn an_empty_list_answer_counts_every_cid_as_not_a_valid_target() {
        let mut counts = Counts::default();
        tally_list(&mut counts, ["a", "b"].into_iter(), &TaskCidStatus::new());
        assert_eq!(counts.get(ResultName::TargetInvalid), 2);
    }

    #[test]
    fn batch_results_follow_the_order_the_messages_were_added_not_the_answer() {
        let tasks = BTreeMap::from([
            ("RASS_1".to_owned(), task(&[("z", "successed_online")])),
            ("RASS_2".to_owned(), task(&[("a", "successed_ignore")])),
        ]);
        let results = batch_in_order(&tasks, ["a", "missing", "z", "a"].into_iter());
        let expected = [
            ResultName::SuccessedIgnore,
            ResultName::TargetInvalid,
            ResultName::SuccessedOnline,
            ResultName::SuccessedIgnore,
        ];
        assert_eq!(results, expected);
    }

    #[test]
    fn wecom_invalid_users_match_members_whatever_their_case() {
        let mut counts = Counts::default();
        let invalid = ["ZhangSan".to_owned(), "ghost".to_owned()];
        tally_wecom(&mut counts, &["zhangsan", "LiSi", "Ghost"], &invalid);
        assert_eq!(counts.get(ResultName::InvalidUser), 2);
        assert_eq!(counts.get(ResultName::Sent), 1);
    }

    #[test]
    fn suppressed_wecom_members_are_counted_and_the_rest_kept_in_order() {
        let mut counts = Counts::default();
        let users = ["a", "b", "c", "d"].map(String::from);
        let sendable = unsuppressed(&mut counts, &users, vec![false, true, false, true]);
        assert_eq!(sendable, ["a", "c"]);
        assert_eq!(counts.get(ResultName::Suppressed), 2);
    }

    #[test]
    fn a_list_answer_read_into_raw_cids_gives_the_results_the_string_reading_gives() {
        let hex = |n: u8| format!("{n:02x}{}", "0".repeat(30));
        let raw = |n: u8| crate::wire::getui::compact::parse_cid_hex(hex(n).as_bytes()).unwrap();
        let data = serde_json::json!({
            "t2": {hex(1): "successed_online", hex(2): "successed_online"},
            "t1": {hex(1): "successed_offline", hex(3): "something_new", hex(4): "successed_ignore"},
        });
        let tasks: TaskCidStatus = serde_json::from_value(data.clone()).unwrap();
        let compact: CidStatuses = serde_json::from_value(data).unwrap();
        let ids: Vec<String> = (1..=5).map(hex).collect();
        let raws: Vec<[u8; 16]> = (1..=5).map(raw).collect();
        let mut by_strings = Counts::default();
        tally_list(&mut by_strings, ids.iter().map(String::as_str), &tasks);
        let mut by_raw = Counts::default();
        let results: Vec<ResultName> = list_in_order(&raws, &compact).collect();
        for r in &results {
            by_raw.add(*r, 1);
        }
        assert_eq!(by_raw, by_strings);
        assert_eq!(
            results,
            [
                ResultName::SuccessedOffline,
                ResultName::SuccessedOnline,
                ResultName::SuccessedUnknown,
                ResultName::SuccessedIgnore,
                ResultName::TargetInvalid
            ]
        );
    }
}
