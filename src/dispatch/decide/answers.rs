//! What an upstream answer means for each recipient of the call: Getui per-cid statuses (list
//! and batch pushes) and WeCom's invalid users, turned into result counts.

use std::collections::HashSet;

use crate::domain::{Counts, ResultName};
use crate::wire::getui::compact::{CidStatuses, StatusWord};

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

/// One result per cid of a list push, in order: the status the answer gave it (with several
/// tasks in the answer, the first task in taskid order naming it gives it).
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
    use crate::wire::getui::compact::parse_cid_hex;

    /// The cid numbered `n`, as the answer writes it and as the store keeps it.
    fn hex(n: u8) -> String {
        format!("{n:02x}{}", "0".repeat(30))
    }

    fn raw(n: u8) -> [u8; 16] {
        parse_cid_hex(hex(n).as_bytes()).unwrap_or_default()
    }

    fn answer(data: serde_json::Value) -> CidStatuses {
        serde_json::from_value(data).expect("an answer")
    }

    #[test]
    fn each_cid_gets_the_result_of_its_status_and_one_left_out_is_not_a_valid_target() {
        let a = answer(serde_json::json!({"t": {
            hex(1): "successed_online", hex(2): "successed_ignore", hex(3): "something_new"}}));
        let results: Vec<ResultName> = list_in_order(&[raw(1), raw(2), raw(3), raw(4)], &a).collect();
        let expected = [
            ResultName::SuccessedOnline,
            ResultName::SuccessedIgnore,
            ResultName::SuccessedUnknown,
            ResultName::TargetInvalid,
        ];
        assert_eq!(results, expected, "one result per recipient, a word this daemon does not know still reached Getui");
    }

    #[test]
    fn a_list_answer_of_several_tasks_gives_each_cid_the_status_of_the_first_task_naming_it() {
        let a = answer(serde_json::json!({
            "t2": {hex(1): "successed_online", hex(2): "successed_online"},
            "t1": {hex(1): "successed_offline"},
        }));
        let results: Vec<ResultName> = list_in_order(&[raw(1), raw(2), raw(3)], &a).collect();
        assert_eq!(results, [ResultName::SuccessedOffline, ResultName::SuccessedOnline, ResultName::TargetInvalid]);
    }

    #[test]
    fn an_empty_answer_counts_every_cid_as_not_a_valid_target() {
        let results: Vec<ResultName> = list_in_order(&[raw(1), raw(2)], &CidStatuses::default()).collect();
        assert_eq!(results, [ResultName::TargetInvalid; 2]);
    }

    #[test]
    fn batch_results_are_found_by_recipient_whatever_the_answers_order() {
        // A batch answer is one task per message, in no useful order.
        let a = answer(serde_json::json!({
            "RASS_1": {hex(9): "successed_online"},
            "RASS_2": {hex(1): "successed_ignore"},
        }));
        let found: Vec<_> = [raw(1), raw(5), raw(9)]
            .iter()
            .map(|cid| a.get(cid).map(|(task, word)| (task.to_owned(), word_result(Some(word)))))
            .collect();
        assert_eq!(
            found,
            [
                Some(("RASS_2".to_owned(), ResultName::SuccessedIgnore)),
                None,
                Some(("RASS_1".to_owned(), ResultName::SuccessedOnline))
            ]
        );
        assert_eq!(word_result(None), ResultName::TargetInvalid);
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
}
